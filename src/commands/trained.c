/* trained.c — loading a trained model and opening data for it. See trained.h. */
#include "trained.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "durable.h"
#include "shard.h"
#include "image.h"
#include "runtime.h"

Vae *trained_load(const char *arg, char *path, VdError *err)
{
    VaeShape shape;
    if (ckpt_find(arg, path, err) != VD_OK || ckpt_read_shape(path, &shape, err) != VD_OK)
        return NULL;
    const char *why = NULL;
    Vae *m = vae_create(&shape, 0, &why);
    if (!m) {
        vd_fail(err, VD_EX_DATAERR, "%s: invalid model: %s", path, why);
        return NULL;
    }
    TrainState st;
    if (ckpt_load(path, m, &st, err) != VD_OK) {
        vae_free(m);
        return NULL;
    }
    return m;
}

int trained_defaults(const char *ckpt, int rank, char *file, char *dataset, size_t dn,
                     char *labels, size_t ln)
{
    char test[256] = "", frac[64] = "";
    if (!file[0] && (ckpt_read_config(ckpt, "data", file, VD_PATH_MAX) != 0 || !file[0]))
        runtime_default_data(file);
    if (dataset[0])
        return 0;
    int want_labels = labels && !labels[0];
    if (ckpt_read_config(ckpt, "test-dataset", test, sizeof test) != 0) { /* no /config */
        snprintf(dataset, dn, "/test/images");
        if (want_labels)
            snprintf(labels, ln, "/test/labels");
        return 0;
    }
    if (strcmp(test, "none") != 0) {
        snprintf(dataset, dn, "%s", test);
        if (want_labels)
            ckpt_read_config(ckpt, "test-labels", labels, ln);
        return 0;
    }
    ckpt_read_config(ckpt, "dataset", dataset, dn);
    if (want_labels)
        ckpt_read_config(ckpt, "labels", labels, ln);
    int held = ckpt_read_config(ckpt, "val-fraction", frac, sizeof frac) == 0 && atof(frac) > 0;
    if (rank == 0 && held)
        printf("note: using the rows the run held out for validation (--val-fraction %s of %s)\n",
               frac, dataset);
    else if (rank == 0)
        printf("note: the run had no test set (--test-dataset none); using its training "
               "samples %s\n", dataset);
    return held;
}

/* The run's held-out rows of x, as training chose them. */
static int select_held(const char *ckpt, H5Rows *x, VdError *err)
{
    char frac[64] = "", seed[64] = "";
    ckpt_read_config(ckpt, "val-fraction", frac, sizeof frac);
    ckpt_read_config(ckpt, "seed", seed, sizeof seed);
    int64_t n;
    int64_t *rows = shard_split_rows(x->n_rows, atof(frac), strtoull(seed, NULL, 10), 1, &n);
    h5rows_select(x, rows, n);
    if (n < 1)
        return vd_fail(err, VD_EX_DATAERR, "%s: --val-fraction %s holds out no rows", x->where, frac);
    snprintf(x->where + strlen(x->where), sizeof x->where - strlen(x->where), " (held out)");
    return VD_OK;
}

int trained_open_data(const char *file, const char *dataset, int held, const char *ckpt,
                      const Vae *m, H5Rows *x, VdError *err)
{
    const VaeShape *s = &m->shape;
    if (h5rows_open(x, file, dataset, 0, err) != VD_OK)
        return err->code;
    if (held && select_held(ckpt, x, err) != VD_OK)
        return err->code;
    if (x->row_len != s->n_input)
        return vd_fail(err, VD_EX_DATAERR, "%s samples have %lld values, the model in %s takes %d",
                       x->where, (long long)x->row_len, ckpt, s->n_input);
    /* the layout the model was trained with settles what the shape leaves open */
    ImageGeom model;
    trained_image(ckpt, &model);
    int tie = !model.c ? VD_LAYOUT_AUTO : model.chw ? VD_LAYOUT_CHW : VD_LAYOUT_HWC;
    if (h5rows_layout(x, model.c ? VD_LAYOUT_AUTO : VD_LAYOUT_NONE, tie, err) != VD_OK)
        return err->code;
    if (!model.c && x->img.chw && x->img.c > 1) /* trained on its samples as stored */
        memset(&x->img, 0, sizeof x->img);
    if (vae_shape_image(s) && (x->img.c != s->in_c || x->img.h != s->in_h || x->img.w != s->in_w))
        return vd_fail(err, VD_EX_DATAERR, "%s samples are %s images of %dx%dx%d, the model in "
                       "%s takes %dx%dx%d", x->where, image_layout_name(&x->img), x->img.h,
                       x->img.w, x->img.c, ckpt, s->in_h, s->in_w, s->in_c);
    return VD_OK;
}

int trained_open_labels(const char *file, const char *path, const H5Rows *x, H5Rows *y,
                        VdError *err)
{
    int64_t want = x->map ? x->dims[0] : x->n_rows; /* a view: the labels of all the rows */
    if (h5rows_open(y, file, path, 1, err) == VD_OK && y->n_rows != want)
        vd_fail(err, VD_EX_DATAERR, "%s has %lld labels for %lld samples", y->where,
                (long long)y->n_rows, (long long)want);
    else if (err->code != VD_OK)
        snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg),
                 " (the model is conditional: --labels PATH)");
    else
        h5rows_select_like(y, x);
    return err->code;
}

void trained_image(const char *ckpt, ImageGeom *g)
{
    CkptData d;
    if (ckpt_read_data(ckpt, &d) == 0)
        *g = d.img;
    else
        memset(g, 0, sizeof *g);
}

const char trained_threads_help[] = "OpenBLAS threads per rank (0: cores / ranks per node)";
const char trained_figure_scale_help[] =
    "pixels per image pixel in the PNG (0: small images scaled up to about 96 px); lowered, "
    "with a note, where it would pass 8192 px a side";

int trained_check_outputs(const char *name, const char *ckpt, VdError *err)
{
    char path[VD_PATH_MAX];
    ImageGeom g;
    trained_image(ckpt, &g);
    trained_out_path(path, name, ".h5");
    if (durable_check(path, err) != VD_OK || !g.c)
        return err->code;
    trained_out_path(path, name, ".png");
    return durable_check(path, err);
}

void trained_out_path(char *buf, const char *name, const char *ext)
{
    size_t len = strlen(name);
    if (len > 4 && strcmp(name + len - 4, ".png") == 0)
        len -= 4;
    else if (len > 3 && strcmp(name + len - 3, ".h5") == 0)
        len -= 3;
    snprintf(buf, VD_PATH_MAX, "%.*s%s", (int)len, name, ext);
}
