/* comm.c — what vae-dist's gradient allreduce costs on this machine: the
 * per-hop latency alpha and the bandwidth bw of the ring model
 *     T(p, n) = 2(p-1) alpha + 2(p-1)/p * n / bw        (n bytes, p ranks)
 * measured with MPI_Allreduce (MPI_IN_PLACE, MPI_FLOAT, MPI_SUM), the call
 * vae-dist's step makes. Collective over MPI_COMM_WORLD.
 *
 *   mpirun -np 2 bench/comm [--budget 0.2] [784-400-20 784-1024-1024-64 ...]
 *
 * prints "key value" lines, times in the unit the key names:
 *   pingpong_us    half a round trip of 4 bytes between ranks 0 and 1
 *   allreduce1_us  MPI_Allreduce of one float
 *   allreduce_bytes N ms T [model SPEC]   median of reps; SPEC's buffer is
 *                  its parameters + 5 (loss sums, count, stop and failure flags), floats
 *   alpha_us       = pingpong_us, the per-hop latency the model uses
 *   bw_gbs         1e-9 bw, least squares in relative error of the model
 *                  (alpha fixed) over the sizes of 1 MiB and more
 *   fit_worst_pct  the model's worst relative error over those sizes
 * A rep's time is the slowest rank's; the buffers hold zeros, so the sums
 * never reach a denormal or an infinity. Keep runs short: about --budget
 * seconds per size. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SIZES 40
#define MAX_REPS 2000
#define GRAD_EXTRA 5 /* VD_GRAD_EXTRA in include/model.h */

static int rank, size;

static void die(const char *msg)
{
    fprintf(stderr, "comm: rank %d: %s\n", rank, msg);
    MPI_Abort(MPI_COMM_WORLD, 70);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Floats in the gradient buffer of a model "D-h1-...-hL-d": encoder
 * D -> h1 -> ... -> hL, heads hL -> 2d, decoder d -> hL -> ... -> h1 -> D,
 * weights and biases; 0 if SPEC is malformed. */
static long model_floats(const char *spec)
{
    long dim[10];
    int k = 0;
    for (const char *p = spec; k < 10;) {
        char *end;
        dim[k] = strtol(p, &end, 10);
        if (end == p || dim[k] < 1)
            return 0;
        k++;
        if (!*end)
            break;
        if (*end != '-')
            return 0;
        p = end + 1;
    }
    if (k < 3 || k == 10)
        return 0;
    long n = 0, d = dim[k - 1];
    for (int l = 0; l + 2 < k; l++) /* encoder and its mirror in the decoder */
        n += 2 * dim[l] * dim[l + 1] + dim[l] + dim[l + 1];
    n += (dim[k - 2] + 1) * 2 * d + (d + 1) * dim[k - 2]; /* heads; decoder's first layer */
    return n + GRAD_EXTRA;
}

/* Seconds per call of ITERS back-to-back MPI_Allreduce of one float (or, with
 * pingpong, per half round trip between ranks 0 and 1): median of 11 runs. */
static double small_message(int pingpong, int iters)
{
    float x = 0.0f;
    double t[11];
    for (int run = -1; run < 11; run++) { /* run -1 warms up */
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        for (int i = 0; i < iters; i++) {
            if (!pingpong)
                MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            else if (rank == 0) {
                MPI_Send(&x, 1, MPI_FLOAT, 1, 0, MPI_COMM_WORLD);
                MPI_Recv(&x, 1, MPI_FLOAT, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            } else if (rank == 1) {
                MPI_Recv(&x, 1, MPI_FLOAT, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                MPI_Send(&x, 1, MPI_FLOAT, 0, 0, MPI_COMM_WORLD);
            }
        }
        double dt = (MPI_Wtime() - t0) / iters / (pingpong ? 2 : 1);
        MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (run >= 0)
            t[run] = dt;
    }
    return median(t, 11);
}

/* Median seconds of an in-place allreduce of n floats, each rep started
 * after a barrier and timed as the slowest rank's; about budget seconds. */
static double allreduce_time(float *buf, long n, double budget)
{
    static double t[MAX_REPS];
    double t0 = MPI_Wtime();
    for (int w = 0; w < 3; w++)
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double est = (MPI_Wtime() - t0) / 3;
    MPI_Allreduce(MPI_IN_PLACE, &est, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    int reps = (int)(budget / (est + 1e-6)); /* + a barrier's worth */
    reps = reps < 11 ? 11 : reps > MAX_REPS ? MAX_REPS : reps;
    for (int r = 0; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double s = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        t[r] = MPI_Wtime() - s;
    }
    MPI_Allreduce(MPI_IN_PLACE, t, reps, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return median(t, reps);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 2)
        die("needs 2 or more ranks (mpirun -np 2 bench/comm)");

    double budget = 0.2;
    long bytes[MAX_SIZES];
    const char *label[MAX_SIZES] = {0};
    int ns = 0;
    for (long b = 4096; b <= 16L << 20; b *= 2)
        bytes[ns++] = b;
    int models = 0;
    static const char *bench_models[] = {"784-400-20", "784-1024-1024-64"};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--budget") && i + 1 < argc)
            budget = atof(argv[++i]);
        else if (model_floats(argv[i]) && model_floats(argv[i]) <= 1L << 28 && ns < MAX_SIZES) {
            label[ns] = argv[i];
            bytes[ns++] = 4 * model_floats(argv[i]);
            models++;
        } else
            die("usage: comm [--budget SECONDS] [D-h1-...-d ...]");
    }
    for (int i = 0; !models && i < 2; i++) {
        label[ns] = bench_models[i];
        bytes[ns++] = 4 * model_floats(bench_models[i]);
    }
    if (budget <= 0 || budget > 5)
        die("--budget must be in (0, 5] seconds");

    long most = 0;
    for (int i = 0; i < ns; i++)
        most = bytes[i] > most ? bytes[i] : most;
    float *buf = malloc((size_t)most);
    if (!buf)
        die("out of memory");
    for (long i = 0; i < most / 4; i++)
        buf[i] = 0.0f;

    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, ",\n")] = 0;
    double pp = small_message(1, 2000), ar1 = small_message(0, 2000);
    if (rank == 0) {
        printf("# comm: %s; %d ranks; medians\n", lib, size);
        printf("ranks %d\n", size);
        printf("cores %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
        printf("pingpong_us %.3f\n", pp * 1e6);
        printf("allreduce1_us %.3f\n", ar1 * 1e6);
    }

    /* bw by least squares in relative error, alpha fixed: minimize
     * sum ((t - a - x s) / t)^2 over s = 1/bw, a = 2(p-1) alpha */
    double f = 2.0 * (size - 1) / size, a = 2.0 * (size - 1) * pp, ur = 0, uu = 0;
    double t[MAX_SIZES];
    for (int i = 0; i < ns; i++) {
        t[i] = allreduce_time(buf, bytes[i] / 4, budget);
        if (rank == 0) {
            printf("allreduce_bytes %ld ms %.4f%s%s\n", bytes[i], t[i] * 1e3,
                   label[i] ? " model " : "", label[i] ? label[i] : "");
        }
        double u = f * (double)bytes[i] / t[i];
        if (bytes[i] >= 1L << 20)
            ur += u * (t[i] - a) / t[i], uu += u * u;
    }
    double s = ur / uu, err = 0;
    for (int i = 0; i < ns; i++) {
        double e = (a + f * (double)bytes[i] * s - t[i]) / t[i];
        if (bytes[i] >= 1L << 20 && (e < 0 ? -e : e) > (err < 0 ? -err : err))
            err = e;
    }
    if (rank == 0) {
        printf("alpha_us %.3f\n", pp * 1e6);
        printf("bw_gbs %.3f\n", 1e-9 / s);
        printf("fit_worst_pct %.1f\n", 100 * err);
    }
    free(buf);
    MPI_Finalize();
    return 0;
}
