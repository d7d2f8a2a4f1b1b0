/* test_metrics.c — the metrics files (metrics.h): a row per call in the CSV
 * and in metrics.h5, truncation to a step for a resumed run in both, rows
 * of an older layout rewritten to the current columns, and a metrics.h5
 * that cannot be written costing a warning, not the rows. */
#include "testutil.h"

#include <hdf5.h>
#include <math.h>
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

/* The values of metrics.h5:/group/column, into v (at most max); returns the
 * count, or -1 if the file cannot be read. */
static int h5_column(const char *dir, const char *group, const char *column, double *v, int max)
{
    char path[1024], name[128];
    snprintf(path, sizeof path, "%s/metrics.h5", dir);
    snprintf(name, sizeof name, "/%s/%s", group, column);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return -1;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t s = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(s, &n, NULL);
    assert_true(n <= (hsize_t)max);
    if (n)
        H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
    return (int)n;
}

static void log_rows(Metrics *m, int from, int to)
{
    for (int s = from; s <= to; s++) {
        TrainRow row = {s * 10.0, 1, 100.0 - s, 90, 10 - s, 1e-3, 5000, s % 2, 2.5 * s};
        metrics_train(m, &row);
        if (s % 2 == 0) {
            EpochRow e = {s / 2, s * 10.0, 99, 98, 90, 8, 1.5, 3};
            metrics_epoch(m, &e);
        }
    }
}

static void test_rows_and_truncation(void **state)
{
    (void)state;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/metrics", test_tmpdir());
    mkdir(dir, 0755);
    VdError err = {0};
    Metrics *m = metrics_start(dir, 0, &err);
    assert_non_null(m);
    assert_int_equal(count_lines(dir, "metrics.csv"), 1);
    log_rows(m, 1, 6);
    assert_int_equal(count_lines(dir, "metrics.csv"), 7);
    assert_int_equal(count_lines(dir, "epochs.csv"), 4);
    double v[16];
    metrics_close(m);
    assert_int_equal(h5_column(dir, "train", "loss", v, 16), 6);
    assert_true(v[0] == 99.0 && v[5] == 94.0);
    assert_int_equal(h5_column(dir, "train", "clipped", v, 16), 6);
    assert_true(v[0] == 1.0 && v[1] == 0.0);
    assert_int_equal(h5_column(dir, "train", "grad_norm", v, 16), 6);
    assert_true(v[0] == 2.5 && v[5] == 15.0);
    assert_int_equal(h5_column(dir, "test", "step", v, 16), 3);
    /* resumed from step 40: rows after it go, in both files, and the run
     * goes on appending */
    m = metrics_start(dir, 40, &err);
    assert_non_null(m);
    assert_int_equal(count_lines(dir, "metrics.csv"), 5);
    assert_int_equal(count_lines(dir, "epochs.csv"), 3);
    log_rows(m, 5, 5);
    metrics_close(m);
    assert_int_equal(h5_column(dir, "train", "step", v, 16), 5);
    assert_true(v[3] == 40.0 && v[4] == 50.0);
    assert_int_equal(h5_column(dir, "test", "epoch", v, 16), 2);
}

/* A CSV of the seven columns vae-dist wrote before "clipped" (and
 * "grad_norm"): kept up to the step, rewritten with the new columns as nan;
 * metrics.h5, missing, is rebuilt from it. */
static void test_older_layout(void **state)
{
    (void)state;
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/old", test_tmpdir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "w");
    fputs("step,epoch,loss,recon,kl,lr,samples_per_s\n10,1,5,4,1,0.001,100\n20,1,4,3,1,0.001,100\n"
          "30,1,3,2,1,0.001,100\n", f);
    fclose(f);
    VdError err = {0};
    Metrics *m = metrics_start(dir, 20, &err);
    assert_non_null(m);
    metrics_close(m);
    f = fopen(path, "r");
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "step,epoch,loss,recon,kl,lr,samples_per_s,clipped,grad_norm\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "10,1,5,4,1,0.001,100,nan,nan\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_null(fgets(line, sizeof line, f)); /* step 30 is gone */
    fclose(f);
    double v[8];
    assert_int_equal(h5_column(dir, "train", "loss", v, 8), 2);
    assert_true(v[1] == 4.0);
    assert_int_equal(h5_column(dir, "train", "clipped", v, 8), 2);
    assert_true(isnan(v[0]));
    assert_int_equal(h5_column(dir, "train", "grad_norm", v, 8), 2);
    assert_true(isnan(v[1]));
}

/* metrics.h5 taken away from under the writer (replaced by a directory):
 * training goes on, the CSV has every row, and the rows still reach a
 * metrics.h5 once it can be written again. */
static void test_unwritable_h5_keeps_rows(void **state)
{
    (void)state;
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/blocked", test_tmpdir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/metrics.h5", dir);
    mkdir(path, 0755); /* metrics.h5 is a directory: it cannot be made */
    VdError err = {0};
    Metrics *m = metrics_start(dir, 0, &err);
    assert_non_null(m); /* a warning, not an error */
    log_rows(m, 1, 2);
    rmdir(path); /* free again: the next row makes it, with the rows that waited */
    log_rows(m, 3, 4);
    assert_int_equal(count_lines(dir, "metrics.csv"), 5);
    metrics_close(m);
    double v[8];
    assert_int_equal(h5_column(dir, "train", "step", v, 8), 4);
    assert_true(v[0] == 10.0 && v[3] == 40.0);
    assert_int_equal(h5_column(dir, "test", "step", v, 8), 2);
    /* the CSV files themselves unwritable is an error */
    VdError e2 = {0};
    assert_null(metrics_start("/proc/no-such-dir", 0, &e2));
    assert_int_equal(e2.code, VD_EX_CANTCREAT);
    assert_non_null(strstr(e2.msg, "metrics.csv"));
}

int main(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_and_truncation),
        cmocka_unit_test(test_older_layout),
        cmocka_unit_test(test_unwritable_h5_keeps_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
