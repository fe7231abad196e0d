// cmd_inspect.c - placeholder, being written.
#include "commands.h"

const char cmd_inspect_usage[] = "usage: deepseek inspect\n";

int cmd_inspect(int argc, char **argv) {
    (void)argc;
    return cli_error(argv[0], "not implemented yet");
}
