// log.h - diagnostics on stderr.
//
// Library code never writes to stdout; it reports through ds_log(), which writes one line to
// stderr when the level is at or above the threshold. The threshold comes from the
// environment variable DS_LOG (debug, info, warn, error; default info), read once.
#pragma once

typedef enum ds_log_level { DS_LOG_DEBUG, DS_LOG_INFO, DS_LOG_WARN, DS_LOG_ERROR } ds_log_level;

void ds_log(ds_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
