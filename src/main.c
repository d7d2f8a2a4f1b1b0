/* main.c — vae-dist's entry point: MPI setup and subcommand dispatch. */
#include "config.h"

#include <malloc.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "eval.h"
#include "h5util.h"
#include "import.h"
#include "opts.h"
#include "train.h"
#include "util.h"

#define IOFF(f) OPT_STR, offsetof(ImportConfig, f), sizeof(((ImportConfig *)0)->f)
#define FMNIST VD_FASHION_MNIST_DIR "/"

static const OptSpec import_options[] = {
    {"train-images", IOFF(train_images), FMNIST "train-images-idx3-ubyte.gz", 0, 0, "FILE",
     "IDX training images (.gz or plain)"},
    {"train-labels", IOFF(train_labels), FMNIST "train-labels-idx1-ubyte.gz", 0, 0, "FILE",
     "IDX training labels"},
    {"test-images", IOFF(test_images), FMNIST "t10k-images-idx3-ubyte.gz", 0, 0, "FILE",
     "IDX test images"},
    {"test-labels", IOFF(test_labels), FMNIST "t10k-labels-idx1-ubyte.gz", 0, 0, "FILE",
     "IDX test labels"},
    {"out", IOFF(out), "", 0, 0, "FILE", "HDF5 file to write (default: the default --data)"},
    {"force", OPT_BOOL, offsetof(ImportConfig, force), 0, "0", 0, 0, NULL,
     "replace an existing output file"},
    OPT_END};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mpirun -np N vae-dist [COMMAND] [options]\n\n"
            "commands:\n"
            "  train     train a VAE, data-parallel over the MPI ranks (the default)\n"
            "  import    convert IDX files (MNIST, Fashion-MNIST) to one HDF5 file\n"
            "  eval      negative ELBO and importance-weighted log-likelihood of a data set\n"
            "  sample    draw from the prior through a trained decoder (PNG grid, HDF5)\n"
            "  reconstruct  data rows above their reconstructions (PNG grid)\n"
            "  help      this text; `vae-dist COMMAND --help` lists a command's options\n\n"
            "exit codes: 0 ok, 64 usage, 65 bad data, 66 missing input, 70 internal error,\n"
            "73 cannot create output, 74 I/O error, 75 stopped by a signal (checkpoint saved),\n"
            "76 non-finite loss or gradient\n");
}

/* Collective: rank 0 imports, the others wait for its verdict. */
static int import_main(int argc, char **argv, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    ImportConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    VdError err = {0};
    int help = 0;
    opts_defaults(import_options, &cfg);
    vd_default_data_path(cfg.out, sizeof cfg.out);
    opts_parse(import_options, &cfg, argc, argv, &help, &err);
    if (help) {
        if (rank == 0) {
            printf("usage: vae-dist import [options]\n\nWrites /train/images, /train/labels, "
                   "/test/images and /test/labels (uint8,\nchunked, gzip) to one HDF5 file.\n\n"
                   "options [defaults]:\n");
            opts_help(stdout, import_options, &cfg);
        }
        return VD_OK;
    }
    if (err.code == VD_OK && rank == 0) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", cfg.out);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            if (vd_mkdirs(dir) != 0)
                vd_fail(&err, VD_EX_CANTCREAT, "cannot create directory %s", dir);
        }
        if (err.code == VD_OK && vd_import(&cfg, &err) == VD_OK)
            printf("wrote %s\n", cfg.out);
    }
    return vd_error_agree(&err, comm);
}

int main(int argc, char **argv)
{
    /* Open MPI's non-blocking allreduce mallocs and frees a bucket-sized
     * buffer each call: keep freed memory in the heap instead of returning
     * it to the kernel and faulting it back in every step. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    MPI_Init(&argc, &argv);
    h5_quiet();
    int rank, rc = VD_OK;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const char *cmd = argc > 1 && strncmp(argv[1], "--", 2) != 0 ? argv[1] : "train";
    int skip = argc > 1 && strncmp(argv[1], "--", 2) != 0 ? 2 : 1;

    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        if (rank == 0) {
            unsigned maj, min, rel;
            H5get_libversion(&maj, &min, &rel);
            char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
            int len;
            MPI_Get_library_version(mpi, &len);
            char *nl = strchr(mpi, '\n');
            if (nl)
                *nl = '\0';
            printf("%s\nHDF5 %u.%u.%u; %s\n", PACKAGE_STRING, maj, min, rel, mpi);
        }
    } else if (strcmp(cmd, "help") == 0) {
        if (rank == 0)
            usage(stdout);
    } else if (strcmp(cmd, "train") == 0) {
        rc = train_main(argc - skip, argv + skip, MPI_COMM_WORLD);
    } else if (strcmp(cmd, "import") == 0) {
        rc = import_main(argc - skip, argv + skip, MPI_COMM_WORLD);
    } else if (strcmp(cmd, "eval") == 0) {
        rc = eval_main(argc - skip, argv + skip, MPI_COMM_WORLD);
    } else if (strcmp(cmd, "sample") == 0) {
        rc = sample_main(argc - skip, argv + skip, MPI_COMM_WORLD);
    } else if (strcmp(cmd, "reconstruct") == 0) {
        rc = reconstruct_main(argc - skip, argv + skip, MPI_COMM_WORLD);
    } else {
        if (rank == 0)
            fprintf(stderr, "vae-dist: unknown command '%s' (try: vae-dist help)\n", cmd);
        rc = VD_EX_USAGE;
    }
    fflush(stdout);
    MPI_Finalize();
    return rc;
}
