/* trained.c — loading a trained model and opening data for it. See trained.h. */
#include "trained.h"

#include <stdio.h>
#include <string.h>

#include "ckpt.h"
#include "image.h"
#include "runtime.h"

Vae *trained_load(const char *arg, char *path, VdError *err)
{
    VaeShape shape;
    if (ckpt_find(arg, path, err) != VD_OK || ckpt_read_shape(path, &shape, err) != VD_OK)
        return NULL;
    const char *why = NULL;
    Vae *m = vae_create(&shape, &why);
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

void trained_defaults(const char *ckpt, int rank, char *file, char *dataset, size_t dn,
                      char *labels, size_t ln)
{
    char test[256] = "";
    if (!file[0] && (ckpt_read_config(ckpt, "data", file, VD_PATH_MAX) != 0 || !file[0]))
        runtime_default_data(file);
    if (dataset[0])
        return;
    int want_labels = labels && !labels[0];
    if (ckpt_read_config(ckpt, "test-dataset", test, sizeof test) != 0) { /* no /config */
        snprintf(dataset, dn, "/test/images");
        if (want_labels)
            snprintf(labels, ln, "/test/labels");
    } else if (strcmp(test, "none") != 0) {
        snprintf(dataset, dn, "%s", test);
        if (want_labels)
            ckpt_read_config(ckpt, "test-labels", labels, ln);
    } else {
        ckpt_read_config(ckpt, "dataset", dataset, dn);
        if (want_labels)
            ckpt_read_config(ckpt, "labels", labels, ln);
        if (rank == 0)
            printf("note: the run had no test set (--test-dataset none); using its training "
                   "samples %s\n", dataset);
    }
}

int trained_open_data(const char *file, const char *dataset, const char *ckpt, const Vae *m,
                      H5Rows *x, VdError *err)
{
    const VaeShape *s = &m->shape;
    if (h5rows_open(x, file, dataset, 0, err) != VD_OK)
        return err->code;
    if (x->row_len != s->n_input)
        return vd_fail(err, VD_EX_DATAERR, "%s samples have %lld values, the model in %s takes %d",
                       x->where, (long long)x->row_len, ckpt, s->n_input);
    /* the layout the model was trained with settles what the shape leaves open */
    ImageGeom model;
    trained_image(ckpt, &model);
    int tie = !model.c ? VD_LAYOUT_AUTO : model.chw ? VD_LAYOUT_CHW : VD_LAYOUT_HWC;
    if (h5rows_layout(x, VD_LAYOUT_AUTO, tie, err) != VD_OK)
        return err->code;
    if (!model.c && x->img.chw && x->img.c > 1) /* trained on its samples as stored */
        memset(&x->img, 0, sizeof x->img);
    if (s->n_conv && (x->img.c != s->in_c || x->img.h != s->in_h || x->img.w != s->in_w))
        return vd_fail(err, VD_EX_DATAERR, "%s samples are %s images of %dx%dx%d, the model in "
                       "%s takes %dx%dx%d", x->where, image_layout_name(&x->img), x->img.h,
                       x->img.w, x->img.c, ckpt, s->in_h, s->in_w, s->in_c);
    return VD_OK;
}

int trained_open_labels(const char *file, const char *path, const H5Rows *x, H5Rows *y,
                        VdError *err)
{
    if (h5rows_open(y, file, path, 1, err) == VD_OK && y->n_rows != x->n_rows)
        vd_fail(err, VD_EX_DATAERR, "%s has %lld labels for %lld samples", y->where,
                (long long)y->n_rows, (long long)x->n_rows);
    else if (err->code != VD_OK)
        snprintf(err->msg + strlen(err->msg), sizeof err->msg - strlen(err->msg),
                 " (the model is conditional: --labels PATH)");
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

void trained_out_path(char *buf, const char *name, const char *ext)
{
    size_t len = strlen(name);
    if (len > 4 && strcmp(name + len - 4, ".png") == 0)
        len -= 4;
    else if (len > 3 && strcmp(name + len - 3, ".h5") == 0)
        len -= 3;
    snprintf(buf, VD_PATH_MAX, "%.*s%s", (int)len, name, ext);
}
