/* image.h — grayscale and RGB PNG files, and image grids for figures. Local. */
#ifndef VD_IMAGE_H
#define VD_IMAGE_H

#include <stdint.h>
#include <stdio.h>

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

/* A sample seen as an image: h x w pixels of c channels, stored channels
 * last (h, w, c) in the rows vae-dist hands out; chw when the file holds it
 * channels first (c, h, w) and it is permuted on reading. c = 0: the samples
 * are not images. */
typedef struct {
    int c, h, w;
    int chw;
} ImageGeom;

/* The --layout choices, in the option's order. */
typedef enum { VD_LAYOUT_AUTO = 0, VD_LAYOUT_HWC = 1, VD_LAYOUT_CHW = 2, VD_LAYOUT_NONE = 3 } VdLayout;
#define VD_MAX_CHANNELS 64

/* How samples shaped dims (nd values: one sample's dimensions) are images,
 * by the documented rule (docs/how-it-works.md, "Images and channels"):
 *   (D)          a square D is one channel of side sqrt(D), else no image;
 *   (h, w)       one channel;
 *   (a, b, c)    channels last (hwc) if c <= 4 < a, first (chw) if a <= 4 < c;
 *                otherwise the shape says neither: tie decides (VdLayout;
 *                auto: not an image);
 *   others       not images.
 * want (VdLayout) overrides the rule where the shape allows it; none: not
 * images, whatever the shape. Returns 0, or -1 with why (n bytes) when want
 * contradicts the shape. */
int image_geom(const int64_t *dims, int nd, int want, int tie, ImageGeom *g, char *why, size_t n);

/* "hwc", "chw" or "none" (not an image), for g. */
const char *image_layout_name(const ImageGeom *g);

/* Lays n images (each h x w x c floats in [0, 1], channels last) in a grid
 * of cols columns with a 1-pixel dark gap: gray from channel 0 when c < 3,
 * else RGB from channels 0, 1, 2; out holds grid_w * grid_h bytes per gray
 * or three per RGB pixel. */
void image_grid(uint8_t *out, int *grid_w, int *grid_h, const float *images, int n,
                const ImageGeom *g, int cols);

/* The pixels per image pixel that make small images readable in a PNG:
 * each image about IMAGE_TILE_PX wide or high (28x28 -> 3, 8x8 -> 12), 1
 * for images as large or larger. */
#define IMAGE_TILE_PX 96
int image_auto_scale(const ImageGeom *g);

/* The longest side a scale may give a figure (a grid of the images as they
 * are, scale 1, may be longer). */
#define IMAGE_MAX_PX 8192
/* The scale of a grid of n images in cols columns (fewer if n is smaller):
 * scale (0: image_auto_scale), lowered so that neither side passes
 * IMAGE_MAX_PX, and at least 1. */
int image_grid_scale(const ImageGeom *g, int n, int cols, int scale);
/* One "note:" line on out when --figure-scale asked was lowered to used
 * for the figure named name; nothing when it was not. */
void image_note_scale(FILE *out, const char *name, int asked, int used);

/* The grid of n images (cols per row, fewer if n is smaller) as a PNG at
 * path, gray or RGB as image_grid, every pixel a scale x scale block
 * (image_grid_scale's); its size goes to *w, *h when not NULL. VD_OK or an
 * error from png_write_*. */
int image_grid_png(const char *path, const float *images, int n, const ImageGeom *g, int cols,
                   int scale, int *w, int *h, VdError *err);

#endif
