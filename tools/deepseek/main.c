// main.c - the `deepseek` program: dispatches to one subcommand per cmd_<name>.c.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ds/cpu.h"
#include "ds/matmul.h"

static const ds_command commands[] = {
    {"inspect", "show a GGUF file's metadata and tensors", cmd_inspect_usage, cmd_inspect},
    {"run", "continue a prompt (raw completion, no chat template)", cmd_run_usage, cmd_run},
    {"train", "train a small deepseek2 model on arithmetic (SFT, then GRPO)", cmd_train_usage,
     cmd_train},
    {"eval-task", "held-out accuracy of a trained model per arithmetic task", cmd_eval_task_usage,
     cmd_eval_task},
    {"perplexity", "perplexity of a text file, as llama.cpp computes it", cmd_perplexity_usage,
     cmd_perplexity},
    {"pull", "download a GGUF model from the Hugging Face hub", cmd_pull_usage, cmd_pull},
    {"list", "show the downloaded models", cmd_list_usage, cmd_list},
    {"quantize", "convert a model's weights to another type mix", cmd_quantize_usage,
     cmd_quantize},
    {"tokenize", "show the token ids of a text", cmd_tokenize_usage, cmd_tokenize},
    {"template", "print the chat prompt a model renders for a message list", cmd_template_usage,
     cmd_template},
    {"convert-tokenizer", "a Hugging Face tokenizer.json to a vocab-only GGUF",
     cmd_convert_tokenizer_usage, cmd_convert_tokenizer},
    {"synth", "write a random-weight model at a real model's shape", cmd_synth_usage, cmd_synth},
    {"serve", "serve a model over HTTP with the DeepSeek / OpenAI API", cmd_serve_usage, cmd_serve},
    {"chat", "talk with a model in the terminal, or answer one question (-p)", cmd_chat_usage,
     cmd_chat},
    {"bench", "prompt and generation speed of a model, as llama-bench", cmd_bench_usage,
     cmd_bench},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void print_overview(FILE *out) {
    fprintf(out, "deepseek - an inference engine for DeepSeek models\n\n"
                 "usage: deepseek COMMAND [ARGS...]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-18s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-18s %s\n", "help [COMMAND]", "list the commands, or explain one");
    char cpu[256];
    ds_cpu_describe(cpu, sizeof cpu);
    fprintf(out, "\ncpu: %s\nkernels: %s (DS_KERNELS=ref|avx2|avx512|amx forces a level)\n", cpu,
            ds_cpu_level_name(ds_matmul_default_level()));
}

static const ds_command *find(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

static int help(int argc, char **argv) {
    if (argc < 2) {
        print_overview(stdout);
        return 0;
    }
    const ds_command *c = find(argv[1]);
    if (!c) {
        fprintf(stderr, "deepseek help: unknown command '%s'\n", argv[1]);
        return 2;
    }
    fputs(c->usage, stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_overview(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h"))
        return help(argc - 1, argv + 1);
    const ds_command *c = find(name);
    if (!c) {
        fprintf(stderr, "deepseek: unknown command '%s' (see: deepseek help)\n", name);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(c->usage, stdout);
            return 0;
        }
    }
    exit(c->run(argc - 1, argv + 1));
}
