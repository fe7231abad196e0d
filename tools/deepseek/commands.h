// commands.h - the subcommands of the `deepseek` program.
//
// Each subcommand lives in its own cmd_<name>.c, parses its own arguments and returns the
// process exit status (0 success, 1 failure, 2 usage error); only main.c exits. Errors go to
// stderr as one line "deepseek CMD: message".
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct ds_command {
    const char *name;
    const char *summary; // one line for `deepseek help`
    const char *usage;   // full text for `deepseek help NAME`
    int (*run)(int argc, char **argv); // argv[0] is the command name
} ds_command;

int cmd_inspect(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval_task(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_convert_tokenizer(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_bench(int argc, char **argv);

extern const char cmd_inspect_usage[];
extern const char cmd_run_usage[];
extern const char cmd_train_usage[];
extern const char cmd_eval_task_usage[];
extern const char cmd_perplexity_usage[];
extern const char cmd_pull_usage[];
extern const char cmd_list_usage[];
extern const char cmd_quantize_usage[];
extern const char cmd_synth_usage[];
extern const char cmd_tokenize_usage[];
extern const char cmd_template_usage[];
extern const char cmd_convert_tokenizer_usage[];
extern const char cmd_serve_usage[];
extern const char cmd_chat_usage[];
extern const char cmd_bench_usage[];

// The model used when -m is not given: $DS_DEFAULT_MODEL, else the shipped
// models/deepseek-arith-r1.gguf (cmd_eval_task.c).
const char *cli_default_model(void);

// ---- argument helpers (args.c) ----

// Prints "deepseek CMD: <message>" to stderr; returns 1 (or 2 from cli_usage_error).
int cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Strict number parsing: the whole string must be a number within [min, max].
bool cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);
bool cli_parse_float(const char *s, double min, double max, double *out);

// For "-x VALUE" options: returns argv[*i + 1] and advances *i, or NULL (with a usage
// error printed) when the value is missing.
const char *cli_value(const char *cmd, int argc, char **argv, int *i);
