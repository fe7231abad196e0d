#!/bin/sh
# The main job of `make chat`: talk to the model this project trained and ships
# (models/deepseek-arith-r1.gguf, a 1.8M-parameter DeepSeek-architecture model, MLA + MoE,
# trained by `deepseek train`; see docs/TRAINING.md). It does arithmetic and shows its
# reasoning apart from its answer. Arguments are passed to `deepseek chat`.
set -e
build=${1:-build}
[ $# -gt 0 ] && shift
echo "deepseek chat with the shipped arithmetic model. Try: What is 47 * 36?  (/help for commands)"
exec "$build/deepseek" chat "$@"
