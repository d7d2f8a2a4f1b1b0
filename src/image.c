/* image.c — PNG via libpng, and image grids. See image.h. */
#include "image.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int png_write_gray(const char *path, const uint8_t *pixels, int w, int h, VdError *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return vd_fail(err, VD_EX_CANTCREAT, "cannot create %s: %s", tmp, strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        unlink(tmp);
        return vd_fail(err, VD_EX_IOERR, "writing %s failed", path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * w));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return vd_fail(err, VD_EX_IOERR, "writing %s failed: %s", path, strerror(errno));
    }
    return VD_OK;
}

int png_read_gray(const char *path, uint8_t **pixels, int *w, int *h, VdError *err)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return vd_fail(err, VD_EX_NOINPUT, "cannot read PNG %s: %s", path, img.message);
    img.format = PNG_FORMAT_GRAY;
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
