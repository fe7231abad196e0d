// args.c - small helpers for strict argument parsing in the subcommands.
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "commands.h"

static void vreport(const char *cmd, const char *fmt, va_list ap) {
    fprintf(stderr, "deepseek %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap);
    va_end(ap);
    fprintf(stderr, "(see: deepseek help %s)\n", cmd);
    return 2;
}

bool cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out) {
    if (!s || !*s) return false;
    char *end = NULL;
    errno     = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

bool cli_parse_float(const char *s, double min, double max, double *out) {
    if (!s || !*s) return false;
    char *end = NULL;
    errno     = 0;
    double v  = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < min || v > max) return false;
    *out = v;
    return true;
}

const char *cli_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "option %s needs a value", argv[*i]);
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

// The model this project trained and ships (models/ in the source tree). The build records its
// absolute path, so the default works from any directory; $DS_DEFAULT_MODEL overrides it.
#ifndef DS_DEFAULT_MODEL
#define DS_DEFAULT_MODEL "models/deepseek-arith-r1.gguf"
#endif

const char *cli_default_model(void) {
    const char *env = getenv("DS_DEFAULT_MODEL");
    if (env && *env) return env;
    if (access(DS_DEFAULT_MODEL, R_OK) == 0) return DS_DEFAULT_MODEL;
    return "models/deepseek-arith-r1.gguf"; // relative to the current directory
}
