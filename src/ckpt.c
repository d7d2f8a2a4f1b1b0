/* ckpt.c — checkpoint save and load. See ckpt.h. */
#include "config.h"
#include "ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "h5util.h"

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
        rc = h5_write_f32(g, ten->name, buf + ten->offset, ten->rows, ten->cols);
    }
    H5Gclose(g);
    return rc;
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int ckpt_save(const char *path, const Vae *m, const TrainState *st, const int64_t *input_shape,
              int n_dims, const OptSpec *table, const void *cfg, int n_ranks, VdError *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    hid_t file = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    if (file < 0)
        return vd_fail(err, VD_EX_CANTCREAT, "cannot create checkpoint %s", tmp);
    const char *step_failed = NULL;
    const VaeShape *s = &m->shape;
    int64_t version = VD_CKPT_VERSION, hidden[VD_MAX_HIDDEN], v;
    for (int l = 0; l < s->n_hidden; l++)
        hidden[l] = s->hidden[l];

    if (h5_attr_str(file, "format", VD_CKPT_FORMAT) || h5_attr_i64(file, "format_version", &version, 1) ||
        h5_attr_i64(file, "step", &st->step, 1) || h5_attr_i64(file, "epoch", &st->epoch, 1) ||
        h5_attr_u64(file, "params_checksum", vd_checksum_f32(m->params, m->n_params)) ||
        h5_attr_str(file, "created_by", PACKAGE_STRING)) {
        step_failed = "root attributes";
        goto fail;
    }
    hid_t g = H5Gcreate2(file, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = g < 0;
    if (!bad) {
        v = s->n_input;
        bad |= h5_attr_i64(g, "n_input", &v, 1);
        v = s->n_latent;
        bad |= h5_attr_i64(g, "n_latent", &v, 1);
        bad |= h5_attr_i64(g, "hidden", hidden, s->n_hidden);
        bad |= h5_attr_i64(g, "input_shape", input_shape, n_dims);
        H5Gclose(g);
    }
    if (bad) {
        step_failed = "/model";
        goto fail;
    }
    g = H5Gcreate2(file, "config", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    bad = g < 0;
    for (const OptSpec *o = table; !bad && o->name; o++) {
        char value[4200];
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
    if (H5Fclose(file) < 0) {
        file = H5I_INVALID_HID;
        step_failed = "close (disk full?)";
        goto fail;
    }
    file = H5I_INVALID_HID;
    if (fsync_path(tmp, 0) != 0) {
        step_failed = "fsync";
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        step_failed = "rename";
        goto fail;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    fsync_path(dirname(dir), 1); /* best effort: some filesystems refuse */
    return VD_OK;
fail:;
    int saved = errno;
    if (file >= 0)
        H5Fclose(file);
    unlink(tmp);
    return vd_fail(err, VD_EX_IOERR, "writing checkpoint %s failed at %s%s%s", tmp, step_failed,
                   saved ? ": " : "", saved ? strerror(saved) : "");
}

static hid_t open_ckpt(const char *path, VdError *err)
{
    if (access(path, R_OK) != 0) {
        vd_fail(err, VD_EX_NOINPUT, "cannot read checkpoint %s: %s", path, strerror(errno));
        return H5I_INVALID_HID;
    }
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
    if (h5_attr_read_i64(file, "format_version", &version, 1) != 1 ||
        version != VD_CKPT_VERSION) {
        H5Fclose(file);
        vd_fail(err, VD_EX_DATAERR, "%s: checkpoint format version %lld, this build reads %d",
                path, (long long)version, VD_CKPT_VERSION);
        return H5I_INVALID_HID;
    }
    return file;
}

int ckpt_read_shape(const char *path, VaeShape *shape, VdError *err)
{
    hid_t file = open_ckpt(path, err);
    if (file < 0)
        return err->code;
    memset(shape, 0, sizeof *shape);
    int64_t v, hidden[VD_MAX_HIDDEN];
    int n = -1, ok = 0;
    hid_t g = H5Gopen2(file, "model", H5P_DEFAULT);
    if (g >= 0) {
        ok = h5_attr_read_i64(g, "n_input", &v, 1) == 1 && v > 0 && v < INT32_MAX;
        shape->n_input = (int)v;
        ok = ok && h5_attr_read_i64(g, "n_latent", &v, 1) == 1 && v > 0 && v < INT32_MAX;
        shape->n_latent = (int)v;
        n = h5_attr_read_i64(g, "hidden", hidden, VD_MAX_HIDDEN);
        ok = ok && n >= 1;
        for (int l = 0; ok && l < n; l++) {
            ok = hidden[l] > 0 && hidden[l] < INT32_MAX;
            shape->hidden[l] = (int)hidden[l];
        }
        shape->n_hidden = n;
        H5Gclose(g);
    }
    H5Fclose(file);
    if (!ok)
        return vd_fail(err, VD_EX_DATAERR, "%s: /model attributes missing or invalid", path);
    return VD_OK;
}

static void shape_text(const VaeShape *s, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "%d", s->n_input);
    for (int l = 0; l < s->n_hidden && used < n; l++)
        used += (size_t)snprintf(buf + used, n - used, "-%d", s->hidden[l]);
    if (used < n)
        snprintf(buf + used, n - used, "-%d", s->n_latent);
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
        int rc = npts == (hssize_t)ten->rows * (ten->cols ? ten->cols : 1)
                     ? H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                               buf + ten->offset)
                     : -1;
        H5Dclose(d);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int ckpt_load(const char *path, Vae *m, TrainState *st, VdError *err)
{
    VaeShape shape;
    int rc = ckpt_read_shape(path, &shape, err);
    if (rc != VD_OK)
        return rc;
    const VaeShape *s = &m->shape;
    if (shape.n_input != s->n_input || shape.n_latent != s->n_latent ||
        shape.n_hidden != s->n_hidden ||
        memcmp(shape.hidden, s->hidden, sizeof(int) * (size_t)s->n_hidden) != 0) {
        char have[128], want[128];
        shape_text(&shape, have, sizeof have);
        shape_text(s, want, sizeof want);
        return vd_fail(err, VD_EX_DATAERR, "%s holds a %s model, this run is %s", path, have,
                       want);
    }
    hid_t file = open_ckpt(path, err);
    if (file < 0)
        return err->code;
    uint64_t sum = 0;
    int ok = h5_attr_read_i64(file, "step", &st->step, 1) == 1 &&
             h5_attr_read_i64(file, "epoch", &st->epoch, 1) == 1 &&
             h5_attr_read_u64(file, "params_checksum", &sum) == 0 &&
             read_group(file, "params", m, m->params) == 0 &&
             read_group(file, "adam/m", m, m->adam_m) == 0 &&
             read_group(file, "adam/v", m, m->adam_v) == 0;
    H5Fclose(file);
    if (!ok)
        return vd_fail(err, VD_EX_DATAERR, "%s: missing or damaged tensors or attributes", path);
    if (vd_checksum_f32(m->params, m->n_params) != sum)
        return vd_fail(err, VD_EX_DATAERR, "%s: parameter checksum mismatch (corrupt file)",
                       path);
    return VD_OK;
}
