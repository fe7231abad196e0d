// test_cli_malformed.c - `deepseek inspect` and model loading (`deepseek run`) on every
// malformed GGUF of gguf_malformed.c.
//
// Each file is given to the real binary ($DS_BIN, set by CMake) in a child process, killed
// after 5 s if it hangs. Each must end with exit status 1 (not a signal: no crash, no abort),
// print exactly one line on stderr that names the file and the problem, and finish within a
// second. The hparam cases (valid containers with absurd hyperparameters) must be rejected the
// same way by inspect's model validation. Controls: shared, valid files must exit 0, so a
// binary that rejects everything cannot pass.
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gguf_malformed.h"

enum { KILL_AFTER_MS = 5000, MAX_MS = 1000 };

typedef struct run_result {
    int    exit_code; // -1 when killed by a signal
    int    signal;
    double ms;
    char   err[4096]; // stderr (truncated)
} run_result;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

// Runs `bin args...` (NULL-terminated), collecting stderr, killing it after KILL_AFTER_MS.
static void run_cmd(const char *bin, const char *const *args, run_result *r) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    double t0 = now_ms();
    pid_t  pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        char *argv[16] = {(char *)bin};
        for (int i = 0; args[i] && i < 14; i++) argv[i + 1] = (char *)args[i];
        execv(bin, argv);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    bool   open_pipe = true, killed = false;
    int    status = 0;
    for (;;) {
        if (open_pipe) { // the child's exit closes the pipe
            struct pollfd p = {.fd = fds[0], .events = POLLIN};
            if (poll(&p, 1, 50) > 0) {
                char    tmp[1024];
                ssize_t k = read(fds[0], tmp, sizeof tmp);
                if (k == 0 || (k < 0 && errno != EINTR)) open_pipe = false;
                for (ssize_t i = 0; i < k && n + 1 < sizeof r->err; i++) r->err[n++] = tmp[i];
            }
        } else {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
            if (waitpid(pid, &status, WNOHANG) == pid) break;
        }
        if (!killed && now_ms() - t0 > KILL_AFTER_MS) {
            kill(pid, SIGKILL);
            killed = true;
        }
    }
    r->ms = now_ms() - t0;
    close(fds[0]);
    r->err[n] = '\0';
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static void run_inspect(const char *bin, const char *file, run_result *r) {
    run_cmd(bin, (const char *[]){"inspect", file, NULL}, r);
}

// Model loading: `deepseek run` opens the file and loads the model before it generates.
static void run_load(const char *bin, const char *file, run_result *r) {
    run_cmd(bin, (const char *[]){"run", "-m", file, "-p", "a", "-n", "1", NULL}, r);
}

// Checks one run against a case: status 1, one line on stderr naming the file (and, when
// `want_problem`, the expected problem), fast. Returns false (after printing why) otherwise.
// Model loading may meet a different, equally real problem first (a hyperparameter file with
// no tokenizer), so it is held only to naming the file.
static bool rejected_cleanly(const gguf_malformed_case *c, const char *how, bool want_problem,
                             const run_result *r) {
    size_t      len = strlen(r->err);
    const char *nl = strchr(r->err, '\n');
    bool one_line = len > 1 && nl == r->err + len - 1;
    bool names = strstr(r->err, c->name) != NULL &&
                 (!want_problem || !c->expect || strstr(r->err, c->expect));
    if (r->exit_code == 1 && one_line && names && r->ms <= MAX_MS) return true;
    fprintf(stderr, "FAIL %s %s%s: exit %d, signal %d, %.0f ms, stderr: %s\n", how, c->name,
            c->hparam ? " (hparam)" : "", r->exit_code, r->signal, r->ms, r->err);
    return false;
}

static const char *bin_or_skip(void) {
    const char *bin = getenv("DS_BIN");
    if (!bin || !*bin || access(bin, X_OK) != 0) {
        fprintf(stderr, "skipping: DS_BIN does not name the deepseek binary\n");
        return NULL;
    }
    return bin;
}

static void every_malformed_file_rejected(void **state) {
    (void)state;
    const char *bin = bin_or_skip();
    if (!bin) skip();
    char tmpl[] = "/tmp/ds_cli_malformed_XXXXXX";
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    assert_int_equal(gguf_malformed_write_dir(dir), (int)gguf_malformed_count());
    int    failures = 0;
    double slowest = 0;
    for (size_t i = 0; i < gguf_malformed_count(); i++) {
        const gguf_malformed_case *c = gguf_malformed_get(i);
        char                       path[512];
        snprintf(path, sizeof path, "%s/%s.gguf", dir, c->name);
        run_result r;
        run_inspect(bin, path, &r);
        if (r.ms > slowest) slowest = r.ms;
        failures += !rejected_cleanly(c, "inspect", true, &r);
        run_load(bin, path, &r);
        if (r.ms > slowest) slowest = r.ms;
        failures += !rejected_cleanly(c, "run", false, &r);
        unlink(path);
    }
    char valid[512];
    snprintf(valid, sizeof valid, "%s/valid.gguf", dir);
    unlink(valid);
    rmdir(dir);
    fprintf(stderr, "%zu files, slowest %.0f ms\n", gguf_malformed_count(), slowest);
    assert_int_equal(failures, 0);
}

static void valid_files_accepted(void **state) {
    (void)state;
    const char *bin = bin_or_skip();
    if (!bin) skip();
    const char *files[] = {"testdata/models/tiny-qwen2-f32.gguf", "testdata/models/tiny-dsv3-q4_k_m.gguf",
                           "testdata/vocab/ggml-vocab-deepseek-v3.gguf"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        if (!test_shared_path(path, sizeof path, files[i])) continue;
        run_result r;
        run_inspect(bin, path, &r);
        if (r.exit_code != 0) fail_msg("%s: exit %d, stderr: %s", files[i], r.exit_code, r.err);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_files_accepted),
        cmocka_unit_test(every_malformed_file_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
