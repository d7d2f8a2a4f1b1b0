/* image.h — grayscale and RGB PNG files, and image grids for figures. Local. */
#ifndef VD_IMAGE_H
#define VD_IMAGE_H

#include <stdint.h>

#include "util.h"

/* Writes an 8-bit grayscale PNG (row-major pixels, width w, height h), or
 * an 8-bit RGB one (rgb: (h, w, 3)). Written to path.tmp, fsynced and
 * renamed, so path is never left half-written.
 * VD_OK, VD_EX_CANTCREAT or VD_EX_IOERR. */
int png_write_gray(const char *path, const uint8_t *pixels, int w, int h, VdError *err);
int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, VdError *err);

/* Reads a PNG as 8-bit grayscale (*pixels: (h, w)) or RGB (*rgb: (h, w, 3))
 * into a malloc'd buffer the caller frees; other PNG types are converted.
 * For tests. VD_OK, VD_EX_NOINPUT or VD_EX_DATAERR. */
int png_read_gray(const char *path, uint8_t **pixels, int *w, int *h, VdError *err);
int png_read_rgb(const char *path, uint8_t **rgb, int *w, int *h, VdError *err);

/* Lays n images (each ih x iw floats in [0, 1], row-major) in a grid of cols
 * columns with a 1-pixel dark gap; out must hold grid_w * grid_h bytes. */
void image_grid(uint8_t *out, int *grid_w, int *grid_h, const float *images, int n, int ih, int iw,
                int cols);

#endif
