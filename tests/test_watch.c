/* test_watch.c — the stall watchdog (watch.h): a stalled process exits 69
 * at once, or under mpirun with a short link check waits for mpirun to end
 * the job first, and its main thread goes no further meanwhile; a link
 * check setting that is no number is named in its line. */
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "watch.h"

static void test_grace_only_under_mpirun_with_a_short_check(void **state)
{
    (void)state;
    /* not started by mpirun: exit at once */
    assert_true(watch_grace_seconds(NULL, "10", "3", "3") == 0);
    assert_true(watch_grace_seconds("", "10", "3", "3") == 0);
    /* Open MPI's defaults (300 + 20 x 9 s) are too long to wait for */
    assert_true(watch_grace_seconds("1.0;tcp://10.0.0.1:5000", NULL, NULL, NULL) == 0);
    /* the longest the check takes, and 5 s for mpirun to act on it */
    assert_true(watch_grace_seconds("1.0;tcp://10.0.0.1:5000", "10", "3", "3") == 24);
    assert_true(watch_grace_seconds("1.0;tcp://10.0.0.1:5000", "15", "5", "3") == 35);
    /* a part left at its default counts with it */
    assert_true(watch_grace_seconds("1.0;tcp://10.0.0.1:5000", "10", NULL, "1") == 35);
    assert_true(watch_grace_seconds("1.0;tcp://10.0.0.1:5000", "45", "5", "4") == 0);
    assert_true(watch_grace_seconds("1.0;tcp://10.0.0.1:5000", "30", "10", "3") == 65);
    /* keepalive off, or a value Open MPI would not take: no wait */
    assert_true(watch_grace_seconds("1.0;tcp://10.0.0.1:5000", "0", "3", "3") == 0);
    assert_true(watch_grace_seconds("1.0;tcp://10.0.0.1:5000", "ten", "3", "3") == 0);
    assert_true(watch_grace_seconds("1.0;tcp://10.0.0.1:5000", "10", "3s", "3") == 0);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A child process whose wait (5 s) outlasts --stall-timeout 0.5 and then
 * returns, as when a cut link comes back: it must exit 69, after grace
 * seconds, and never get past the wait. Its stderr goes to err_path (NULL:
 * the test's). Returns the seconds it took. */
static double run_stalled_child(int *status, int *went_on, const char *err_path)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    double t0 = now_s();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        if (err_path) {
            int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (e < 0 || dup2(e, 2) < 0)
                _exit(1);
        }
        watch_start(0.5, 0);
        watch_wait("a test wait");
        struct timespec nap = {5, 0};
        nanosleep(&nap, NULL);
        watch_done();
        (void)!write(fd[1], "x", 1); /* the main thread went on: wrong */
        _exit(0);
    }
    close(fd[1]);
    assert_int_equal(waitpid(pid, status, 0), pid);
    double took = now_s() - t0;
    char c;
    *went_on = read(fd[0], &c, 1) == 1;
    close(fd[0]);
    return took;
}

static void test_stalled_process_exits_69(void **state)
{
    (void)state;
    unsetenv("OMPI_MCA_orte_hnp_uri");
    int status, went_on;
    double took = run_stalled_child(&status, &went_on, NULL);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 69);
    assert_false(went_on);
    assert_true(took < 4); /* at the timeout, not after the wait */
}

static void test_stalled_process_under_mpirun_waits_for_it(void **state)
{
    (void)state;
    setenv("OMPI_MCA_orte_hnp_uri", "1.0;tcp://10.0.0.1:5000", 1);
    setenv("OMPI_MCA_oob_tcp_keepalive_time", "1", 1);
    setenv("OMPI_MCA_oob_tcp_keepalive_intvl", "1", 1);
    setenv("OMPI_MCA_oob_tcp_keepalive_probes", "1", 1);
    int status, went_on;
    double took = run_stalled_child(&status, &went_on, NULL); /* grace: 1 + 1 x 1 + 5 s */
    unsetenv("OMPI_MCA_orte_hnp_uri");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 69);
    assert_false(went_on); /* the wait returned during the grace: parked */
    assert_true(took >= 0.5 + 7 - 0.1);
}

/* Under mpirun, a keepalive setting that is no whole number of seconds
 * ("15s"): no wait for mpirun, and the line names the setting rather than
 * saying mpirun checks no links. */
static void test_unparsed_keepalive_named(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/stall.err", test_tmpdir());
    setenv("OMPI_MCA_orte_hnp_uri", "1.0;tcp://10.0.0.1:5000", 1);
    setenv("OMPI_MCA_oob_tcp_keepalive_time", "15s", 1);
    setenv("OMPI_MCA_oob_tcp_keepalive_intvl", "5", 1);
    setenv("OMPI_MCA_oob_tcp_keepalive_probes", "3", 1);
    int status, went_on;
    double took = run_stalled_child(&status, &went_on, path);
    unsetenv("OMPI_MCA_orte_hnp_uri");
    unsetenv("OMPI_MCA_oob_tcp_keepalive_time");
    unsetenv("OMPI_MCA_oob_tcp_keepalive_intvl");
    unsetenv("OMPI_MCA_oob_tcp_keepalive_probes");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 69);
    assert_false(went_on);
    assert_true(took < 4);
    char line[1024] = "";
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    unlink(path);
    rmdir(test_tmpdir());
    assert_non_null(strstr(line, ": OMPI_MCA_oob_tcp_keepalive_time=15s is not a whole number of "
                                 "seconds"));
    assert_null(strstr(line, "unless it checks its links"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grace_only_under_mpirun_with_a_short_check),
        cmocka_unit_test(test_stalled_process_exits_69),
        cmocka_unit_test(test_stalled_process_under_mpirun_waits_for_it),
        cmocka_unit_test(test_unparsed_keepalive_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
