// train.h - training small deepseek2 models (MLA + MoE) on CPU, in f32.
//
// DeepSeek-R1's recipe at toy scale: supervised training on generated reasoning traces
// (stage 1), then GRPO with a verifiable reward (stage 2). The model is exactly the
// `deepseek2` architecture the inference code runs (deepseek-gguf.md §3.1, §4): MLA with the
// compressed latent KV path (q_a -> norm -> q_b, kv_a_mqa -> [latent | k_pe], per-head
// k_b/v_b), RoPE (NORM mode) on the rope part, a dense FFN in the leading blocks, then
// routed experts (sigmoid scores, a selection bias exp_probs_b, top-k, normalised weights)
// plus one shared expert. The selection bias gets no gradient: DeepSeek-V3's
// auxiliary-loss-free balancing moves it after each step (ds_tmodel_balance).
//
// Parameters live in one f32 array laid out tensor by tensor with the GGUF names and shapes,
// so a checkpoint is the array written as a GGUF (checkpoint.c) and loads in ds_model_load.
//
// A training step runs sequences independently: each worker thread owns a ds_tws (the
// activations of one sequence) and a gradient array; ds_tfwd then ds_tbwd on each sequence,
// then the gradients are summed. The weights are only read during a step.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/err.h"
#include "ds/tokenizer.h"

// ---- model shape ----

typedef struct ds_train_config {
    int   n_vocab;
    int   dim;                 // d
    int   n_layers;
    int   n_dense_layers;      // leading blocks with a dense FFN
    int   n_heads;             // H
    int   q_lora_rank;         // > 0
    int   kv_lora_rank;        // C
    int   qk_nope_head_dim;    // Dn
    int   qk_rope_head_dim;    // R (even)
    int   v_head_dim;          // Dv
    int   inter_dim;           // dense FFN width
    int   moe_inter_dim;       // width of each expert
    int   n_routed_experts;    // E
    int   n_activated_experts; // K
    int   n_shared_experts;    // shared FFN width = moe_inter_dim * n_shared_experts
    float route_scale;         // expert_weights_scale
    float rope_theta;
    float norm_eps;
    int   n_ctx;               // longest sequence (training and context_length)
} ds_train_config;

// A small default: a few hundred thousand parameters, good for the arithmetic tasks.
ds_train_config ds_train_config_default(int n_vocab);
// DS_EINVAL naming the field when a value is out of range or inconsistent.
ds_status ds_train_config_check(const ds_train_config *c);

// One parameter tensor inside the flat array.
typedef struct ds_tparam {
    char    name[64]; // GGUF name, e.g. "blk.1.attn_kv_a_mqa.weight"
    int     n_dims;
    int64_t ne[3];    // GGUF order: ne[0] contiguous
    size_t  off;      // first element in the flat array
    size_t  n;        // elements
    bool    decay;    // weight decay applies (matrices)
    bool    trained;  // false for exp_probs_b (moved by the balancer, not by the optimiser)
} ds_tparam;

typedef struct ds_tmodel ds_tmodel;

// Builds a model with random weights (seeded; matrices N(0, 0.02), residual outputs scaled by
// 1/sqrt(2 n_layers), norms 1, bias 0).
ds_status ds_tmodel_new(const ds_train_config *c, uint64_t seed, ds_tmodel **out);
void      ds_tmodel_free(ds_tmodel *m); // NULL is a no-op

const ds_train_config *ds_tmodel_config(const ds_tmodel *m);
size_t                 ds_tmodel_n_params(const ds_tmodel *m); // all floats in the array
float                 *ds_tmodel_weights(ds_tmodel *m);
const ds_tparam       *ds_tmodel_tensors(const ds_tmodel *m, int *n);
const ds_tparam       *ds_tmodel_find(const ds_tmodel *m, const char *name); // NULL if absent

// ---- one sequence: forward and backward ----

typedef struct ds_tws ds_tws;

ds_tws *ds_tws_new(const ds_train_config *c); // activations for up to n_ctx tokens
void    ds_tws_free(ds_tws *ws);

// Runs tok[0..T) (1 <= T <= n_ctx, ids < n_vocab: asserted). Afterwards logp[t] (t < T-1) is
// log p(tok[t+1] | tok[0..t]) and, when `logits` is non-NULL, it receives T * n_vocab logits.
// Expert choices are counted into load[moe_layer * E + e] when load is non-NULL.
void         ds_tfwd(const ds_tmodel *m, ds_tws *ws, const int32_t *tok, int T, float *logits,
                     int *load);
const float *ds_tws_logp(const ds_tws *ws); // T-1 values of the last ds_tfwd

// Backward of sum_t tw[t] * -logp[t] (t < T-1) for the sequence of the last ds_tfwd;
// gradients are added into grad (ds_tmodel_n_params floats).
void ds_tbwd(const ds_tmodel *m, ds_tws *ws, const float *tw, float *grad);

// Aux-loss-free balancing (DeepSeek-V3 §2.1.2): bias[e] += gamma * sign(mean load - load[e])
// for every MoE layer, from the counts ds_tfwd gathered.
void ds_tmodel_balance(ds_tmodel *m, const int *load, float gamma);
int  ds_tmodel_n_moe_layers(const ds_tmodel *m);

// ---- optimiser ----

typedef struct ds_adamw {
    float beta1, beta2, eps, weight_decay;
    float *mom, *vel; // n_params each
    int64_t t;
} ds_adamw;

void ds_adamw_init(ds_adamw *o, size_t n_params);
void ds_adamw_free(ds_adamw *o);
// One step with learning rate lr on the parameters flagged trained.
void ds_adamw_step(ds_adamw *o, ds_tmodel *m, const float *grad, float lr);
// Scales grad so its global L2 norm is at most max_norm; returns the norm before clipping.
float ds_grad_clip(float *grad, size_t n, float max_norm);
// Linear warm-up over `warmup` steps, then cosine from lr_max down to lr_min at `total`.
float ds_lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min);

// ---- matrix products used by the layers (threads run whole sequences, so these are serial) ----

// Y[t][o] = sum_i X[t][i] W[o][i]                    (Y, X with row strides ldy, ldx)
void ds_tmm_nt(float *Y, int ldy, const float *X, int ldx, const float *W, int T, int I, int O);
// Y[t][o] += sum_i X[t][i] M[i][o]
void ds_tmm_nn_acc(float *Y, int ldy, const float *X, int ldx, const float *M, int T, int I,
                   int O);
// G[o][i] += sum_t A[t][o] B[t][i]
void ds_tmm_tn_acc(float *G, const float *A, int lda, const float *B, int ldb, int T, int O,
                   int I);

// ---- layers (layers.c), exposed for the finite-difference tests ----

// y = x / sqrt(mean(x^2) + eps) * w over rows of n; rinv[t] keeps 1/rms.
void ds_trms_fwd(float *y, float *rinv, const float *x, const float *w, int T, int n, float eps);
// dx += ..., dw += ...
void ds_trms_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rinv,
                 const float *w, int T, int n);
// RoPE (NORM pairs) on rows of R values at stride ld; cs = T rows of R (cos, sin) pairs.
void ds_trope_fwd(float *x, int ld, const float *cs, int T, int R);
void ds_trope_bwd(float *dx, int ld, const float *cs, int T, int R); // rotates back
void ds_trope_table(float *cs, int T, int R, float theta);
// SwiGLU FFN: Y = down(silu(gate X) * up X); g, u, h keep n x F activations.
void ds_tffn_fwd(float *Y, float *g, float *u, float *h, const float *X, const float *gate,
                 const float *up, const float *down, int n, int d, int F);
void ds_tffn_bwd(float *dX, float *dgate, float *dup, float *ddown, const float *dY,
                 const float *g, const float *u, const float *h, const float *X,
                 const float *gate, const float *up, const float *down, int n, int d, int F);

// Causal attention of the decompressed MLA form for all heads: scores
// scale * (qn.kn + qpe.kpe), P = softmax, O = P V. q: T x H*(Dn+R) (nope then rope part per
// head), kn: T x H*Dn, kpe: T x R (shared by the heads), v: T x H*Dv, o: T x H*Dv,
// P: H x T x T saved probabilities.
typedef struct ds_tattn_dims {
    int T, H, Dn, R, Dv;
    float scale;
} ds_tattn_dims;
void ds_tattn_fwd(float *o, float *P, const float *q, const float *kn, const float *kpe,
                  const float *v, const ds_tattn_dims *a);
void ds_tattn_bwd(float *dq, float *dkn, float *dkpe, float *dv, const float *dout,
                  const float *P, const float *q, const float *kn, const float *kpe,
                  const float *v, const ds_tattn_dims *a);

// Routing of T tokens: probs = sigmoid(logits), choose top-K of probs + bias, w = probs of
// the chosen / their sum * scale. idx, w: T x K.
void ds_troute_fwd(int *idx, float *w, const float *logits, const float *bias, int T, int E,
                   int K, float scale);
// dlogits (T x E, overwritten) from dw (T x K).
void ds_troute_bwd(float *dlogits, const float *dw, const float *logits, const int *idx,
                   int T, int E, int K, float scale);

// Cross-entropy: logp[t] = log softmax(logits[t])[y[t]]; probs kept in place of logits.
void ds_tce_fwd(float *logp, float *logits, const int32_t *y, int T, int V);
// dlogits[t] = tw[t] * (p - onehot(y)) (overwrites), from the probs ds_tce_fwd left.
void ds_tce_bwd(float *dlogits, const float *probs, const int32_t *y, const float *tw, int T,
                int V);

// ---- checkpoints (checkpoint.c) ----

// Writes the model as a deepseek2 GGUF (all tensors f32) with the tokenizer `vocab_gguf`'s
// tokenizer.* keys copied in (may be NULL), plus `extra` train.* string keys (NULL-ended
// key/value list, may be NULL).
struct ds_gguf;
ds_status ds_tmodel_save(const ds_tmodel *m, const struct ds_gguf *vocab, const char *path,
                         const char *const *extra);
// Reads a checkpoint written by ds_tmodel_save (or any f32 deepseek2 GGUF of the supported
// shape). DS_EFORMAT / DS_EUNSUPPORTED naming the key or tensor.
ds_status ds_tmodel_load(const struct ds_gguf *g, ds_tmodel **out);

// ---- the arithmetic vocabulary (vocab.c) ----

// Writes a vocab-only GGUF: byte-level BPE (gpt2 model, deepseek-v3 pre-tokenizer: digits stay
// single tokens), merges for the words of the task phrasings, the DeepSeek special tokens and
// the R1 chat template.
ds_status ds_train_write_vocab(const char *path);

// ---- arithmetic tasks (data/tasks.c) ----

typedef enum ds_task_family {
    DS_TASK_ADD,    // a + b, 1 to 3 digits each
    DS_TASK_SUB,    // a - b, 1 to 3 digits, a >= b
    DS_TASK_MUL2X1, // 2-digit * 1-digit
    DS_TASK_MUL2X2, // 2-digit * 2-digit
    DS_TASK_CMP,    // which of two numbers is larger
    DS_TASK_WORD,   // addition, subtraction or multiplication as a short story
    DS_TASK_COUNT
} ds_task_family;

#define DS_TASK_BOS       "<｜begin▁of▁sentence｜>"
#define DS_TASK_EOS       "<｜end▁of▁sentence｜>"
#define DS_TASK_USER      "<｜User｜>"
#define DS_TASK_ASSISTANT "<｜Assistant｜>"

typedef struct ds_task {
    ds_task_family family;
    int            op;        // operation for the split: 0 add, 1 sub, 2 mul, 3 cmp
    long           a, b;      // operands
    long           answer;
    char           prompt[256]; // the user's question
    char           think[2048]; // the working, without <think> tags or trailing newline
} ds_task;

const char *ds_task_family_name(ds_task_family f); // "add", ...; "unknown" if out of range
bool        ds_task_family_from_name(const char *name, ds_task_family *out);
// True when the problem (op, a, b) belongs to the held-out split (about 1 in 8).
bool ds_task_is_heldout(int op, long a, long b);
// Draws a problem of family f from the training (heldout false) or held-out split.
void ds_task_sample(ds_task_family f, bool heldout, uint64_t *rng, ds_task *out);
// The R1 prompt: BOS <｜User｜>question<｜Assistant｜><think>\n (snprintf rules).
size_t ds_task_prompt(const ds_task *t, char *buf, size_t cap);
// The reply the model learns: working, "\n</think>\n\n", the answer (EOS is a token).
size_t ds_task_reply(const ds_task *t, char *buf, size_t cap);
// Reads a generated reply (the text after the prompt). Returns false when no answer follows
// a </think>; *well_formed says the working is non-empty, closed once, and nothing but the
// number follows.
bool ds_task_parse_reply(const char *s, size_t len, long *answer, bool *well_formed);

// ---- training runs (trainer.c: stage 1; grpo.c: stage 2; eval.c) ----

typedef struct ds_train_log {
    int64_t step, steps;
    float   loss;      // SFT: mean NLL per target token; GRPO: the surrogate loss
    float   lr, grad_norm;
    float   reward;    // GRPO: mean reward of the step's samples
    float   accuracy;  // GRPO: fraction of samples with the right answer
    float   kl;        // GRPO: mean per-token KL estimate to the reference
    double  elapsed_s;
} ds_train_log;

typedef void (*ds_train_log_fn)(void *ud, const ds_train_log *e);

typedef struct ds_train_params {
    int      n_threads;
    int64_t  steps;
    int      batch;         // sequences per step (SFT) or problems per step (GRPO)
    int      warmup;
    float    lr, lr_min, clip;
    float    balance_gamma; // bias update speed of the aux-loss-free balancing
    uint64_t seed;
    float    mix[DS_TASK_COUNT]; // how often each family is drawn (relative)
    // GRPO
    int      group;         // samples per problem
    // up to this many rounds of `batch` problems per step, until `batch` groups hold both
    // right and wrong replies (DAPO's dynamic sampling; 1 = plain GRPO)
    int      sample_rounds;
    float    beta;          // KL penalty to the reference model
    float    temperature;
    int      max_new;       // longest reply
    ds_train_log_fn log;
    void           *ud;
} ds_train_params;

ds_train_params ds_train_params_default(void);

// The tokens of a task as the model sees it: prompt, reply, EOS. *n_prompt = prompt tokens.
ds_status ds_task_tokens(const ds_task *t, const ds_tokenizer *tok, ds_tokens *out, int *n_prompt);

// Stage 1: next-token loss on the replies (prompt tokens are context only).
ds_status ds_train_sft(ds_tmodel *m, const ds_tokenizer *tok, const ds_train_params *p);

// Stage 2: GRPO. For each of p->batch problems, p->group replies are sampled from the current
// model; reward = 1 for the right answer + 0.1 for well-formed thinking; advantages are the
// rewards standardised within the group; loss = -A * log pi per reply token (mean over the
// reply) + beta * KL(pi || ref) (the k3 estimator). `vocab` supplies the tokenizer keys of
// the temporary checkpoints the sampler loads; tmp_path is where they are written.
ds_status ds_train_grpo(ds_tmodel *m, const ds_tmodel *ref, const ds_tokenizer *tok,
                        const struct ds_gguf *vocab, const char *tmp_path,
                        const ds_train_params *p);

// Held-out accuracy per family of the model in `g`, decoded with the inference code.
enum { DS_EVAL_WRONG_KEPT = 8, DS_EVAL_MAX_SAMPLES = 64 };

// How replies are decoded: greedy (temperature 0, k = 1), or k replies per problem drawn at
// `temperature` with nucleus `top_p`; the share of right replies is then pass@1 as
// DeepSeek-R1 reports it (k samples at temperature 0.6, top-p 0.95).
typedef struct ds_eval_sampling {
    float temperature, top_p;
    int   k;
} ds_eval_sampling;

typedef struct ds_eval_result {
    // per family: problems, and right / well-formed replies out of n * k
    int n[DS_TASK_COUNT], correct[DS_TASK_COUNT], well_formed[DS_TASK_COUNT];
    int k;
    char example[DS_TASK_COUNT][1536]; // the first reply of each family, as generated
    // the first DS_EVAL_WRONG_KEPT wrong replies of each family (n_wrong_kept[f] of them)
    int  n_wrong_kept[DS_TASK_COUNT];
    char wrong[DS_TASK_COUNT][DS_EVAL_WRONG_KEPT][1536];
} ds_eval_result;

// Evaluates up to n_per_family distinct held-out problems of each family with want[f] set
// (fewer when the split holds fewer); sampling NULL means greedy. The problems depend on
// seed only; sampled replies also on seed, not on n_threads. Errors of loading the model
// or running it.
ds_status ds_eval_tasks(const struct ds_gguf *g, const bool *want, int n_per_family,
                        int n_threads, uint64_t seed, const ds_eval_sampling *sampling,
                        ds_eval_result *out);
