/* train_opts.c — the train command's option table and the checks it cannot
 * express. See train.h. */
#include "train_opts.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_desc.h"
#include "runtime.h"
#include "schedule.h"

#define OFF(f) offsetof(TrainConfig, f)
#define STR(f) OPT_STR, OFF(f), sizeof(((TrainConfig *)0)->f)
#define NUM(t, f) t, OFF(f), 0

/* The train command's own options; the model's go after val-fraction. */
static const OptSpec train_only[] = {
    {"data", STR(data), "", 0, 0, "FILE",
     "HDF5 data file (default: $VAE_DIST_DATA, else Fashion-MNIST, imported on first use to "
     "${XDG_DATA_HOME:-~/.local/share}/vae-dist/fashion-mnist.h5)"},
    {"dataset", STR(dataset), "/train/images", 0, 0, "PATH", "training samples, shaped (N, ...)"},
    {"labels", STR(labels), "/train/labels", 0, 0, "PATH",
     "training labels (N); 'none' to skip; the default is used only if present"},
    {"test-dataset", STR(test_dataset), "/test/images", 0, 0, "PATH",
     "test samples for the per-epoch test ELBO; 'none' to skip; default used if present"},
    {"test-labels", STR(test_labels), "/test/labels", 0, 0, "PATH",
     "test labels; 'none' to skip; default used if present"},
    {"out", STR(out), "runs/default", 0, 0, "DIR",
     "run directory; an existing run there resumes (strftime % patterns expand)"},
    {"epochs", NUM(OPT_INT, epochs), "10", 1, 1e6, "N", "passes over the training data"},
    {"batch", NUM(OPT_I64, batch), "128", 1, 1e9, "G",
     "GLOBAL batch: samples per step, all ranks (per micro-batch, with --accumulate)"},
    {"accumulate", NUM(OPT_INT, accumulate), "1", 1, 4096, "N",
     "gradient accumulation: N micro-batches of --batch per optimizer step, an effective batch "
     "of N x G; each rank runs its share of the step's rows in N parts (the activations are "
     "one part's) and the gradients are summed over the ranks once per step: the same "
     "training as --batch N*G, up to float summation order"},
    {"lr", NUM(OPT_F64, lr), "1e-3", 1e-12, 10, "X", "Adam learning rate"},
    {"beta1", NUM(OPT_F64, beta1), "0.9", 0, 0.999999, "X", "Adam first-moment decay"},
    {"beta2", NUM(OPT_F64, beta2), "0.999", 0, 0.99999999, "X", "Adam second-moment decay"},
    {"adam-eps", NUM(OPT_F64, adam_eps), "1e-8", 1e-30, 1, "X", "Adam epsilon"},
    {"lr-schedule", NUM(OPT_CHOICE, lr_schedule), "constant", 0, 0,
     "constant|cosine|step|plateau",
     "the learning rate over the run: constant; cosine from --lr to --lr-min; step, times "
     "--lr-gamma every --lr-step epochs; plateau, times --lr-gamma after --lr-patience epochs "
     "without a better test loss (training loss without a test set)"},
    {"lr-warmup", NUM(OPT_I64, lr_warmup), "0", 0, 1e15, "N",
     "learning-rate warm-up: the rate at step t is times min(1, t / N)"},
    {"lr-min", NUM(OPT_F64, lr_min), "0", 0, 10, "X", "cosine: the rate at the last step"},
    {"lr-gamma", NUM(OPT_F64, lr_gamma), "0.1", 1e-6, 1, "X", "step, plateau: the factor of a cut"},
    {"lr-step", NUM(OPT_I64, lr_step), "5", 1, 1e9, "N", "step: epochs between cuts"},
    {"lr-patience", NUM(OPT_I64, lr_patience), "2", 0, 1e9, "N",
     "plateau: epochs without improvement before a cut"},
    {"clip-norm", NUM(OPT_F64, clip_norm), "0", 0, 1e12, "X",
     "clip the mean gradient to this global norm, after the sum over ranks (0: off)"},
    {"weight-decay", NUM(OPT_F64, weight_decay), "0", 0, 1, "X",
     "decoupled weight decay, as AdamW: each step takes lr X of every parameter"},
    {"early-stop", NUM(OPT_INT, early_stop), "0", 0, 1e6, "N",
     "stop after N epochs without a better test loss (training loss without a test set); "
     "exit 0 (0: off)"},
    {"val-fraction", NUM(OPT_F64, val_fraction), "0", 0, 0.99, "F",
     "hold out this part of the training rows (a fixed, seeded choice) as the test set, "
     "when the file has none (0: off)"},
    {"layout", NUM(OPT_CHOICE, layout), "auto", 0, 0, "auto|hwc|chw|none",
     "how (N, a, b, c) samples hold their channels: last (hwc) or first (chw); auto: "
     "the axis of size at most 4 (docs/how-it-works.md); none: not images, whatever the shape "
     "(a table of 16 columns is otherwise taken for 4x4 images)"},
    {"iw-samples", NUM(OPT_INT, iw_samples), "1", 1, 4096, "K",
     "draws per sample: 1 trains the ELBO; K > 1 the importance-weighted bound of K draws "
     "(IWAE), which costs K times the decoder's work per sample"},
    {"seed", NUM(OPT_U64, seed), "1", 0, 0, "N", "seed of every random generator"},
    {"log-every", NUM(OPT_INT, log_every), "100", 1, 1e9, "N", "steps per progress line"},
    {"threads", NUM(OPT_INT, threads), "0", 0, 1024, "N",
     "OpenBLAS threads per rank (0: cores / ranks per node)"},
    {"ckpt-every", NUM(OPT_INT, ckpt_every), "1", 0, 1e6, "N",
     "checkpoint every N epochs (0: only at the end)"},
    {"keep", NUM(OPT_INT, keep), "3", 0, 1e6, "N", "checkpoints kept in the run directory (0: all)"},
    {"fresh", NUM(OPT_BOOL, fresh), "0", 0, 0, NULL,
     "start over: move a previous run's files aside instead of resuming"},
    {"max-skips", NUM(OPT_INT, max_skips), "0", 0, 1e9, "N",
     "non-finite steps to skip before stopping (0: stop at the first)"},
    {"stall-timeout", NUM(OPT_F64, stall_timeout), "600", 0, 1e7, "S",
     "end the job (exit 69) when a wait on other ranks lasts S seconds: a lost node or link "
     "(0: wait for ever)"},
    {"max-steps", NUM(OPT_I64, max_steps), "0", 0, 1e15, "N", "stop after N steps (0: no limit)"},
    {"profile", NUM(OPT_BOOL, profile), "0", 0, 0, NULL,
     "print a per-step time split at the end"},
    {"quiet", NUM(OPT_BOOL, quiet), "0", 0, 0, NULL,
     "no progress, epoch or checkpoint lines: the start lines, notes, warnings and how the run "
     "ended only (metrics.csv and epochs.csv have every row)"},
    {"figure-scale", NUM(OPT_INT, figure_scale), "0", 0, 64, "S",
     "pixels per image pixel in reconstructions.png and samples.png (0: small images scaled up "
     "to about 96 px, as sample and reconstruct do); lowered, with a note, where a figure "
     "would pass 8192 px a side"},
    {"show-config", NUM(OPT_BOOL, show_config), "0", 0, 0, NULL,
     "print the whole configuration at the start (config.txt in the run directory has it)"},
    {"binarize", NUM(OPT_BOOL, binarize), "0", 0, 0, NULL,
     "dynamic binarization: each value becomes 1 with its probability, redrawn every epoch"},
    {"beta", NUM(OPT_F64, beta), "1", 0, 1e6, "X",
     "weight of the KL term in the training loss (the reported ELBO is unweighted)"},
    {"warmup", NUM(OPT_I64, warmup), "0", 0, 1e15, "N",
     "KL warm-up: the KL weight at step t is --beta times min(1, t / N), from --beta / N at "
     "step 1 to --beta at step N"},
    {"data-mode", NUM(OPT_CHOICE, data_mode), "auto", 0, 0, "auto|resident|stream",
     "resident: each rank holds its block of rows; stream: reads them in a window "
     "(see docs/how-it-works.md); auto: resident if it fits --data-budget"},
    {"data-budget", NUM(OPT_F64, data_budget), "0", 0, 1e9, "MIB",
     "MiB of training rows each rank may hold (0: a quarter of the node's memory over its ranks)"},
    {"parallel-io", NUM(OPT_BOOL, parallel_io), "0", 0, 0, NULL,
     "read the resident blocks with MPI-IO collective reads (parallel HDF5)"},
    {"reduce", NUM(OPT_CHOICE, reduce), "shm", 0, 0, "shm|mpi",
     "sum gradients in node shared memory, each rank updating a slice of the parameters "
     "(shm), or allreduce them and update on every rank (mpi)"},
    {"bucket", NUM(OPT_F64, bucket_mib), "1", 0, 1024, "MIB",
     "gradients are summed and sent between nodes in pieces of MIB as backward finishes them "
     "(0: all at once after it)"},
    {"node-sum", NUM(OPT_CHOICE, node_sum), "backward", 0, 0, "adam|backward",
     "on one node under --reduce shm, each rank sums its slice of the node's gradients in "
     "pieces during backward (backward), or inside its Adam pass (adam; not with --clip-norm, "
     "which needs the sum first; measured no faster, docs/speed.md); the results are the "
     "same bits"},
    {"compress", NUM(OPT_CHOICE, compress), "none", 0, 0, "none|fp16|bf16",
     "what crosses nodes under --reduce shm: the exact float sums, or 16-bit floats of them "
     "(half the bytes, for slow networks)"},
    OPT_END};

/* train_only with model_options after val-fraction, their offsets into
 * TrainConfig's model, and OPT_END: sized at compile time from both tables.
 * model_options' declared length is MODEL_N_OPTIONS + 1; the constructor
 * refuses a table of fewer rows (an empty row inside) or of more (the
 * compiler drops the rows past it, the terminator with them). */
enum { N_ONLY = sizeof train_only / sizeof *train_only - 1 };
static OptSpec train_table[N_ONLY + MODEL_N_OPTIONS + 1];
const OptSpec *const train_options = train_table;

__attribute__((constructor)) static void build_train_table(void)
{
    int n = 0;
    if (model_options[MODEL_N_OPTIONS].name) /* no OPT_END: more rows than declared */
        VD_ABORT("model_options has more rows than MODEL_N_OPTIONS %d", MODEL_N_OPTIONS);
    for (int i = 0; i < N_ONLY; i++) {
        train_table[n++] = train_only[i];
        if (strcmp(train_only[i].name, "val-fraction") != 0)
            continue;
        for (int j = 0; j < MODEL_N_OPTIONS; j++) {
            if (!model_options[j].name)
                VD_ABORT("model_options has %d rows, not MODEL_N_OPTIONS %d", j, MODEL_N_OPTIONS);
            train_table[n] = model_options[j];
            train_table[n++].offset += offsetof(TrainConfig, model);
        }
    }
    if (n != N_ONLY + MODEL_N_OPTIONS) /* no val-fraction row to put them after */
        VD_ABORT("train_table: the model options were not inserted");
    train_table[n] = (OptSpec)OPT_END;
}

static void train_defaults(void *cfg)
{
    TrainConfig *c = cfg;
    memset(c, 0, sizeof *c);
    opts_defaults(train_options, c);
    runtime_default_data(c->data);
}

const OptCommand train_command = {
    "train", "mpirun -np N vae-dist [train] [options]",
    "Trains a VAE, data-parallel over the MPI ranks (the default command). Running the same "
    "command again in the same run directory resumes the run.",
    train_table, sizeof(TrainConfig), train_defaults};

int train_parse(TrainConfig *cfg, int argc, char **argv, int rank, VdError *err)
{
    int help = 0;
    train_defaults(cfg);
    opts_parse(train_options, cfg, argc, argv, &help, err);
    int preset = cfg->model.preset;
    if (err->code == VD_OK && preset != VD_PRESET_NONE) {
        train_defaults(cfg); /* the preset's sizes, then the command line over them */
        cfg->model.preset = preset;
        vae_shape_preset(&cfg->model);
        opts_parse(train_options, cfg, argc, argv, &help, err);
    }
    if (help && rank == 0) /* with the preset's sizes as the defaults */
        opts_usage(stdout, &train_command, cfg);
    cfg->named_labels = opts_named(argc, argv, "labels");
    cfg->named_test_dataset = opts_named(argc, argv, "test-dataset");
    cfg->named_test_labels = opts_named(argc, argv, "test-labels");
    cfg->named_node_sum = opts_named(argc, argv, "node-sum");
    return help;
}

int train_check_options(TrainConfig *cfg, VdError *err)
{
    const char *why = vae_shape_resolve(&cfg->model);
    if (why)
        return vd_fail(err, VD_EX_USAGE, "--variance: '%s' is neither 'learned' nor a number in "
                       "[1e-12, 1e12]", cfg->model.variance);
    if (cfg->binarize && cfg->model.likelihood != VD_LIK_BERNOULLI)
        return vd_fail(err, VD_EX_USAGE, "--binarize makes binary data for --likelihood bernoulli");
    if (cfg->model.conv.n > VD_MAX_CONV)
        return vd_fail(err, VD_EX_USAGE, "--conv: at most %d convolutions", VD_MAX_CONV);
    if (cfg->model.latent.n > VD_MAX_LEVELS)
        return vd_fail(err, VD_EX_USAGE, "--latent: at most %d stochastic layers", VD_MAX_LEVELS);
    if (cfg->model.prior == VD_PRIOR_VAMP && cfg->model.classes > 0)
        return vd_fail(err, VD_EX_USAGE, "--prior vamp and --classes are two priors for the top "
                       "layer: use one of them");
    /* settings that would defeat themselves */
    if (cfg->lr_schedule == VD_SCHED_COSINE && cfg->lr_min > cfg->lr)
        return vd_fail(err, VD_EX_USAGE, "--lr-min %g is above --lr %g: the cosine schedule would "
                       "climb from --lr to --lr-min, not decay; give --lr-min below --lr", cfg->lr_min,
                       cfg->lr);
    if (cfg->named_node_sum && cfg->node_sum == NODE_SUM_ADAM && cfg->clip_norm > 0)
        return vd_fail(err, VD_EX_USAGE, "--node-sum adam sums the gradient inside the optimizer, "
                       "and --clip-norm needs the whole sum before it: drop one of them (--clip-norm "
                       "alone sums during backward)");
    return VD_OK;
}

void train_step_rows(const TrainConfig *cfg, char *buf, size_t n)
{
    if (cfg->accumulate > 1)
        snprintf(buf, n, "--batch %lld x --accumulate %d (%lld samples)", (long long)cfg->batch,
                 cfg->accumulate, (long long)cfg->batch * cfg->accumulate);
    else
        snprintf(buf, n, "--batch %lld", (long long)cfg->batch);
}
