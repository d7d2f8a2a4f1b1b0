/* image.c — PNG via libpng, and image grids. See image.h. */
#include "image.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durable.h"

/* Writes 8-bit rows of channels bytes per pixel (1 gray, 3 RGB) durably
 * (durable.h), so a reader (or a crash) never sees a partial PNG. */
static int png_write(const char *path, const uint8_t *pixels, int w, int h, int channels,
                     VdError *err)
{
    DurableFile out;
    if (durable_open(&out, path, "wb", err) != VD_OK)
        return err->code;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        durable_discard(&out);
        return vd_fail(err, VD_EX_IOERR, "writing %s failed (libpng)", path);
    }
    png_init_io(png, out.f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)w * (size_t)channels;
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * stride));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return durable_commit(&out, err);
}

int png_write_gray(const char *path, const uint8_t *pixels, int w, int h, VdError *err)
{
    return png_write(path, pixels, w, h, 1, err);
}

int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h, VdError *err)
{
    return png_write(path, rgb, w, h, 3, err);
}

/* Decodes any PNG into a malloc'd buffer in format (PNG_FORMAT_GRAY, _RGB):
 * libpng's simplified API converts color type and bit depth. */
static int png_read(const char *path, png_uint_32 format, uint8_t **pixels, int *w, int *h,
                    VdError *err)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return vd_fail(err, VD_EX_NOINPUT, "cannot read PNG %s: %s", path, img.message);
    img.format = format;
    *pixels = malloc(PNG_IMAGE_SIZE(img));
    if (!*pixels || !png_image_finish_read(&img, NULL, *pixels, 0, NULL)) {
        free(*pixels);
        *pixels = NULL;
        png_image_free(&img);
        return vd_fail(err, VD_EX_DATAERR, "cannot decode PNG %s", path);
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return VD_OK;
}

int png_read_gray(const char *path, uint8_t **pixels, int *w, int *h, VdError *err)
{
    return png_read(path, PNG_FORMAT_GRAY, pixels, w, h, err);
}

int png_read_rgb(const char *path, uint8_t **rgb, int *w, int *h, VdError *err)
{
    return png_read(path, PNG_FORMAT_RGB, rgb, w, h, err);
}

int image_geom(const int64_t *dims, int nd, int want, int tie, ImageGeom *g, char *why, size_t n)
{
    memset(g, 0, sizeof *g);
    if (want == VD_LAYOUT_NONE) /* the user says: not images (tabular data of a square width) */
        return 0;
    int64_t side = nd == 1 && dims[0] > 0 ? (int64_t)lround(sqrt((double)dims[0])) : 0;
    if (nd == 3) {
        int last = dims[2] <= 4 && dims[0] > 4, first = dims[0] <= 4 && dims[2] > 4;
        if ((want == VD_LAYOUT_HWC && first) || (want == VD_LAYOUT_CHW && last)) {
            snprintf(why, n, "--layout %s: samples shaped (%lld, %lld, %lld) have their channels "
                     "%s; pass --layout %s (or auto)", want == VD_LAYOUT_HWC ? "hwc" : "chw",
                     (long long)dims[0], (long long)dims[1], (long long)dims[2],
                     first ? "first" : "last", first ? "chw" : "hwc");
            return -1;
        }
        int layout = want != VD_LAYOUT_AUTO ? want : last ? VD_LAYOUT_HWC
                     : first ? VD_LAYOUT_CHW : tie;
        int64_t c = layout == VD_LAYOUT_CHW ? dims[0] : dims[2];
        if (layout == VD_LAYOUT_AUTO || c > VD_MAX_CHANNELS) {
            if (want != VD_LAYOUT_AUTO) {
                snprintf(why, n, "--layout: samples shaped (%lld, %lld, %lld) would have %lld "
                         "channels, more than %d", (long long)dims[0], (long long)dims[1],
                         (long long)dims[2], (long long)c, VD_MAX_CHANNELS);
                return -1;
            }
            return 0;
        }
        g->chw = layout == VD_LAYOUT_CHW;
        g->c = (int)c;
        g->h = (int)(g->chw ? dims[1] : dims[0]);
        g->w = (int)(g->chw ? dims[2] : dims[1]);
        return 0;
    }
    if (want != VD_LAYOUT_AUTO && nd != 2 && !(nd == 1 && side * side == dims[0])) {
        snprintf(why, n, "--layout %s: samples of %d dimension%s are not images",
                 want == VD_LAYOUT_HWC ? "hwc" : "chw", nd, nd == 1 ? "" : "s");
        return -1;
    }
    if (nd == 2) {
        *g = (ImageGeom){1, (int)dims[0], (int)dims[1], 0};
    } else if (nd == 1 && side * side == dims[0]) {
        *g = (ImageGeom){1, (int)side, (int)side, 0};
    } else if (want != VD_LAYOUT_AUTO) {
        snprintf(why, n, "--layout %s: samples of %lld values are not images",
                 want == VD_LAYOUT_HWC ? "hwc" : "chw", (long long)dims[0]);
        return -1;
    }
    return 0;
}

const char *image_layout_name(const ImageGeom *g)
{
    return g->c == 0 ? "none" : g->chw ? "chw" : "hwc";
}

void image_grid(uint8_t *out, int *grid_w, int *grid_h, const float *images, int n,
                const ImageGeom *g, int cols)
{
    int rows = (n + cols - 1) / cols, ih = g->h, iw = g->w, c = g->c, rgb = c >= 3;
    int px = rgb ? 3 : 1, W = cols * (iw + 1) + 1, H = rows * (ih + 1) + 1;
    *grid_w = W;
    *grid_h = H;
    memset(out, 32, (size_t)W * (size_t)H * px); /* dark gray gaps */
    for (int k = 0; k < n; k++) {
        int ox = 1 + (k % cols) * (iw + 1), oy = 1 + (k / cols) * (ih + 1);
        const float *img = images + (size_t)k * ih * iw * c;
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < iw; x++)
                for (int ch = 0; ch < px; ch++) {
                    float v = img[((size_t)y * iw + x) * c + ch];
                    v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                    out[((size_t)(oy + y) * W + ox + x) * px + ch] = (uint8_t)(v * 255.0f + 0.5f);
                }
    }
}

int image_auto_scale(const ImageGeom *g)
{
    int side = g->h > g->w ? g->h : g->w;
    return side > 0 && side < IMAGE_TILE_PX ? IMAGE_TILE_PX / side : 1;
}

int image_grid_scale(const ImageGeom *g, int n, int cols, int scale)
{
    cols = cols > n ? n : cols < 1 ? 1 : cols;
    if (scale <= 0)
        scale = image_auto_scale(g);
    long long rows = (n + cols - 1) / cols, gw = (long long)cols * (g->w + 1) + 1,
              gh = rows * (g->h + 1) + 1, fit = IMAGE_MAX_PX / (gw > gh ? gw : gh);
    return scale <= fit ? scale : fit > 1 ? (int)fit : 1;
}

void image_note_scale(FILE *out, const char *name, int asked, int used)
{
    if (asked > 0 && used < asked)
        fprintf(out, "note: --figure-scale %d is lowered to %d for %s: a figure stays within %d "
                "pixels a side\n", asked, used, name, IMAGE_MAX_PX);
}

int image_grid_png(const char *path, const float *images, int n, const ImageGeom *g, int cols,
                   int scale, int *w, int *h, VdError *err)
{
    scale = image_grid_scale(g, n, cols, scale);
    if (cols > n)
        cols = n;
    int rows = (n + cols - 1) / cols, gw, gh, px = g->c >= 3 ? 3 : 1;
    uint8_t *grid = vd_calloc((size_t)(cols * (g->w + 1) + 1) * (size_t)(rows * (g->h + 1) + 1),
                              (size_t)px);
    image_grid(grid, &gw, &gh, images, n, g, cols);
    if (scale > 1) { /* nearest neighbour: each pixel a block, sharp edges kept */
        uint8_t *big = vd_calloc((size_t)gw * scale * (size_t)gh * scale, (size_t)px);
        size_t bw = (size_t)gw * scale;
        for (size_t y = 0; y < (size_t)gh * scale; y++)
            for (size_t x = 0; x < bw; x++)
                memcpy(big + (y * bw + x) * px, grid + ((y / scale) * gw + x / scale) * px, (size_t)px);
        vd_free(grid);
        grid = big;
        gw *= scale;
        gh *= scale;
    }
    if (w)
        *w = gw;
    if (h)
        *h = gh;
    int rc = px == 3 ? png_write_rgb(path, grid, gw, gh, err) : png_write_gray(path, grid, gw, gh, err);
    vd_free(grid);
    return rc;
}
