/* test_metrics.c — the metrics files (metrics.h): headers once, a row per
 * call in the CSV and in metrics.h5, and truncation to a step for a resumed
 * run, in both. */
#include "testutil.h"

#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"

static int count_lines(const char *dir, const char *file)
{
    char path[1024], line[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0;
    while (fgets(line, sizeof line, f))
        n++;
    fclose(f);
    return n;
}

/* The values of metrics.h5:/group/column, into v (at most max); returns the count. */
static int h5_column(const char *dir, const char *group, const char *column, double *v, int max)
{
    char path[1024], name[128];
    snprintf(path, sizeof path, "%s/metrics.h5", dir);
    snprintf(name, sizeof name, "/%s/%s", group, column);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t s = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(s, &n, NULL);
    assert_true(n <= (hsize_t)max);
    H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
    return (int)n;
}

static void test_rows_and_truncation(void **state)
{
    (void)state;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/metrics", test_tmpdir());
    mkdir(dir, 0755);
    VdError err = {0};
    assert_int_equal(metrics_open(dir, &err), VD_OK);
    assert_int_equal(metrics_open(dir, &err), VD_OK); /* a resumed run: no second header */
    assert_int_equal(count_lines(dir, "metrics.csv"), 1);
    assert_int_equal(count_lines(dir, "epochs.csv"), 1);
    for (int s = 1; s <= 6; s++) {
        TrainRow row = {s * 10.0, 1, 100.0 - s, 90, 10 - s, 1e-3, 5000};
        assert_int_equal(metrics_train(dir, &row, &err), VD_OK);
        if (s % 2 == 0) {
            EpochRow e = {s / 2, s * 10.0, 99, 98, 90, 8, 1.5};
            assert_int_equal(metrics_epoch(dir, &e, &err), VD_OK);
        }
    }
    assert_int_equal(count_lines(dir, "metrics.csv"), 7);
    assert_int_equal(count_lines(dir, "epochs.csv"), 4);
    double v[16];
    assert_int_equal(h5_column(dir, "train", "loss", v, 16), 6);
    assert_true(v[0] == 99.0 && v[5] == 94.0);
    assert_int_equal(h5_column(dir, "test", "step", v, 16), 3);
    /* resumed from step 40: rows after it go, in both files */
    assert_int_equal(metrics_truncate(dir, 40, &err), VD_OK);
    assert_int_equal(count_lines(dir, "metrics.csv"), 5);
    assert_int_equal(count_lines(dir, "epochs.csv"), 3);
    assert_int_equal(h5_column(dir, "train", "step", v, 16), 4);
    assert_true(v[3] == 40.0);
    assert_int_equal(h5_column(dir, "test", "epoch", v, 16), 2);
    /* appending goes on after the cut */
    TrainRow row = {50, 2, 1, 1, 0, 1e-3, 1};
    assert_int_equal(metrics_train(dir, &row, &err), VD_OK);
    assert_int_equal(h5_column(dir, "train", "step", v, 16), 5);
    assert_true(v[4] == 50.0);
    /* a run that never logged: nothing to truncate, no error */
    char empty[700];
    snprintf(empty, sizeof empty, "%s/none", dir);
    mkdir(empty, 0755);
    assert_int_equal(metrics_truncate(empty, 0, &err), VD_OK);
}

/* A directory that cannot hold the files is one error, not a crash. */
static void test_unwritable(void **state)
{
    (void)state;
    VdError err = {0};
    assert_int_equal(metrics_open("/proc/no-such-dir", &err), VD_EX_CANTCREAT);
    assert_non_null(strstr(err.msg, "metrics.csv"));
}

int main(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_and_truncation),
        cmocka_unit_test(test_unwritable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
