// cmd_quantize.c - `deepseek quantize IN OUT TYPE [-t N]`.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "ds/quantize.h"

const char cmd_quantize_usage[] =
    "usage: deepseek quantize IN.gguf OUT.gguf TYPE [-t THREADS]\n"
    "\n"
    "Writes a copy of a model with its weights converted to a type mix:\n"
    "  Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0, IQ4_XS   (quantized mixes)\n"
    "  F16, BF16, F32                             (plain conversions)\n"
    "Norms, the MoE router and 1-D tensors keep their type; the output matrix gets Q6_K\n"
    "(Q8_0 in the Q8_0 mix); the _M mixes give more bits to attn_v and ffn_down in the\n"
    "layers that matter most; rows that do not divide a type's block fall back to one that\n"
    "fits. IN is never written; OUT appears only when complete.\n"
    "\n"
    "  -t N   threads for the conversion (default 2)\n";

typedef struct progress_state {
    bool tty;
} progress_state;

static void progress(void *user, int64_t done, int64_t total, const ds_gguf_tensor *t, ds_type type) {
    const progress_state *ps = user;
    fprintf(stderr, "%s[%4lld/%4lld] %-40s %-8s -> %-8s%s", ps->tty ? "\r\033[K" : "", (long long)done,
            (long long)total, t->name, ds_type_name((int32_t)t->type), ds_type_name((int32_t)type),
            ps->tty && done < total ? "" : "\n");
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3]   = {0};
    int         n_pos    = 0;
    int64_t     threads  = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) {
            const char *v = cli_value(argv[0], argc, argv, &i);
            if (!v) return 2;
            if (!cli_parse_int(v, 1, 256, &threads))
                return cli_usage_error(argv[0], "-t needs a number of threads from 1 to 256, not '%s'", v);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error(argv[0], "unknown option '%s'", argv[i]);
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            return cli_usage_error(argv[0], "too many arguments");
        }
    }
    if (n_pos < 3) return cli_usage_error(argv[0], "need IN, OUT and TYPE");

    ds_quantize_params p = ds_quantize_params_default();
    if (ds_mix_from_name(pos[2], &p.mix) != DS_OK) return cli_usage_error(argv[0], "%s", ds_errmsg());
    progress_state ps = {.tty = isatty(2)};
    p.n_threads       = (int)threads;
    p.progress        = progress;
    p.progress_user   = &ps;
    if (ds_quantize_file(pos[0], pos[1], &p) != DS_OK) return cli_error(argv[0], "%s", ds_errmsg());
    fprintf(stderr, "wrote %s (%s)\n", pos[1], ds_mix_name(p.mix));
    return 0;
}
