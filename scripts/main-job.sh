#!/bin/sh
# The main job of `make chat`. There is no trained default model yet, so this generates a
# small random-weight DeepSeek-architecture model (MLA + MoE) with the project's own
# `deepseek synth`, quantizes it, inspects it, and (once the forward pass exists) runs it.
# Random weights mean the generated text is noise: this shows the tools, not a conversation.
set -e
build=${1:-build}
bin="$build/deepseek"
dir="$build/demo"
mkdir -p "$dir"
"$bin" synth --shape tiny-dsv3 --type F32 "$dir/tiny-dsv3-f32.gguf"
"$bin" quantize "$dir/tiny-dsv3-f32.gguf" "$dir/tiny-dsv3-q4_k_m.gguf" Q4_K_M
"$bin" inspect "$dir/tiny-dsv3-q4_k_m.gguf" | tail -n 25
if "$bin" help run >/dev/null 2>&1; then
    "$bin" run -m "$dir/tiny-dsv3-q4_k_m.gguf" -p "The quick brown fox" -n 16
fi
