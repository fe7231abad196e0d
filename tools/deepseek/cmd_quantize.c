// cmd_quantize.c - placeholder, being written.
#include "commands.h"

const char cmd_quantize_usage[] = "usage: deepseek quantize\n";

int cmd_quantize(int argc, char **argv) {
    (void)argc;
    return cli_error(argv[0], "not implemented yet");
}
