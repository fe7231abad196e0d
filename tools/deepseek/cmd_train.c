// cmd_train.c - `deepseek train`: train a small deepseek2 model on the arithmetic tasks.
// Stage 1 (default): supervised training on generated reasoning traces from random weights
// (or --init). Stage 2 (--grpo): GRPO from --init, with --init as the KL reference.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "ds/gguf.h"
#include "ds/tokenizer.h"
#include "ds/train.h"

const char cmd_train_usage[] =
    "usage: deepseek train -o OUT.gguf [options]\n"
    "\n"
    "Trains a small deepseek2 model (MLA + MoE) on generated arithmetic problems with their\n"
    "step-by-step working in <think>...</think> (docs/TRAINING.md).\n"
    "\n"
    "  -o FILE          the checkpoint to write (GGUF, f32; loads in every other command)\n"
    "  --init FILE      start from this checkpoint instead of random weights\n"
    "  --grpo           stage 2: GRPO from --init (which is also the KL reference)\n"
    "  --steps N        optimiser steps (default 2000 SFT, 100 GRPO)\n"
    "  --batch N        sequences per step (SFT, default 16) or problems per step (GRPO, 8)\n"
    "  --group N        GRPO samples per problem (default 8)\n"
    "  --sample-rounds N  GRPO: draw up to N rounds of --batch problems per step until\n"
    "                   --batch groups hold both right and wrong replies (dynamic\n"
    "                   sampling; default 1)\n"
    "  --lr X           peak learning rate (default 2e-3 SFT, 5e-5 GRPO)\n"
    "  --beta X         GRPO KL penalty (default 0.02)\n"
    "  --temperature X  GRPO sampling temperature (default 1.0)\n"
    "  --warmup N       warm-up steps (default 5% of --steps)\n"
    "  --mix LIST       family weights, e.g. add=1,sub=1,mul2x1=1,mul2x2=2,cmp=0.5,word=0.5\n"
    "  --size NAME      tiny | small (default small; ignored with --init)\n"
    "  --save-every N   also write OUT every N steps (default 500)\n"
    "  -t N             threads (default 2)\n"
    "  --seed N         random seed (default 1)\n"
    "  --log FILE       write the curve as TSV (step, loss, lr, grad_norm, reward, accuracy,\n"
    "                   kl, seconds)\n"
    "  --quiet          no progress lines\n";

typedef struct run_ctx {
    FILE       *log;
    bool        quiet, grpo;
    int64_t     save_every;
    ds_tmodel  *m;
    ds_gguf    *vocab;
    const char *out;
    const char *extra[7];
} run_ctx;

static void on_log(void *ud, const ds_train_log *e) {
    run_ctx *c = ud;
    if (c->log)
        fprintf(c->log, "%lld\t%.5f\t%.6g\t%.4f\t%.4f\t%.4f\t%.5f\t%.1f\n", (long long)e->step,
                e->loss, e->lr, e->grad_norm, e->reward, e->accuracy, e->kl, e->elapsed_s);
    const bool last = e->step + 1 == e->steps;
    if (!c->quiet && (e->step % (c->grpo ? 1 : 25) == 0 || last)) {
        if (c->grpo)
            fprintf(stderr, "step %5lld/%lld  reward %.3f  acc %.3f  kl %.4f  lr %.2g  %.0fs\n",
                    (long long)e->step + 1, (long long)e->steps, e->reward, e->accuracy, e->kl,
                    e->lr, e->elapsed_s);
        else
            fprintf(stderr, "step %5lld/%lld  loss %.4f  lr %.2g  |g| %.2f  %.0fs\n",
                    (long long)e->step + 1, (long long)e->steps, e->loss, e->lr, e->grad_norm,
                    e->elapsed_s);
    }
    if (c->log && (e->step % 50 == 0 || last)) fflush(c->log);
    if (c->save_every > 0 && (e->step + 1) % c->save_every == 0 && !last)
        if (ds_tmodel_save(c->m, c->vocab, c->out, c->extra) != DS_OK)
            fprintf(stderr, "deepseek train: %s\n", ds_errmsg());
}

static bool parse_mix(const char *s, float *mix) {
    for (int f = 0; f < DS_TASK_COUNT; f++) mix[f] = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char          *eq = strchr(tok, '=');
        ds_task_family f;
        double         v;
        if (!eq) return false;
        *eq = '\0';
        if (!ds_task_family_from_name(tok, &f) || !cli_parse_float(eq + 1, 0, 1000, &v)) return false;
        mix[f] = (float)v;
    }
    return true;
}

int cmd_train(int argc, char **argv) {
    const char     *cmd = "train", *out = NULL, *init = NULL, *log_path = NULL, *size = "small";
    ds_train_params p = ds_train_params_default();
    bool            grpo = false, quiet = false, have_steps = false, have_lr = false, have_batch = false;
    int64_t         warmup = -1, save_every = 500;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int64_t     n;
        double      x;
        if (!strcmp(a, "--grpo")) grpo = true;
        else if (!strcmp(a, "--quiet")) quiet = true;
        else if (!(v = cli_value(cmd, argc, argv, &i))) return 2;
        else if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--init")) init = v;
        else if (!strcmp(a, "--log")) log_path = v;
        else if (!strcmp(a, "--size")) size = v;
        else if (!strcmp(a, "--mix")) {
            if (!parse_mix(v, p.mix)) return cli_usage_error(cmd, "bad --mix '%s'", v);
        } else if (!strcmp(a, "--steps") && cli_parse_int(v, 1, 10000000, &n)) p.steps = n, have_steps = true;
        else if (!strcmp(a, "--batch") && cli_parse_int(v, 1, 512, &n)) p.batch = (int)n, have_batch = true;
        else if (!strcmp(a, "--group") && cli_parse_int(v, 2, 64, &n)) p.group = (int)n;
        else if (!strcmp(a, "--sample-rounds") && cli_parse_int(v, 1, 64, &n)) p.sample_rounds = (int)n;
        else if (!strcmp(a, "--warmup") && cli_parse_int(v, 0, 10000000, &n)) warmup = n;
        else if (!strcmp(a, "--save-every") && cli_parse_int(v, 0, 10000000, &n)) save_every = n;
        else if (!strcmp(a, "-t") && cli_parse_int(v, 1, 64, &n)) p.n_threads = (int)n;
        else if (!strcmp(a, "--seed") && cli_parse_int(v, 0, INT64_MAX, &n)) p.seed = (uint64_t)n;
        else if (!strcmp(a, "--lr") && cli_parse_float(v, 1e-7, 1, &x)) p.lr = (float)x, have_lr = true;
        else if (!strcmp(a, "--beta") && cli_parse_float(v, 0, 10, &x)) p.beta = (float)x;
        else if (!strcmp(a, "--temperature") && cli_parse_float(v, 0.05, 5, &x)) p.temperature = (float)x;
        else return cli_usage_error(cmd, "unknown option or bad value: %s %s", a, v);
    }
    if (!out) return cli_usage_error(cmd, "-o OUT.gguf is required");
    if (grpo && !init) return cli_usage_error(cmd, "--grpo needs --init (the stage-1 model)");
    if (grpo) {
        if (!have_steps) p.steps = 100;
        if (!have_lr) p.lr = 5e-5f;
        if (!have_batch) p.batch = 8;
        p.lr_min = p.lr;
    } else {
        p.lr_min = p.lr / 10;
    }
    p.warmup = (int)(warmup >= 0 ? warmup : p.steps / 20);

    int        rc = 1;
    ds_gguf   *vocab = NULL;
    ds_tokenizer *tok = NULL;
    ds_tmodel *m = NULL, *ref = NULL;
    FILE      *logf = NULL;
    char       vocab_path[4096] = "";
    ds_status  st;
    if (init) {
        st = ds_gguf_open(init, &vocab);
        if (st == DS_OK) st = ds_tmodel_load(vocab, &m);
        if (st == DS_OK && grpo) st = ds_tmodel_load(vocab, &ref);
    } else {
        snprintf(vocab_path, sizeof vocab_path, "%s.vocab.tmp", out);
        st = ds_train_write_vocab(vocab_path);
        if (st == DS_OK) st = ds_gguf_open(vocab_path, &vocab);
    }
    if (st == DS_OK) st = ds_tokenizer_load(vocab, &tok);
    if (st == DS_OK && !m) {
        ds_train_config c = ds_train_config_default(ds_tokenizer_n_vocab(tok));
        if (!strcmp(size, "tiny")) {
            c.dim = 32, c.n_layers = 2, c.n_heads = 2, c.q_lora_rank = 16, c.kv_lora_rank = 16;
            c.qk_nope_head_dim = 8, c.qk_rope_head_dim = 8, c.v_head_dim = 8, c.inter_dim = 64;
            c.moe_inter_dim = 32, c.n_routed_experts = 4;
        } else if (strcmp(size, "small")) {
            rc = cli_usage_error(cmd, "unknown --size '%s' (tiny, small)", size);
            goto done;
        }
        st = ds_tmodel_new(&c, p.seed, &m);
    }
    if (st != DS_OK) {
        cli_error(cmd, "%s", ds_errmsg());
        goto done;
    }
    if (log_path && !(logf = fopen(log_path, "w"))) {
        cli_error(cmd, "%s: cannot write", log_path);
        goto done;
    }
    if (logf) fprintf(logf, "step\tloss\tlr\tgrad_norm\treward\taccuracy\tkl\tseconds\n");
    run_ctx ctx = {.log = logf, .quiet = quiet, .grpo = grpo, .save_every = save_every, .m = m,
                   .vocab = vocab, .out = out,
                   .extra = {"train.stage", grpo ? "grpo" : "sft", "train.tasks",
                             "add,sub,mul2x1,mul2x2,cmp,word", NULL}};
    p.log = on_log, p.ud = &ctx;
    if (!quiet)
        fprintf(stderr, "deepseek train: %s, %zu parameters, %d threads, %lld steps\n",
                grpo ? "GRPO" : "SFT", ds_tmodel_n_params(m), p.n_threads, (long long)p.steps);
    if (grpo) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.policy.tmp", out);
        st = ds_train_grpo(m, ref, tok, vocab, tmp, &p);
        remove(tmp);
    } else {
        st = ds_train_sft(m, tok, &p);
    }
    if (st == DS_OK) st = ds_tmodel_save(m, vocab, out, ctx.extra);
    if (st != DS_OK) {
        cli_error(cmd, "%s", ds_errmsg());
        goto done;
    }
    if (!quiet) fprintf(stderr, "deepseek train: wrote %s\n", out);
    rc = 0;
done:
    if (logf) fclose(logf);
    ds_tokenizer_free(tok);
    ds_tmodel_free(m);
    ds_tmodel_free(ref);
    ds_gguf_close(vocab);
    if (vocab_path[0]) remove(vocab_path);
    return rc;
}
