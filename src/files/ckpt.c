/* ckpt.c — checkpoint save and load. See ckpt.h. */
#include "config.h"
#include "ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <hdf5.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"
#include "h5util.h"
#include "model_desc.h"

static int write_group(hid_t file, const char *group, const Vae *m, const float *buf)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(file, group, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (g < 0)
        return -1;
    int rc = 0;
    for (int t = 0; t < m->n_tensors && rc == 0; t++) {
        const VaeTensor *ten = &m->tensors[t];
        int64_t dims[4];
        for (int i = 0; i < ten->n_dims; i++)
            dims[i] = ten->dims[i];
        rc = h5_write_f32_nd(g, ten->name, buf + ten->offset, dims, ten->n_dims);
    }
    H5Gclose(g);
    return rc;
}

/* TrainState's optional attributes: name, and where (double or int64_t). */
static const struct {
    const char *name;
    size_t offset;
    int is_int;
} optional_state[] = {
    {"interval_clipped", offsetof(TrainState, ivl_clipped), 0},
    {"clipped_steps", offsetof(TrainState, clipped), 1},
    {"lr_scale", offsetof(TrainState, lr_scale), 0},
    {"plateau_best", offsetof(TrainState, plateau_best), 0},
    {"plateau_bad_epochs", offsetof(TrainState, plateau_bad), 1},
    {"best_loss", offsetof(TrainState, best_loss), 0},
    {"best_step", offsetof(TrainState, best_step), 1},
    {"bad_epochs", offsetof(TrainState, bad_epochs), 1},
    {"interval_grad_norm", offsetof(TrainState, ivl_grad_norm), 0},
    {"interval_norm_steps", offsetof(TrainState, ivl_norm_steps), 0},
};
enum { N_OPTIONAL = sizeof optional_state / sizeof *optional_state };

void ckpt_state_init(TrainState *st)
{
    memset(st, 0, sizeof *st);
    st->lr_scale = 1.0;
    st->plateau_best = st->best_loss = INFINITY;
}

static int write_optional_state(hid_t file, const TrainState *st)
{
    int bad = 0;
    for (int i = 0; i < N_OPTIONAL; i++) {
        const char *p = (const char *)st + optional_state[i].offset;
        bad |= optional_state[i].is_int ? h5_attr_i64(file, optional_state[i].name, (const int64_t *)p, 1)
                                        : h5_attr_f64(file, optional_state[i].name, *(const double *)p);
    }
    return bad;
}

/* Reads those present; 0, or -1 if one is present and unreadable. */
static int read_optional_state(hid_t file, TrainState *st)
{
    for (int i = 0; i < N_OPTIONAL; i++) {
        char *p = (char *)st + optional_state[i].offset;
        if (H5Aexists(file, optional_state[i].name) <= 0)
            continue;
        if (optional_state[i].is_int ? h5_attr_read_i64(file, optional_state[i].name, (int64_t *)p, 1) != 1
                                     : h5_attr_read_f64(file, optional_state[i].name, (double *)p) != 0)
            return -1;
    }
    return 0;
}

static uint64_t state_checksum(const Vae *m)
{
    uint64_t h = vd_checksum_f32(m->params, m->n_params);
    h = vd_checksum_more(h, m->adam_m, m->n_params);
    return vd_checksum_more(h, m->adam_v, m->n_params);
}

/* One field of the model's description table as a /model attribute. */
static int write_field(hid_t g, const ModelField *f, const VaeShape *s)
{
    const void *field = (const char *)s + f->opt->offset;
    if (f->kind == VD_ATTR_VARIANCE) {
        int64_t v = s->learn_var;
        return h5_attr_f64(g, "obs_logvar", (double)s->obs_logvar) | h5_attr_i64(g, "learn_var", &v, 1);
    }
    if (f->kind == VD_ATTR_CHOICE) {
        char text[64];
        opts_format(f->opt, s, text, sizeof text);
        return h5_attr_str(g, f->attr, text);
    }
    if (f->opt->type == OPT_LIST) {
        const OptList *l = field;
        int64_t v[VD_LIST_MAX];
        for (int i = 0; i < l->n; i++)
            v[i] = l->v[i];
        return l->n ? h5_attr_i64_array(g, f->attr, v, l->n) : 0; /* an empty list: no attribute */
    }
    int64_t v = *(const int *)field;
    return h5_attr_i64(g, f->attr, &v, 1);
}

/* The /model group: the architecture's options (model_desc.h's table), the
 * graph they make (for readers without vae-dist), and the data it takes. */
static int write_model(hid_t file, const Vae *m, const CkptData *data)
{
    const VaeShape *s = &m->shape;
    hid_t g = H5Gcreate2(file, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return -1;
    int64_t v = s->n_input;
    int bad = h5_attr_i64(g, "n_input", &v, 1);
    for (int i = 0; i < n_model_fields; i++)
        bad |= write_field(g, &model_fields[i], s);
    char *graph = vae_graph_json(m);
    bad |= h5_attr_str(g, "graph", graph);
    vd_free(graph);
    bad |= h5_attr_i64_array(g, "input_shape", data->shape, data->n_dims); /* (D): still an array */
    bad |= h5_attr_i64(g, "data_rows", &data->rows, 1);
    bad |= h5_attr_str(g, "layout", image_layout_name(&data->img));
    if (data->img.c) {
        int64_t image[3] = {data->img.h, data->img.w, data->img.c};
        bad |= h5_attr_i64(g, "image", image, 3);
    }
    H5Gclose(g);
    return bad ? -1 : 0;
}

int ckpt_save(const char *path, const Vae *m, const TrainState *st, const CkptData *data,
              const OptSpec *table, const void *cfg, int n_ranks, VdError *err)
{
    DurableFile out;
    if (durable_begin(&out, path, err) != VD_OK)
        return err->code;
    const char *tmp = out.tmp;
    /* 1.8 file format: object headers carry checksums, so damage to the
     * metadata is caught on load, not only damage to the tensors */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (file < 0)
        return vd_fail(err, VD_EX_CANTCREAT, "cannot create checkpoint %s", tmp);
    const char *step_failed = NULL;
    int64_t version = VD_CKPT_VERSION, v;

    if (h5_attr_str(file, "format", VD_CKPT_FORMAT) || h5_attr_i64(file, "format_version", &version, 1) ||
        h5_attr_i64(file, "step", &st->step, 1) || h5_attr_i64(file, "epoch", &st->epoch, 1) ||
        h5_attr_i64(file, "skipped_steps", &st->skipped, 1) ||
        h5_attr_u64(file, "state_checksum", state_checksum(m)) ||
        h5_attr_f64(file, "interval_recon", st->ivl_recon) ||
        h5_attr_f64(file, "interval_kl", st->ivl_kl) ||
        h5_attr_f64(file, "interval_count", st->ivl_count) ||
        h5_attr_f64(file, "epoch_loss", st->ep_loss) ||
        h5_attr_f64(file, "epoch_count", st->ep_count) || write_optional_state(file, st) ||
        h5_attr_str(file, "created_by", PACKAGE_STRING)) {
        step_failed = "root attributes";
        goto fail;
    }
    if (write_model(file, m, data) != 0) {
        step_failed = "/model";
        goto fail;
    }
    hid_t g = H5Gcreate2(file, "config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = g < 0;
    for (const OptSpec *o = table; !bad && o->name; o++) {
        char value[VD_PATH_MAX];
        opts_format(o, cfg, value, sizeof value);
        bad |= h5_attr_str(g, o->name, value);
    }
    if (!bad) {
        v = n_ranks;
        bad |= h5_attr_i64(g, "n_ranks", &v, 1);
        H5Gclose(g);
    }
    if (bad) {
        step_failed = "/config";
        goto fail;
    }
    if (write_group(file, "params", m, m->params) || write_group(file, "adam/m", m, m->adam_m) ||
        write_group(file, "adam/v", m, m->adam_v)) {
        step_failed = "tensors (disk full?)";
        goto fail;
    }
    herr_t closed = H5Fclose(file);
    file = H5I_INVALID_HID;
    if (closed < 0) {
        step_failed = "close (disk full?)";
        goto fail;
    }
    return durable_commit(&out, err);
fail:;
    int saved = errno;
    if (file >= 0)
        H5Fclose(file);
    durable_discard(&out);
    return vd_fail(err, VD_EX_IOERR, "writing checkpoint %s failed at %s%s%s", path, step_failed,
                   saved ? ": " : "", saved ? strerror(saved) : "");
}

static hid_t open_ckpt(const char *path, VdError *err)
{
    if (access(path, R_OK) != 0) {
        vd_fail(err, VD_EX_NOINPUT, "cannot read checkpoint %s: %s", path, strerror(errno));
        return H5I_INVALID_HID;
    }
    h5_locking_probe(path);
    hid_t file = H5Fis_hdf5(path) > 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    char format[64] = "";
    int64_t version = 0;
    if (file < 0 || h5_attr_read_str(file, "format", format, sizeof format) != 0 ||
        strcmp(format, VD_CKPT_FORMAT) != 0) {
        if (file >= 0)
            H5Fclose(file);
        vd_fail(err, VD_EX_DATAERR, "%s is not a vae-dist checkpoint (truncated or corrupt?)",
                path);
        return H5I_INVALID_HID;
    }
    if (h5_attr_read_i64(file, "format_version", &version, 1) != 1 || version < 1 ||
        version > VD_CKPT_VERSION) {
        H5Fclose(file);
        vd_fail(err, VD_EX_DATAERR, "%s: checkpoint format version %lld, this build reads 1 to %d",
                path, (long long)version, VD_CKPT_VERSION);
        return H5I_INVALID_HID;
    }
    return file;
}

/* Version 3's image, into shape: 0, or -1 if present and invalid. */
static int read_image(hid_t g, VaeShape *shape)
{
    int64_t image[3];
    if (H5Aexists(g, "image") <= 0)
        return 0;
    if (h5_attr_read_i64(g, "image", image, 3) != 3)
        return -1;
    for (int i = 0; i < 3; i++)
        if (image[i] < 1 || image[i] > 1 << 24)
            return -1;
    shape->in_h = (int)image[0];
    shape->in_w = (int)image[1];
    shape->in_c = (int)image[2];
    return 0;
}

/* One field of the table from /model: 0, or -1 if it is invalid, or
 * missing from a file of a version that must have it. */
static int read_field(hid_t g, int64_t version, const ModelField *f, VaeShape *s)
{
    const char *name = H5Aexists(g, f->attr) > 0 ? f->attr
                       : f->old_attr && H5Aexists(g, f->old_attr) > 0 ? f->old_attr : NULL;
    if (f->kind == VD_ATTR_VARIANCE && H5Aexists(g, "obs_logvar") > 0) {
        double lv = 0;
        int64_t learn = 0;
        if (h5_attr_read_f64(g, "obs_logvar", &lv) != 0 || !isfinite(lv) || fabs(lv) > 50 ||
            h5_attr_read_i64(g, "learn_var", &learn, 1) != 1 || (learn != 0 && learn != 1))
            return -1;
        s->obs_logvar = (float)lv;
        s->learn_var = (int)learn;
        if (learn)
            snprintf(s->variance, sizeof s->variance, "learned");
        else
            snprintf(s->variance, sizeof s->variance, "%.9g", exp(lv));
        return 0;
    }
    if (!name || f->kind == VD_ATTR_VARIANCE)
        return version >= f->since || !f->absent ? -1 : vae_field_parse(f, s, f->absent);
    if (f->kind == VD_ATTR_CHOICE) {
        char text[64];
        return h5_attr_read_str(g, name, text, sizeof text) == 0 ? vae_field_parse(f, s, text) : -1;
    }
    int64_t v[VD_LIST_MAX];
    int n = h5_attr_read_i64(g, name, v, VD_LIST_MAX);
    if (n < 1 || (f->opt->type != OPT_LIST && n != 1))
        return -1;
    for (int i = 0; i < n; i++)
        if (v[i] < f->opt->min || v[i] > f->opt->max)
            return -1;
    if (f->opt->type != OPT_LIST) {
        *(int *)((char *)s + f->opt->offset) = (int)v[0];
        return 0;
    }
    OptList *l = (OptList *)((char *)s + f->opt->offset);
    l->n = n;
    for (int i = 0; i < n; i++)
        l->v[i] = (int)v[i];
    return 0;
}

static int read_shape(const char *path, VaeShape *shape, VdError *err)
{
    hid_t file = open_ckpt(path, err);
    if (file < 0)
        return err->code;
    int64_t version = 1, v;
    h5_attr_read_i64(file, "format_version", &version, 1); /* checked by open_ckpt */
    memset(shape, 0, sizeof *shape);
    vae_shape_defaults(shape);
    int ok = 0;
    hid_t g = H5Gopen2(file, "model", H5P_DEFAULT);
    if (g >= 0) {
        ok = h5_attr_read_i64(g, "n_input", &v, 1) == 1 && v > 0 && v < INT32_MAX;
        shape->n_input = (int)v;
        for (int i = 0; ok && i < n_model_fields; i++)
            ok = read_field(g, version, &model_fields[i], shape) == 0;
        if (ok)
            ok = read_image(g, shape) == 0 && (!vae_shape_image(shape) || shape->in_c);
        H5Gclose(g);
    }
    H5Fclose(file);
    if (!ok)
        return vd_fail(err, VD_EX_DATAERR, "%s: /model attributes missing or invalid", path);
    return VD_OK;
}

static int read_group(hid_t file, const char *group, const Vae *m, float *buf)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const VaeTensor *ten = &m->tensors[t];
        char name[128];
        snprintf(name, sizeof name, "%s/%s", group, ten->name);
        hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
        if (d < 0)
            return -1;
        hid_t space = H5Dget_space(d);
        hssize_t npts = H5Sget_simple_extent_npoints(space);
        H5Sclose(space);
        int rc = npts == (hssize_t)ten->rows * (ten->cols ? ten->cols : 1) /* any rank: v2 wrote 2-D */
                     ? H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                               buf + ten->offset)
                     : -1;
        H5Dclose(d);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int load(const char *path, Vae *m, TrainState *st, VdError *err)
{
    VaeShape shape;
    int rc = read_shape(path, &shape, err);
    if (rc != VD_OK)
        return rc;
    const VaeShape *s = &m->shape;
    if (!vae_shape_equal(&shape, s)) {
        char have[160], want[160];
        vae_shape_text(&shape, have, sizeof have);
        vae_shape_text(s, want, sizeof want);
        return vd_fail(err, VD_EX_USAGE, "%s holds a %s model, this run is %s", path, have,
                       want);
    }
    hid_t file = open_ckpt(path, err);
    if (file < 0)
        return err->code;
    uint64_t sum = 0;
    ckpt_state_init(st);
    int ok = h5_attr_read_i64(file, "step", &st->step, 1) == 1 &&
             h5_attr_read_i64(file, "epoch", &st->epoch, 1) == 1 &&
             h5_attr_read_i64(file, "skipped_steps", &st->skipped, 1) == 1 &&
             h5_attr_read_f64(file, "interval_recon", &st->ivl_recon) == 0 &&
             h5_attr_read_f64(file, "interval_kl", &st->ivl_kl) == 0 &&
             h5_attr_read_f64(file, "interval_count", &st->ivl_count) == 0 &&
             h5_attr_read_f64(file, "epoch_loss", &st->ep_loss) == 0 &&
             h5_attr_read_f64(file, "epoch_count", &st->ep_count) == 0 &&
             read_optional_state(file, st) == 0 &&
             h5_attr_read_u64(file, "state_checksum", &sum) == 0 &&
             read_group(file, "params", m, m->params) == 0 &&
             read_group(file, "adam/m", m, m->adam_m) == 0 &&
             read_group(file, "adam/v", m, m->adam_v) == 0;
    H5Fclose(file);
    if (!ok)
        return vd_fail(err, VD_EX_DATAERR, "%s: missing or damaged tensors or attributes", path);
    if (state_checksum(m) != sum)
        return vd_fail(err, VD_EX_DATAERR, "%s: checksum mismatch (corrupt file)", path);
    if (st->step < 0 || st->epoch < 0 || st->skipped < 0)
        return vd_fail(err, VD_EX_DATAERR, "%s: negative step or epoch", path);
    return VD_OK;
}

static int read_data(const char *path, CkptData *d)
{
    VdError err = {0};
    hid_t file = open_ckpt(path, &err);
    if (file < 0)
        return -1;
    int64_t version = 1;
    h5_attr_read_i64(file, "format_version", &version, 1); /* checked by open_ckpt */
    hid_t g = H5Gopen2(file, "model", H5P_DEFAULT);
    int rc = -1;
    memset(d, 0, sizeof *d);
    if (g >= 0) {
        d->n_dims = h5_attr_read_i64(g, "input_shape", d->shape, VD_MAX_DIMS);
        rc = d->n_dims >= 1 && h5_attr_read_i64(g, "data_rows", &d->rows, 1) == 1 ? 0 : -1;
        char layout[16] = "";
        if (rc == 0 && version >= 3) {
            rc = h5_attr_read_str(g, "layout", layout, sizeof layout) == 0 ? 0 : -1;
            int want = !strcmp(layout, "chw") ? VD_LAYOUT_CHW : VD_LAYOUT_HWC;
            char why[256];
            if (rc == 0 && strcmp(layout, "none") != 0 &&
                image_geom(d->shape, d->n_dims, want, want, &d->img, why, sizeof why) != 0)
                rc = -1;
        } else if (rc == 0) {
            /* before version 3 samples were read as stored: an image stored
             * channels first was an image only when one channel made that
             * the same */
            char why[256];
            image_geom(d->shape, d->n_dims, VD_LAYOUT_AUTO, VD_LAYOUT_AUTO, &d->img, why, sizeof why);
            if (d->img.chw && d->img.c > 1)
                memset(&d->img, 0, sizeof d->img);
        }
        H5Gclose(g);
    }
    H5Fclose(file);
    return rc;
}

static int read_config(const char *path, const char *name, char *buf, size_t n)
{
    VdError err = {0};
    hid_t file = open_ckpt(path, &err);
    if (file < 0)
        return -1;
    hid_t g = H5Gopen2(file, "config", H5P_DEFAULT);
    int rc = g < 0 ? -1 : h5_attr_read_str(g, name, buf, n);
    if (g >= 0)
        H5Gclose(g);
    H5Fclose(file);
    return rc;
}

/* The readers run under the crash guard (util.h): a damaged checkpoint must
 * not crash HDF5 into a core dump. */
int ckpt_read_shape(const char *path, VaeShape *shape, VdError *err)
{
    vd_guard_arm(path);
    int rc = read_shape(path, shape, err);
    vd_guard_disarm();
    return rc;
}

int ckpt_load(const char *path, Vae *m, TrainState *st, VdError *err)
{
    vd_guard_arm(path);
    int rc = load(path, m, st, err);
    vd_guard_disarm();
    return rc;
}

int ckpt_read_data(const char *path, CkptData *data)
{
    vd_guard_arm(path);
    int rc = read_data(path, data);
    vd_guard_disarm();
    return rc;
}

int ckpt_read_config(const char *path, const char *name, char *buf, size_t n)
{
    vd_guard_arm(path);
    int rc = read_config(path, name, buf, n);
    vd_guard_disarm();
    return rc;
}

static int newest_first(const void *a, const void *b)
{
    long long x = atoll((const char *)a + 5), y = atoll((const char *)b + 5);
    return (x < y) - (x > y);
}

int ckpt_list(const char *dir, char (*names)[64], int max)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        size_t len = strlen(e->d_name);
        /* ckpt-NNNNNNNN.h5 exactly: not the .tmp of a write in progress */
        if (len < 64 && len > 8 && strncmp(e->d_name, "ckpt-", 5) == 0 &&
            strcmp(e->d_name + len - 3, ".h5") == 0 &&
            strspn(e->d_name + 5, "0123456789") == len - 8)
            memcpy(names[n++], e->d_name, len + 1);
    }
    closedir(d);
    qsort(names, (size_t)n, 64, newest_first);
    return n;
}

void ckpt_prune(const char *dir, int keep, const char *spare)
{
    if (keep <= 0)
        return;
    char (*names)[64] = vd_calloc(VD_MAX_CKPTS, 64);
    int n = ckpt_list(dir, names, VD_MAX_CKPTS);
    for (int i = keep; i < n; i++) {
        char path[VD_PATH_MAX];
        if ((!spare || strcmp(names[i], spare) != 0) && vd_path_join(path, dir, names[i]) == 0)
            unlink(path);
    }
    vd_free(names);
}

int ckpt_mark(const char *dir, const char *which, const char *name, VdError *err)
{
    char path[VD_PATH_MAX];
    DurableFile f;
    if (vd_path_join(path, dir, which) != 0)
        return vd_fail(err, VD_EX_CANTCREAT, "%s/%s: path too long", dir, which);
    if (durable_open(&f, path, "w", err) != VD_OK)
        return err->code;
    fprintf(f.f, "%s\n", name);
    return durable_commit(&f, err);
}

/* The checkpoint name a pointer file ("latest", "best") holds, into name
 * (64 bytes); "" if none. */
static void read_pointer(const char *path, char *name)
{
    FILE *f = fopen(path, "r");
    name[0] = '\0';
    if (f) {
        if (!fgets(name, 64, f))
            name[0] = '\0';
        fclose(f);
        name[strcspn(name, "\n")] = '\0';
    }
    if (strchr(name, '/'))
        name[0] = '\0';
}

int ckpt_find(const char *arg, char *path, VdError *err)
{
    struct stat sb;
    if (stat(arg, &sb) != 0)
        return vd_fail(err, VD_EX_NOINPUT, "%s: no such checkpoint or run directory", arg);
    const char *base = strrchr(arg, '/') ? strrchr(arg, '/') + 1 : arg;
    char name[64] = "", dir[VD_PATH_MAX];
    if (!S_ISDIR(sb.st_mode) && (!strcmp(base, "best") || !strcmp(base, "latest"))) {
        read_pointer(arg, name); /* RUN/best: the checkpoint it names, beside it */
        snprintf(dir, sizeof dir, "%.*s", base > arg ? (int)(base - arg - 1) : 1,
                 base > arg ? arg : ".");
        if (!name[0])
            return vd_fail(err, VD_EX_NOINPUT, "%s names no checkpoint", arg);
        if (vd_path_join(path, dir, name) != 0)
            return vd_fail(err, VD_EX_NOINPUT, "%s/%s: path too long", dir, name);
        if (stat(path, &sb) != 0)
            return vd_fail(err, VD_EX_NOINPUT, "%s names %s, which is gone", arg, name);
        return VD_OK;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(path, VD_PATH_MAX, "%s", arg);
        return VD_OK;
    }
    char latest[VD_PATH_MAX];
    if (vd_path_join(latest, arg, "latest") == 0)
        read_pointer(latest, name);
    if (!name[0]) {
        char(*names)[64] = vd_calloc(1, 64);
        if (ckpt_list(arg, names, 1) == 1)
            snprintf(name, sizeof name, "%s", names[0]);
        vd_free(names);
    }
    if (!name[0])
        return vd_fail(err, VD_EX_NOINPUT, "%s holds no checkpoint (ckpt-*.h5)", arg);
    if (vd_path_join(path, arg, name) != 0)
        return vd_fail(err, VD_EX_NOINPUT, "%s/%s: path too long", arg, name);
    return VD_OK;
}
