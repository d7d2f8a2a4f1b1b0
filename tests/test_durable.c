/* test_durable.c — replacing a file through a temporary one (durable.h):
 * readers see the old file until the commit, an abandoned write leaves it
 * alone, and a failing step is named. */
#include "testutil.h"

#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"

static void slurp(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    fclose(f);
}

static void test_commit_replaces_whole(void **state)
{
    (void)state;
    char path[600], text[64];
    snprintf(path, sizeof path, "%s/file.txt", test_tmpdir());
    VdError err = {0};
    DurableFile d;
    assert_int_equal(durable_open(&d, path, "w", &err), VD_OK);
    fputs("old\n", d.f);
    assert_int_equal(durable_commit(&d, &err), VD_OK);
    slurp(path, text, sizeof text);
    assert_string_equal(text, "old\n");
    /* until the commit a reader sees the old file */
    assert_int_equal(durable_open(&d, path, "w", &err), VD_OK);
    fputs("new\n", d.f);
    fflush(d.f);
    slurp(path, text, sizeof text);
    assert_string_equal(text, "old\n");
    assert_int_equal(durable_commit(&d, &err), VD_OK);
    slurp(path, text, sizeof text);
    assert_string_equal(text, "new\n");
    assert_int_equal(access(d.tmp, F_OK), -1);
    /* abandoned: the file stays, the temporary goes */
    assert_int_equal(durable_open(&d, path, "w", &err), VD_OK);
    fputs("half", d.f);
    durable_discard(&d);
    slurp(path, text, sizeof text);
    assert_string_equal(text, "new\n");
    assert_int_equal(access(d.tmp, F_OK), -1);
}

/* The directory vanished under the writer: the rename fails, is named, and
 * nothing is left behind. */
static void test_failing_step_named(void **state)
{
    (void)state;
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/gone", test_tmpdir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/f", dir);
    VdError err = {0};
    DurableFile d;
    assert_int_equal(durable_begin(&d, path, &err), VD_OK);
    FILE *f = fopen(d.tmp, "w");
    fputs("x", f);
    fclose(f);
    /* the temporary renamed away: fsync of it fails first */
    char other[VD_PATH_MAX + 16];
    snprintf(other, sizeof other, "%s.elsewhere", d.tmp);
    rename(d.tmp, other);
    assert_int_equal(durable_commit(&d, &err), VD_EX_IOERR);
    assert_non_null(strstr(err.msg, "failed at fsync"));
    assert_non_null(strstr(err.msg, path));
    /* a path too long for the temporary name */
    char longp[VD_PATH_MAX + 10];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    VdError e2 = {0};
    assert_int_equal(durable_begin(&d, longp, &e2), VD_EX_CANTCREAT);
    VdError e3 = {0};
    assert_int_equal(durable_open(&d, "/proc/nope/x", "w", &e3), VD_EX_CANTCREAT);
    assert_non_null(strstr(e3.msg, "/proc/nope/x.tmp"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_replaces_whole),
        cmocka_unit_test(test_failing_step_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
