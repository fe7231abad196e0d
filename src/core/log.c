// log.c - one line per message on stderr, filtered by the DS_LOG threshold (read once).
#include "ds/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t threshold_once = PTHREAD_ONCE_INIT;
static ds_log_level   threshold      = DS_LOG_INFO; // written once, under threshold_once

static void read_threshold(void) {
    const char *v = getenv("DS_LOG");
    if (!v) return;
    if (!strcmp(v, "debug")) threshold = DS_LOG_DEBUG;
    else if (!strcmp(v, "info")) threshold = DS_LOG_INFO;
    else if (!strcmp(v, "warn")) threshold = DS_LOG_WARN;
    else if (!strcmp(v, "error")) threshold = DS_LOG_ERROR;
}

void ds_log(ds_log_level level, const char *fmt, ...) {
    pthread_once(&threshold_once, read_threshold);
    if (level < threshold) return;
    static const char *const prefix[] = {"debug: ", "", "warning: ", "error: "};
    char    line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    fprintf(stderr, "%s%s\n", prefix[level], line);
}
