/* figures.c — the figures a training run redraws every epoch:
 * reconstructions.png, samples.png and, for a 2-D latent, latent.png
 * (loss.png is plot.h's, from the metrics files). A figure that cannot be
 * written is worth a warning, never the run. See run.h. */
#include "run.h"

#include <stdio.h>
#include <string.h>

#include "image.h"
#include "plot.h"

enum { COLS = 8 }; /* images per grid row */

static void warn(const VdError *e)
{
    if (e->code != VD_OK)
        fprintf(stderr, "vae-dist: warning: %s (training goes on)\n", e->msg);
}

/* Two grid rows of test images above their reconstructions (z = mu), as
 * pics (4 COLS images). */
static void reconstructions(Run *r, float *pics)
{
    const Vae *m = r->live.m;
    VaeWork *w = r->live.w;
    int D = m->shape.n_input, d = m->d_total, n = 2 * COLS;
    Objective elbo = vae_elbo(1.0f);
    shard_batch(&r->data.test, 0, n, w->x, w->y);
    memset(w->eps, 0, sizeof(float) * (size_t)n * d);
    vae_forward(m, w, n, &elbo, 0);
    for (int row = 0; row < 2; row++) {
        memcpy(pics + (size_t)(2 * row) * COLS * D, w->x + (size_t)row * COLS * D,
               sizeof(float) * COLS * D);
        vae_output_mean(m, vae_outputs(m, w) + (size_t)row * COLS * D, COLS,
                        pics + (size_t)(2 * row + 1) * COLS * D);
    }
}

/* The draws of samples.png: 64, or for a conditional model a row a class. */
static int samples_shown(const Vae *m)
{
    int C = m->shape.classes;
    return C > 0 ? (C < 32 ? C : 32) * COLS : 64;
}

void figures_note_scale(const Run *r)
{
    const ImageGeom *img = &r->data.train_x.img;
    int asked = r->plan.cfg.figure_scale, n = samples_shown(r->live.m);
    if (img->c) /* samples.png, the taller grid (reconstructions.png may keep more) */
        image_note_scale(stdout, "samples.png", asked, image_grid_scale(img, n, COLS, asked));
}

void figures_images(Run *r)
{
    const Vae *m = r->live.m;
    int D = m->shape.n_input, d = m->d_total, nsamples = samples_shown(m);
    float *pics = vd_calloc((size_t)(nsamples > 4 * COLS ? nsamples : 4 * COLS) * D, sizeof(float));
    float *z = vd_calloc((size_t)nsamples * d, sizeof(float));
    int32_t *cls = vd_calloc((size_t)nsamples, sizeof(int32_t));
    char path[VD_PATH_MAX];
    VdError err = {0};
    const ImageGeom *img = &r->data.train_x.img;
    if (img->c && r->data.has_test && r->data.test.n >= 2 * COLS) {
        reconstructions(r, pics);
        if (vd_path_join(path, r->plan.cfg.out, "reconstructions.png") == 0)
            image_grid_png(path, pics, 4 * COLS, img, COLS, r->plan.cfg.figure_scale, NULL, NULL,
                           &err);
    }
    if (img->c && err.code == VD_OK) {
        vae_sample(m, r->live.w, r->plan.cfg.seed, nsamples, COLS, -1, 0, z, cls, pics);
        if (vd_path_join(path, r->plan.cfg.out, "samples.png") == 0)
            image_grid_png(path, pics, nsamples, img, COLS, r->plan.cfg.figure_scale, NULL, NULL,
                           &err);
    }
    warn(&err);
    VdError plot = {0}; /* redrawn every epoch, from the metrics files */
    plot_run_losses(r->plan.cfg.out, (double)r->plan.steps_per_epoch, &plot);
    warn(&plot);
    vd_free(pics);
    vd_free(z);
    vd_free(cls);
}

void figures_latent(Run *r, int64_t epoch)
{
    int64_t n_test = r->data.test_x.n_rows, mine = r->plan.test_end - r->plan.test_begin;
    int *counts = vd_calloc((size_t)r->plan.size, sizeof(int));
    int *displs = vd_calloc((size_t)r->plan.size, sizeof(int));
    for (int k = 0; k < r->plan.size; k++) {
        int64_t b, e;
        shard_range(n_test, k, r->plan.size, &b, &e);
        counts[k] = (int)(e - b);
        displs[k] = (int)b;
    }
    MPI_Gatherv(r->live.test_lab, (int)mine, MPI_INT32_T, r->live.all_lab, counts, displs,
                MPI_INT32_T, 0, r->plan.comm);
    for (int k = 0; k < r->plan.size; k++) {
        counts[k] *= 2;
        displs[k] *= 2;
    }
    MPI_Gatherv(r->live.test_mu, (int)(2 * mine), MPI_FLOAT, r->live.all_mu, counts, displs,
                MPI_FLOAT, 0, r->plan.comm);
    vd_free(counts);
    vd_free(displs);
    if (r->plan.rank != 0)
        return;
    char path[VD_PATH_MAX], title[64];
    snprintf(title, sizeof title, "LATENT MEANS, EPOCH %lld", (long long)epoch + 1);
    int64_t classes = r->live.m->shape.classes;
    for (int64_t i = 0; i < n_test && !r->live.m->shape.classes; i++)
        classes = r->live.all_lab[i] >= classes ? (int64_t)r->live.all_lab[i] + 1 : classes;
    VdError fig = {0};
    if (vd_path_join(path, r->plan.cfg.out, "latent.png") == 0)
        plot_scatter_png(path, r->live.all_mu, r->live.all_lab, (int)n_test,
                         classes < 1 << 20 ? (int)classes : 1 << 20, title, &fig);
    warn(&fig);
}
