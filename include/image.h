/* image.h — grayscale and RGB PNG files, and image grids for figures. Local. */
#ifndef VD_IMAGE_H
#define VD_IMAGE_H

#include <stdint.h>

#include "util.h"

/* Writes an 8-bit grayscale PNG (row-major pixels, width w, height h), or
 * an 8-bit RGB one (rgb: (h, w, 3)), durably (durable.h), so path is never
 * left half-written.
 * VD_OK, VD_EX_CANTCREAT or VD_EX_IOERR. */
int png_write_gray(const char *path, const uint8_t *pixels, int w, int h, VdError *err);
int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, VdError *err);

/* Reads a PNG as 8-bit grayscale (*pixels: (h, w)) or RGB (*rgb: (h, w, 3))
 * into a malloc'd buffer the caller frees; other PNG types are converted.
 * For tests. VD_OK, VD_EX_NOINPUT or VD_EX_DATAERR. */
int png_read_gray(const char *path, uint8_t **pixels, int *w, int *h, VdError *err);
int png_read_rgb(const char *path, uint8_t **rgb, int *w, int *h, VdError *err);

/* Is a sample of shape dims (nd values: one sample's dimensions) a
 * picture? (h, w), or a square number of values. Returns 1 and sets *ih,
 * *iw, else 0. */
int image_shape(const int64_t *dims, int nd, int *ih, int *iw);

/* Lays n images (each ih x iw floats in [0, 1], row-major) in a grid of cols
 * columns with a 1-pixel dark gap; out must hold grid_w * grid_h bytes. */
void image_grid(uint8_t *out, int *grid_w, int *grid_h, const float *images, int n, int ih, int iw,
                int cols);

/* The grid of n images (cols per row, fewer if n is smaller) as a PNG at
 * path. VD_OK or an error from png_write_gray. */
int image_grid_png(const char *path, const float *images, int n, int ih, int iw, int cols,
                   VdError *err);

#endif
