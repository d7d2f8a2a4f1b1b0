/* trained.h — what the commands that use a trained model share (eval,
 * sample, reconstruct, encode, interpolate): loading the model a checkpoint
 * argument names, and opening data for it. Local. */
#ifndef VD_TRAINED_H
#define VD_TRAINED_H

#include "h5rows.h"
#include "model.h"
#include "util.h"

/* The model stored in the checkpoint that arg names (a file, or a run
 * directory: ckpt_find); its file goes to path (VD_PATH_MAX bytes). NULL
 * with err set if it cannot be loaded. */
Vae *trained_load(const char *arg, char *path, VdError *err);

/* Fills what the user left empty from the run that made checkpoint ckpt:
 * file (VD_PATH_MAX bytes) the data it trained on (else the default data
 * file), dataset (dn bytes) its test set, and labels (ln bytes; NULL when
 * not wanted) the test set's labels. A run without a test set gives its
 * training samples, with a note printed on rank 0; returns 1 when those
 * are to be the rows it held out (--val-fraction), else 0. */
int trained_defaults(const char *ckpt, int rank, char *file, char *dataset, size_t dn,
                     char *labels, size_t ln);

/* Opens file:dataset (see trained_defaults) for the model of checkpoint
 * ckpt, as the view of the rows the run held out when held. Its samples
 * must have the model's size (and be the images a convolutional model
 * takes); they are read as the model was trained (channels last). */
int trained_open_data(const char *file, const char *dataset, int held, const char *ckpt,
                      const Vae *m, H5Rows *x, VdError *err);

/* Opens file:path, the labels of x (of the same rows when x is a view),
 * for a conditional model. */
int trained_open_labels(const char *file, const char *path, const H5Rows *x, H5Rows *y,
                        VdError *err);

/* How the model's samples are images, from what the checkpoint records
 * (g->c = 0: they are not). */
void trained_image(const char *ckpt, ImageGeom *g);

/* buf (VD_PATH_MAX bytes) = name without a trailing ".png" or ".h5", plus ext. */
void trained_out_path(char *buf, const char *name, const char *ext);

/* The help of the options these commands share. */
extern const char trained_threads_help[], trained_figure_scale_help[];

/* Before the work: can NAME.h5, and NAME.png when the samples of checkpoint
 * ckpt are images, be written (durable_check)? VD_OK or VD_EX_CANTCREAT. */
int trained_check_outputs(const char *name, const char *ckpt, VdError *err);

#endif
