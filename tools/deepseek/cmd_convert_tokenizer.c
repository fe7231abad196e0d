// cmd_convert_tokenizer.c - `deepseek convert-tokenizer`: a Hugging Face tokenizer to a
// vocab-only GGUF, so any tokenizer can be tested or repaired with this project alone.
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ds/tokenizer.h"

const char cmd_convert_tokenizer_usage[] =
    "usage: deepseek convert-tokenizer tokenizer.json [tokenizer_config.json] OUT.gguf\n"
    "                                  [--pre NAME] [--pad-to N]\n"
    "\n"
    "Writes a vocab-only GGUF (tokenizer.ggml.* keys and the chat template) from a Hugging\n"
    "Face byte-level BPE tokenizer. Added tokens marked special become CONTROL tokens, the\n"
    "others USER_DEFINED. The converted vocabulary is loaded once before it is written.\n"
    "\n"
    "  --pre NAME   pre-tokenizer (deepseek-v3, deepseek-llm, deepseek-coder, qwen2,\n"
    "               deepseek-r1-qwen, llama-bpe); default: recognised from the regexes\n"
    "  --pad-to N   pad the vocabulary with [PAD<i>] UNUSED tokens to N entries (as the\n"
    "               model's embedding has them, e.g. 129280 for DeepSeek-V3)\n";

int cmd_convert_tokenizer(int argc, char **argv) {
    const char *cmd = "convert-tokenizer", *pos[3] = {0};
    int         npos = 0;
    ds_tokenizer_convert_params p = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--pre")) {
            if (!(p.pre = cli_value(cmd, argc, argv, &i))) return 2;
        } else if (!strcmp(argv[i], "--pad-to")) {
            const char *v = cli_value(cmd, argc, argv, &i);
            if (!v) return 2;
            if (!cli_parse_int(v, 1, DS_TOKEN_MAX_VOCAB, &p.pad_to))
                return cli_usage_error(cmd, "--pad-to: '%s' is not a size in 1..%d", v, DS_TOKEN_MAX_VOCAB);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        } else if (npos < 3) {
            pos[npos++] = argv[i];
        } else {
            return cli_usage_error(cmd, "too many arguments");
        }
    }
    if (npos < 2) return cli_usage_error(cmd, "need tokenizer.json and OUT.gguf");
    p.tokenizer_json   = pos[0];
    p.tokenizer_config = npos == 3 ? pos[1] : NULL;
    const char *out    = pos[npos - 1];
    if (ds_tokenizer_convert_hf(&p, out) != DS_OK) return cli_error(cmd, "%s", ds_errmsg());
    fprintf(stderr, "deepseek convert-tokenizer: wrote %s\n", out);
    return 0;
}
