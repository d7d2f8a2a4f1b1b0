/* rundir.c — a training run's directory: its name, --fresh, which
 * checkpoint a run continues from, and writing checkpoints. Rank 0 decides
 * and writes; the others learn its verdict. See run.h. */
#include "config.h"
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"
#include "durable.h"
#include "h5util.h"
#include "metrics.h"

/* Rank 0: expands strftime patterns in --out on its clock. */
static void expand_out(TrainConfig *cfg, VdError *err)
{
    char pattern[sizeof cfg->out];
    memcpy(pattern, cfg->out, sizeof pattern);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* the pattern is the user's, by design */
    size_t len = strftime(cfg->out, sizeof cfg->out, pattern, &tm);
#pragma GCC diagnostic pop
    if (len == 0)
        vd_fail(err, VD_EX_USAGE, "--out: pattern '%s' expands to nothing", pattern);
}

/* The files a run writes in its directory, besides its checkpoints and
 * RUN/lock. */
static const char *run_files[] = {"latest", "best", "status", "metrics.csv", "epochs.csv", "metrics.h5",
                                  "config.txt", "loss.png", "samples.png",
                                  "reconstructions.png", "latent.png"};
enum { N_RUN_FILES = sizeof run_files / sizeof *run_files };

/* Does file name in dir start with text (a line vae-dist writes first)? */
static int file_starts(const char *dir, const char *name, const char *text)
{
    char path[VD_PATH_MAX], head[64] = "";
    if (vd_path_join(path, dir, name) != 0)
        return 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t got = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    head[got] = '\0';
    return strncmp(head, text, strlen(text)) == 0;
}

/* Rank 0, before anything is written in an existing dir: refuses a
 * directory that holds files of the names a run writes but is no run
 * directory (no checkpoint, config.txt or RUN/lock of vae-dist's): the
 * user's own metrics.csv in `--out .` would be overwritten. With --fresh
 * they are moved aside as a previous run's are; a RUN/lock of someone
 * else's never is. */
static int check_foreign_files(const char *dir, int fresh, VdError *err)
{
    char path[VD_PATH_MAX], names[VD_PATH_MAX] = "", (*ckpt)[64] = vd_calloc(1, 64);
    int has_ckpt = ckpt_list(dir, ckpt, 1) > 0;
    vd_free(ckpt);
    struct stat lock;
    int has_lock = vd_path_join(path, dir, "lock") == 0 && stat(path, &lock) == 0;
    int our_lock = has_lock && (lock.st_size == 0 || file_starts(dir, "lock", "pid "));
    if (has_ckpt || our_lock || file_starts(dir, "config.txt", "# vae-dist"))
        return VD_OK; /* a run directory: resumed, or set aside with --fresh */
    if (has_lock)
        return vd_fail(err, VD_EX_CANTCREAT, "run directory %s holds a file named lock that "
                       "vae-dist did not write: give the run its own --out", dir);
    int n = 0;
    for (int i = 0; i < N_RUN_FILES; i++)
        if (vd_path_join(path, dir, run_files[i]) == 0 && access(path, F_OK) == 0) {
            size_t at = strlen(names);
            snprintf(names + at, sizeof names - at, "%s%s", n++ ? ", " : "", run_files[i]);
        }
    if (n == 0 || fresh)
        return VD_OK;
    return vd_fail(err, VD_EX_CANTCREAT, "run directory %s holds %s, which vae-dist did not write "
                   "and would overwrite: give the run its own --out, or pass --fresh to move %s "
                   "into %s/replaced-<time>/", dir, names, n == 1 ? "it" : "them", dir);
}

/* Rank 0: moves a previous run's files into DIR/replaced-<time>/ (--fresh). */
static void set_aside_previous_run(const char *dir, VdError *err)
{
    const char *const *files = run_files;
    char (*names)[64] = vd_calloc(VD_MAX_CKPTS, 64), aside[VD_PATH_MAX], from[VD_PATH_MAX],
         to[VD_PATH_MAX], stamp[64];
    int n = ckpt_list(dir, names, VD_MAX_CKPTS), moved = 0;
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "replaced-%Y%m%d-%H%M%S", &tm);
    if (vd_path_join(aside, dir, stamp) != 0)
        vd_fail(err, VD_EX_CANTCREAT, "%s/%s: path too long", dir, stamp);
    int n_files = N_RUN_FILES;
    for (int i = 0; i < n + n_files && err->code == VD_OK; i++) {
        const char *name = i < n ? names[i] : files[i - n];
        if (vd_path_join(from, dir, name) != 0 || access(from, F_OK) != 0)
            continue;
        if (!moved++ && vd_mkdirs(aside) != 0)
            vd_fail(err, VD_EX_CANTCREAT, "cannot create %s: %s", aside, strerror(errno));
        else if (vd_path_join(to, aside, name) != 0 || rename(from, to) != 0)
            vd_fail(err, VD_EX_CANTCREAT, "cannot move %s aside: %s", from, strerror(errno));
    }
    if (moved && err->code == VD_OK)
        printf("--fresh: the previous run's files are now in %s\n", aside);
    vd_free(names);
}

/* Rank 0: RUN/lock, held (flock) for as long as this run lives, so that a
 * second run started in the same directory stops at once instead of both
 * writing it. On a file system that refuses locks, the run goes on
 * without; h5_locking_probe, run first, has said so, and a user who set
 * HDF5_USE_FILE_LOCKING chose. */
static int lock_run(Run *r, VdError *err)
{
    char path[VD_PATH_MAX], who[160] = "";
    if (vd_path_join(path, r->plan.cfg.out, "lock") != 0)
        return vd_fail(err, VD_EX_CANTCREAT, "%s/lock: path too long", r->plan.cfg.out);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return vd_fail(err, VD_EX_CANTCREAT, "cannot create %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int why = errno, busy = why == EWOULDBLOCK;
        ssize_t got = busy ? read(fd, who, sizeof who - 1) : 0;
        close(fd);
        if (!busy) {
            if (!getenv("HDF5_USE_FILE_LOCKING")) /* else the probe said it, or the user chose */
                fprintf(stderr, "vae-dist: note: %s cannot be locked (%s): nothing keeps a "
                        "second run out of this run directory\n", path, strerror(why));
            return VD_OK;
        }
        who[got > 0 ? got : 0] = '\0';
        who[strcspn(who, "\n")] = '\0';
        return vd_fail(err, VD_EX_CANTCREAT, "run directory %s is in use by another vae-dist run "
                       "(%s): wait for it to end, or give this run its own --out", r->plan.cfg.out,
                       who[0] ? who : "its pid is not recorded");
    }
    char host[64] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(who, sizeof who, "pid %ld on %s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) == 0 && write(fd, who, strlen(who)) < 0)
        who[0] = '\0'; /* only for the other run's message */
    r->live.lock_fd = fd;
    return VD_OK;
}

/* Rank 0: the run directory, which exists: refuses what a run there would
 * overwrite, then takes RUN/lock. */
static int claim_dir(Run *r, VdError *err)
{
    TrainConfig *cfg = &r->plan.cfg;
    if (check_foreign_files(cfg->out, cfg->fresh, err) != VD_OK)
        return err->code;
    h5_locking_probe(cfg->out); /* checkpoints and metrics.h5 go there */
    r->live.claimed = 1;
    return lock_run(r, err);
}

static void check_newest(const Run *r, VdError *err);

int rundir_claim(Run *r, VdError *err)
{
    TrainConfig *cfg = &r->plan.cfg;
    if (r->plan.rank == 0 && strchr(cfg->out, '%'))
        expand_out(cfg, err);
    MPI_Bcast(cfg->out, sizeof cfg->out, MPI_CHAR, 0, r->plan.comm);
    struct stat st;
    if (r->plan.rank == 0 && err->code == VD_OK && stat(cfg->out, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            vd_fail(err, VD_EX_CANTCREAT, "cannot create run directory %s: %s", cfg->out,
                    strerror(ENOTDIR));
        else if (claim_dir(r, err) == VD_OK && !cfg->fresh)
            check_newest(r, err);
    }
    return vd_error_agree(err, r->plan.comm);
}

int rundir_prepare(Run *r, VdError *err)
{
    TrainConfig *cfg = &r->plan.cfg;
    if (r->plan.rank == 0 && !r->live.claimed) { /* made now: another run may have made it meanwhile */
        if (vd_mkdirs(cfg->out) != 0)
            vd_fail(err, VD_EX_CANTCREAT, "cannot create run directory %s: %s", cfg->out,
                    strerror(errno));
        else
            claim_dir(r, err);
    }
    if (r->plan.rank == 0 && err->code == VD_OK && cfg->fresh)
        set_aside_previous_run(cfg->out, err);
    return vd_error_agree(err, r->plan.comm);
}

/* ---- resume ------------------------------------------------------------ */

/* Does option name (as typed) differ between this run and checkpoint path?
 * Fills have (the checkpoint's) and want (this run's), each of size n. */
static int option_differs(const Run *r, const char *path, const char *name, char *have,
                          char *want, size_t n)
{
    const OptSpec *o = train_options;
    while (strcmp(o->name, name) != 0)
        o++;
    opts_format(o, &r->plan.cfg, want, n);
    if (ckpt_read_config(path, name, have, n) != 0) {
        char probe[64]; /* no /config at all: nothing to compare with */
        if (ckpt_read_config(path, "batch", probe, sizeof probe) != 0)
            return 0;
        snprintf(have, n, "%s", o->def); /* a checkpoint from before the option: its default */
    }
    if (o->type == OPT_F64) /* older checkpoints wrote 17 digits: compare the numbers */
        return strtod(have, NULL) != strtod(want, NULL);
    return strcmp(have, want) != 0;
}

/* "28x28" for the n dims of shape */
static void shape_text(char *buf, size_t size, const int64_t *shape, int n)
{
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%lld", i ? "x" : "",
                 (long long)shape[i]);
}

/* Rank 0: why checkpoint path cannot continue this run (VD_EX_USAGE), or
 * VD_OK: another batch, seed, data file, training set, test set or (for a
 * conditional model) labels, or data of another shape or layout, would
 * train on or measure something else than the run so far. */
static int check_resumable(const Run *r, const char *path, VdError *err)
{
    /* what is trained on, and what the best checkpoint, the plateau schedule
     * and early stopping measure (the test set) */
    static const char *must_match[] = {"batch", "accumulate", "seed", "data", "dataset", "labels",
                                       "val-fraction", "test-dataset", "test-labels"};
    char have[VD_PATH_MAX], want[VD_PATH_MAX];
    for (size_t i = 0; i < sizeof must_match / sizeof *must_match; i++) {
        int labels = !strcmp(must_match[i], "labels") || !strcmp(must_match[i], "test-labels");
        if (labels && !r->plan.cfg.model.classes)
            continue; /* only a conditional model trains on them */
        if (!option_differs(r, path, must_match[i], have, want, sizeof have))
            continue;
        if (!strcmp(must_match[i], "data")) { /* older runs stored it as typed */
            vd_absolute(have);
            if (!strcmp(have, want))
                continue;
        }
        return vd_fail(err, VD_EX_USAGE,
                       "%s was made with --%s %s, this run has --%s %s: use the same value, "
                       "another --out, or --fresh",
                       path, must_match[i], have, must_match[i], want);
    }
    CkptData d;
    if (ckpt_read_data(path, &d) != 0)
        return VD_OK; /* ckpt_load names the damage */
    int nd = d.n_dims, same = nd == r->data.train_x.n_dims - 1 && d.rows == r->plan.n_rows;
    for (int i = 0; same && i < nd; i++)
        same = d.shape[i] == r->data.train_x.dims[i + 1];
    if (!same) {
        shape_text(have, sizeof have, d.shape, nd);
        shape_text(want, sizeof want, r->data.train_x.dims + 1, r->data.train_x.n_dims - 1);
        return vd_fail(err, VD_EX_USAGE,
                       "%s was trained on %lld samples of %s, %s has %lld of %s: use another "
                       "--out, or --fresh",
                       path, (long long)d.rows, have, r->data.train_x.where,
                       (long long)r->plan.n_rows, want);
    }
    const ImageGeom *g = &r->data.train_x.img;
    if (d.img.c != g->c || (g->c > 1 && d.img.chw != g->chw))
        return vd_fail(err, VD_EX_USAGE,
                       "%s read its samples as %s, this run as %s: use the same --layout, another "
                       "--out, or --fresh",
                       path, image_layout_name(&d.img), image_layout_name(g));
    return VD_OK;
}

/* Rank 0, before the data are read: what load_newest would refuse in the
 * newest checkpoint, if it can be read (a damaged one is load_newest's,
 * which tries older ones): check_resumable's, or another model. */
static void check_newest(const Run *r, VdError *err)
{
    char (*names)[64] = vd_calloc(VD_MAX_CKPTS, 64), path[VD_PATH_MAX];
    VaeShape shape;
    VdError e = {0};
    if (ckpt_list(r->plan.cfg.out, names, VD_MAX_CKPTS) > 0 &&
        vd_path_join(path, r->plan.cfg.out, names[0]) == 0 &&
        check_resumable(r, path, err) == VD_OK && ckpt_read_shape(path, &shape, &e) == VD_OK &&
        !vae_shape_equal(&shape, &r->live.m->shape)) {
        char have[160], want[160]; /* ckpt_load's words */
        vae_shape_text(&shape, have, sizeof have);
        vae_shape_text(&r->live.m->shape, want, sizeof want);
        vd_fail(err, VD_EX_USAGE, "%s holds a %s model, this run is %s; use another --out, or "
                "--fresh", path, have, want);
    }
    vd_free(names);
}

/* Rank 0: the options a resumed run may change (the optimizer's and the
 * objective's), said out loud when they differ from the checkpoint's. */
void rundir_note_changes(const Run *r)
{
    static const char *may_change[] = {"lr", "beta1", "beta2", "adam-eps", "beta", "warmup",
                                       "binarize", "data-mode", "lr-schedule", "lr-warmup",
                                       "lr-min", "lr-gamma", "lr-step", "lr-patience",
                                       "clip-norm", "weight-decay", "early-stop", "compress",
                                       "bucket", "reduce", "node-sum", "stall-timeout",
                                       "iw-samples"};
    char have[64], want[64];
    const char *path = r->live.resumed_from;
    for (size_t i = 0; i < sizeof may_change / sizeof *may_change; i++)
        if (path[0] && option_differs(r, path, may_change[i], have, want, sizeof have))
            printf("note: continuing with --%s %s; the run so far had %s\n", may_change[i], want,
                   have);
}

/* Rank 0: loads the newest checkpoint that is valid, trying older ones when
 * the newest are damaged. Returns 1 if one was loaded. */
static int load_newest(Run *r, VdError *err)
{
    char (*names)[64] = vd_calloc(VD_MAX_CKPTS, 64), path[VD_PATH_MAX];
    int n = ckpt_list(r->plan.cfg.out, names, VD_MAX_CKPTS), resumed = 0;
    VdError why = {0};
    for (int i = 0; i < n && !resumed && err->code == VD_OK; i++) {
        VdError e = {0};
        if (vd_path_join(path, r->plan.cfg.out, names[i]) != 0 ||
            check_resumable(r, path, err) != VD_OK)
            break;
        int rc = ckpt_load(path, r->live.m, &r->st, &e);
        if (rc == VD_OK) {
            resumed = 1;
            snprintf(r->live.resumed_from, sizeof r->live.resumed_from, "%s", path);
            if (i > 0)
                fprintf(stderr, "vae-dist: warning: resumed from %s, an older checkpoint "
                                "(newer ones are damaged)\n", names[i]);
        } else if (rc == VD_EX_USAGE) {
            vd_fail(err, rc, "%s; use another --out, or --fresh", e.msg);
        } else {
            fprintf(stderr, "vae-dist: warning: %s; trying an older checkpoint\n", e.msg);
            if (!why.code)
                why = e;
        }
    }
    vd_free(names);
    if (!resumed && err->code == VD_OK && why.code)
        vd_fail(err, VD_EX_DATAERR,
                "no valid checkpoint in %s (newest: %s); pass --fresh to start over",
                r->plan.cfg.out, why.msg);
    return resumed;
}

int rundir_resume(Run *r, VdError *err)
{
    int resumed = 0;
    if (r->plan.rank == 0)
        resumed = load_newest(r, err);
    if (vd_error_agree(err, r->plan.comm))
        return 0;
    MPI_Bcast(&resumed, 1, MPI_INT, 0, r->plan.comm);
    if (resumed) {
        MPI_Bcast(&r->st, (int)sizeof r->st, MPI_BYTE, 0, r->plan.comm);
        MPI_Bcast(r->live.m->params, (int)r->live.m->n_params, MPI_FLOAT, 0, r->plan.comm);
        MPI_Bcast(r->live.m->adam_m, (int)r->live.m->n_params, MPI_FLOAT, 0, r->plan.comm);
        MPI_Bcast(r->live.m->adam_v, (int)r->live.m->n_params, MPI_FLOAT, 0, r->plan.comm);
    }
    return resumed;
}

/* ---- writing ------------------------------------------------------------ */

int rundir_start_logs(Run *r, VdError *err)
{
    char path[VD_PATH_MAX];
    DurableFile f;
    /* rows a resumed run logged after its checkpoint (or a run that never
     * checkpointed) are dropped, so each is written once */
    int64_t from = r->live.resumed_from[0] ? r->st.step : 0;
    if (!(r->live.metrics = metrics_start(r->plan.cfg.out, from, err)))
        return err->code;
    if (vd_path_join(path, r->plan.cfg.out, "config.txt") != 0)
        return vd_fail(err, VD_EX_CANTCREAT, "%s/config.txt: path too long", r->plan.cfg.out);
    if (durable_open(&f, path, "w", err) != VD_OK)
        return err->code;
    char shape[128];
    const ImageGeom *g = &r->data.train_x.img;
    shape_text(shape, sizeof shape, r->data.train_x.dims + 1, r->data.train_x.n_dims - 1);
    fprintf(f.f, "# %s, %d rank%s x %d thread%s\n", PACKAGE_STRING, r->plan.size,
            r->plan.size == 1 ? "" : "s", r->plan.threads, r->plan.threads == 1 ? "" : "s");
    if (g->c)
        fprintf(f.f, "# data: samples of %s, images of %dx%d with %d channel%s stored %s (layout %s)\n",
                shape, g->h, g->w, g->c, g->c == 1 ? "" : "s", g->chw ? "first" : "last",
                image_layout_name(g));
    else
        fprintf(f.f, "# data: samples of %s, not images (layout none)\n", shape);
    opts_print(f.f, train_options, &r->plan.cfg);
    return durable_commit(&f, err);
}

int rundir_save(Run *r, int best, char *saved, VdError *err)
{
    char name[64], path[VD_PATH_MAX];
    snprintf(name, sizeof name, "ckpt-%010lld.h5", (long long)r->st.step);
    if (vd_path_join(path, r->plan.cfg.out, name) != 0)
        return vd_fail(err, VD_EX_CANTCREAT, "%s/%s: path too long", r->plan.cfg.out, name);
    CkptData data = {.n_dims = r->data.train_x.n_dims - 1, .rows = r->plan.n_rows,
                     .img = r->data.train_x.img};
    const char *delay = getenv("VAE_DIST_TEST_SAVE_DELAY"); /* test hook: a slow file system */
    if (delay && atof(delay) > 0) {
        double secs = atof(delay);
        struct timespec t = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
        nanosleep(&t, NULL);
    }
    for (int i = 1; i < r->data.train_x.n_dims; i++)
        data.shape[i - 1] = r->data.train_x.dims[i];
    h5_lock(); /* the streaming reader's thread may be in HDF5 */
    int rc = ckpt_save(path, r->live.m, &r->st, &data, train_options, &r->plan.cfg, r->plan.size,
                       err);
    h5_unlock();
    if (rc != VD_OK || ckpt_mark(r->plan.cfg.out, "latest", name, err) != VD_OK ||
        (best && ckpt_mark(r->plan.cfg.out, "best", name, err) != VD_OK))
        return err->code;
    char keep[64] = ""; /* --keep never takes the best */
    if (r->st.best_step > 0)
        snprintf(keep, sizeof keep, "ckpt-%010lld.h5", (long long)r->st.best_step);
    ckpt_prune(r->plan.cfg.out, r->plan.cfg.keep, keep);
    if (saved)
        snprintf(saved, 64, "%s", name);
    return VD_OK;
}

void rundir_status(const Run *r, int code)
{
    char path[VD_PATH_MAX], line[96];
    char latest[64] = "";
    long long step = 0;
    if (vd_path_join(path, r->plan.cfg.out, "latest") == 0) {
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(latest, sizeof latest, f))
                sscanf(latest, "ckpt-%lld.h5", &step);
            fclose(f);
        }
    }
    /* --max-steps ended it short of its epochs (not an early stop): more to do */
    int early = r->plan.cfg.early_stop > 0 && r->st.bad_epochs >= r->plan.cfg.early_stop;
    int short_of_end = r->st.step < r->plan.steps_per_epoch * r->plan.cfg.epochs && !early;
    if (code == VD_OK && short_of_end)
        snprintf(line, sizeof line, "paused %lld\n", step);
    else if (code == VD_OK)
        snprintf(line, sizeof line, "done %lld\n", step);
    else if (code == VD_EX_TEMPFAIL)
        snprintf(line, sizeof line, "stopped %lld\n", step);
    else
        snprintf(line, sizeof line, "failed %d %lld\n", code, step);
    DurableFile d;
    VdError err = {0};
    if (vd_path_join(path, r->plan.cfg.out, "status") != 0 ||
        durable_open(&d, path, "w", &err) != VD_OK)
        return;
    fputs(line, d.f);
    durable_commit(&d, &err);
}
