// cmd_list.c - `deepseek list`: the models of the models folder.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ds/buf.h"
#include "ds/hub.h"

const char cmd_list_usage[] =
    "usage: deepseek list [--dir DIR] [--json]\n"
    "\n"
    "Lists the models of the models folder ($DS_MODELS, default ~/.local/share/deepseek/models;\n"
    "`deepseek pull` puts them there): name, architecture, file type (general.file_type, or the\n"
    "type holding most of the weights when the file does not say) and size on disk. A name\n"
    "from this list can be given to -m. Files that cannot be read are listed with the reason.\n"
    "\n"
    "  --dir DIR   list DIR instead\n"
    "  --json      one JSON array instead of the table\n";

static void json_str_or_null(ds_buf *b, const char *s) {
    if (s) ds_buf_json_str(b, s, strlen(s));
    else ds_buf_puts(b, "null");
}

static void print_json(const ds_model_entry *e, size_t n) {
    ds_buf b = {0};
    ds_buf_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        ds_buf_puts(&b, i ? ",\n {\"name\": " : "\n {\"name\": ");
        json_str_or_null(&b, e[i].name);
        ds_buf_puts(&b, ", \"path\": ");
        json_str_or_null(&b, e[i].path);
        ds_buf_puts(&b, ", \"architecture\": ");
        json_str_or_null(&b, e[i].arch);
        ds_buf_puts(&b, ", \"type\": ");
        json_str_or_null(&b, e[i].type);
        ds_buf_printf(&b, ", \"size\": %" PRId64 ", \"parts\": %d, \"error\": ", e[i].size, e[i].n_parts);
        json_str_or_null(&b, e[i].error);
        ds_buf_puts(&b, "}");
    }
    ds_buf_puts(&b, n ? "\n]\n" : "]\n");
    fputs(b.data, stdout);
    ds_buf_free(&b);
}

static void print_table(const ds_model_entry *e, size_t n) {
    printf("%-48s %-12s %-10s %10s\n", "NAME", "ARCH", "TYPE", "SIZE");
    for (size_t i = 0; i < n; i++) {
        double gib = (double)e[i].size / (1024.0 * 1024.0 * 1024.0);
        char   size[32];
        if (gib >= 1) snprintf(size, sizeof size, "%.2f GiB", gib);
        else snprintf(size, sizeof size, "%.1f MiB", gib * 1024);
        printf("%-48s %-12s %-10s %10s", e[i].name, e[i].arch ? e[i].arch : "-", e[i].type ? e[i].type : "-",
               size);
        if (e[i].n_parts > 1) printf("  (%d parts)", e[i].n_parts);
        if (e[i].error) printf("  unreadable: %s", e[i].error);
        putchar('\n');
    }
}

int cmd_list(int argc, char **argv) {
    const char *cmd = argv[0], *dir_arg = NULL;
    bool        json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--dir")) {
            if (!(dir_arg = cli_value(cmd, argc, argv, &i))) return 2;
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    char dir[4096];
    if (dir_arg) snprintf(dir, sizeof dir, "%s", dir_arg);
    else if (ds_models_dir(dir, sizeof dir) != DS_OK) return cli_error(cmd, "%s", ds_errmsg());
    ds_model_entry *e = NULL;
    size_t          n = 0;
    if (ds_models_list(dir, &e, &n) != DS_OK) return cli_error(cmd, "%s", ds_errmsg());
    if (json) print_json(e, n);
    else if (n) print_table(e, n);
    else fprintf(stderr, "no models in %s (get one with: deepseek pull REPO)\n", dir);
    ds_models_list_free(e, n);
    return 0;
}
