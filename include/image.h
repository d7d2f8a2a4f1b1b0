/* image.h — grayscale PNG output and image grids for figures. Local. */
#ifndef VD_IMAGE_H
#define VD_IMAGE_H

#include <stdint.h>

#include "util.h"

/* Writes an 8-bit grayscale PNG (row-major pixels, width w, height h).
 * VD_OK, VD_EX_CANTCREAT or VD_EX_IOERR. */
int png_write_gray(const char *path, const uint8_t *pixels, int w, int h, VdError *err);

/* Reads an 8-bit grayscale PNG into a malloc'd buffer (*pixels, caller frees).
 * For tests. VD_OK, VD_EX_NOINPUT or VD_EX_DATAERR. */
int png_read_gray(const char *path, uint8_t **pixels, int *w, int *h, VdError *err);

/* Lays n images (each ih x iw floats in [0, 1], row-major) in a grid of cols
 * columns with a 1-pixel dark gap; out must hold grid_w * grid_h bytes. */
void image_grid(uint8_t *out, int *grid_w, int *grid_h, const float *images, int n, int ih, int iw,
                int cols);

#endif
