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

int image_shape(const int64_t *dims, int nd, int *ih, int *iw)
{
    if (nd == 2 && dims[0] > 0 && dims[1] > 0 && dims[0] < 65536 && dims[1] < 65536) {
        *ih = (int)dims[0];
        *iw = (int)dims[1];
        return 1;
    }
    if (nd == 1 && dims[0] > 0) {
        int64_t side = (int64_t)lround(sqrt((double)dims[0]));
        if (side * side == dims[0] && side < 65536) {
            *ih = *iw = (int)side;
            return 1;
        }
    }
    return 0;
}

void image_grid(uint8_t *out, int *grid_w, int *grid_h, const float *images, int n, int ih, int iw,
                int cols)
{
    int rows = (n + cols - 1) / cols;
    int W = cols * (iw + 1) + 1, H = rows * (ih + 1) + 1;
    *grid_w = W;
    *grid_h = H;
    memset(out, 32, (size_t)W * (size_t)H); /* dark gray gaps */
    for (int k = 0; k < n; k++) {
        int ox = 1 + (k % cols) * (iw + 1), oy = 1 + (k / cols) * (ih + 1);
        const float *img = images + (size_t)k * ih * iw;
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < iw; x++) {
                float v = img[y * iw + x];
                v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                out[(size_t)(oy + y) * W + ox + x] = (uint8_t)(v * 255.0f + 0.5f);
            }
    }
}

int image_grid_png(const char *path, const float *images, int n, int ih, int iw, int cols,
                   VdError *err)
{
    if (cols > n)
        cols = n;
    int rows = (n + cols - 1) / cols, gw, gh;
    uint8_t *grid = vd_calloc((size_t)(cols * (iw + 1) + 1) * (size_t)(rows * (ih + 1) + 1), 1);
    image_grid(grid, &gw, &gh, images, n, ih, iw, cols);
    int rc = png_write_gray(path, grid, gw, gh, err);
    vd_free(grid);
    return rc;
}
