/* gen_data.c — writes small synthetic HDF5 data sets for the shell tests:
 * side x side images of one bright bar (horizontal or vertical, at a random
 * position), labelled by orientation and position (vertical * side + position,
 * so 2 * side classes). A VAE learns them in a few hundred steps. --gray V
 * makes the bars V instead of 1 (non-binary data). Flags choose the storage (type, byte order, chunking,
 * compression) and can plant one defect for the bad-input tests.
 *
 *   gen_data OUT.h5 [--n N] [--test M] [--side S] [--type u8|f32|f64] [--be]
 *                   [--chunk ROWS] [--deflate LEVEL] [--gray V]
 *                   [--channels C] [--layout hwc|chw] [--shapes]
 *                   [--bad nan|range|rank1|empty|string|labels-range|labels-length|huge|bigchunk]
 * --bad huge makes /train/images claim 10^12 rows, and --bad bigchunk gives
 * it 1 GiB chunks; both stay small files (unwritten chunks take no space).
 * --channels C (or --layout) writes (N, S, S, C) (hwc, the default) or
 * (N, C, S, S) (chw) colour images: channel c of a bar is V when (vertical +
 * c) is odd, else 0.4 V, so the orientation shows in the colour too. The
 * same seed gives the same images whatever the layout. --table D writes
 * (N, D) rows of uniform values in [0, 1) instead: tabular data, no images.
 * --shapes writes colour images (N, S, S, 3) of one or two shapes (square,
 * disc, triangle) in bright, saturated colours on a background of a muted
 * colour, labelled by the kind of the shape on top: colour data whose
 * colours a model must learn (a grey reconstruction of them is visibly
 * wrong, and loses to predicting each image's mean colour). */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

static hid_t file_type(const char *type, int be)
{
    if (strcmp(type, "u8") == 0)
        return H5T_STD_U8LE;
    if (strcmp(type, "f32") == 0)
        return be ? H5T_IEEE_F32BE : H5T_IEEE_F32LE;
    return be ? H5T_IEEE_F64BE : H5T_IEEE_F64LE;
}

static int channels = 0, chw = 0; /* --channels, --layout chw; 0: (N, S, S) */
static long table = 0;            /* --table D */
static int shapes = 0;            /* --shapes */

/* (n, D) uniform rows as prefix/images, and labels 0. */
static int write_table(hid_t file, const char *prefix, long n, uint32_t draw_row)
{
    double *v = malloc(sizeof(double) * (size_t)(n * table));
    int *lab = calloc((size_t)n, sizeof(int));
    Rng r = rng_for(54321, VD_RNG_ORDER, 9);
    for (long i = 0; i < n * table; i++)
        v[i] = (double)rng_below(&r, draw_row, (uint64_t)i, 1000) / 1000.0;
    char name[64];
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)table};
    hid_t space = H5Screate_simple(2, dims, NULL);
    snprintf(name, sizeof name, "%s/images", prefix);
    hid_t d = H5Dcreate2(file, name, H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 || H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0;
    H5Dclose(d);
    H5Sclose(space);
    space = H5Screate_simple(1, dims, NULL);
    snprintf(name, sizeof name, "%s/labels", prefix);
    d = H5Dcreate2(file, name, H5T_STD_I32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    rc |= d < 0 || H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab) < 0;
    H5Dclose(d);
    H5Sclose(space);
    H5Pclose(lcpl);
    free(v);
    free(lab);
    return rc;
}

/* img (n, S, S, C) -> (n, C, S, S) in place, through a copy. */
static void to_chw(double *img, long n, int side, int c)
{
    long plane = (long)side * side, D = plane * c;
    double *row = malloc(sizeof(double) * (size_t)D);
    for (long i = 0; i < n; i++) {
        memcpy(row, img + i * D, sizeof(double) * (size_t)D);
        for (long p = 0; p < plane; p++)
            for (int k = 0; k < c; k++)
                img[i * D + k * plane + p] = row[p * c + k];
    }
    free(row);
}

/* img (n, S, S, C) = one bar per image, and its label (see the top). */
static void fill_bars(double *img, int *lab, long n, int side, int C, uint32_t draw_row,
                      double gray)
{
    long D = (long)side * side * C;
    Rng r = rng_for(12345, VD_RNG_ORDER, 7);
    for (long i = 0; i < n; i++) {
        int vertical = (int)rng_below(&r, draw_row, (uint64_t)(2 * i), 2);
        int pos = (int)rng_below(&r, draw_row, (uint64_t)(2 * i + 1), (uint64_t)side);
        lab[i] = vertical * side + pos;
        for (int k = 0; k < side; k++) {
            int y = vertical ? k : pos, x = vertical ? pos : k;
            for (int c = 0; c < C; c++)
                img[i * D + ((long)y * side + x) * C + c] =
                    C == 1 || (vertical + c) % 2 ? gray : 0.4 * gray;
        }
    }
}

/* rgb = the colour of hue h in [0, 6), saturation s and value v (HSV). */
static void hsv_rgb(double h, double s, double v, double rgb[3])
{
    int k = (int)h % 6;
    double f = h - (int)h, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    double sector[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    for (int c = 0; c < 3; c++)
        rgb[c] = sector[k][c];
}

/* img (n, S, S, 3) = coloured shapes: a background of one muted colour and one
 * or two shapes (0 square, 1 disc, 2 triangle) of bright, saturated colours,
 * at random sizes and places; the label is the kind of the shape on top. */
static void fill_shapes(double *img, int *lab, long n, int side, uint32_t draw_row)
{
    long D = (long)side * side * 3;
    Rng r = rng_for(12345, VD_RNG_ORDER, 8);
    for (long i = 0; i < n; i++) {
        /* 16 draws per image, at b = 16 i + k, so an image does not depend on
         * the others */
        uint32_t u[16];
        for (int k = 0; k < 16; k++)
            u[k] = (uint32_t)rng_below(&r, draw_row, (uint64_t)i * 16 + (uint64_t)k, 1u << 20);
        const uint32_t *d = u;
#define DRAW(n) ((int)(*d++ % (uint32_t)(n)))
        double bg[3];
        double bh = DRAW(600) / 100.0, bs = 0.3 + DRAW(41) / 100.0, bv = 0.3 + DRAW(51) / 100.0;
        hsv_rgb(bh, bs, bv, bg);
        for (long p = 0; p < (long)side * side; p++)
            for (int c = 0; c < 3; c++)
                img[i * D + p * 3 + c] = bg[c];
        int count = 1 + DRAW(2);
        for (int s = 0; s < count; s++) {
            int kind = DRAW(3), size = side / 4 + DRAW(side / 3 + 1);
            int y0 = DRAW(side - size + 1), x0 = DRAW(side - size + 1);
            double fg[3];
            double fh = DRAW(600) / 100.0, fs = 0.7 + DRAW(31) / 100.0, fv = 0.75 + DRAW(26) / 100.0;
            hsv_rgb(fh, fs, fv, fg);
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++) {
                    double du = (x + 0.5) / size - 0.5, dv = (y + 0.5) / size - 0.5;
                    int in = kind == 0 ? 1
                             : kind == 1 ? du * du + dv * dv <= 0.25
                                         : 2 * fabs(du) <= dv + 0.5; /* apex up */
                    for (int c = 0; in && c < 3; c++)
                        img[i * D + ((long)(y0 + y) * side + x0 + x) * 3 + c] = fg[c];
                }
            lab[i] = kind;
        }
#undef DRAW
    }
}

static int write_set(hid_t file, const char *prefix, long n, int side, const char *type, int be,
                     long chunk, int deflate, const char *bad, uint32_t draw_row, double gray)
{
    int bigchunk = bad && strcmp(bad, "bigchunk") == 0;
    if (bigchunk) { /* 1 GiB chunks of float64 (8192, 128, 128), one row generated */
        side = 128;
        chunk = 8192;
        n = 1;
    }
    int C = channels ? channels : 1;
    long D = (long)side * side * C;
    double *img = calloc((size_t)(n * D), sizeof(double));
    int *lab = calloc((size_t)n, sizeof(int));
    if (shapes)
        fill_shapes(img, lab, n, side, draw_row);
    else
        fill_bars(img, lab, n, side, C, draw_row, gray);
    if (chw)
        to_chw(img, n, side, C);
    if (bad && strcmp(bad, "nan") == 0)
        img[D * (n / 2) + 3] = 0.0 / 0.0;
    if (bad && strcmp(bad, "range") == 0 && strcmp(type, "u8") != 0)
        img[D * (n / 2) + 3] = 2.5;
    if (bad && strcmp(bad, "labels-range") == 0)
        lab[n / 2] = -3;

    char name[64];
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    int rank1 = bad && strcmp(bad, "rank1") == 0;
    int huge = bad && strcmp(bad, "huge") == 0;
    hsize_t dims[4] = {bad && strcmp(bad, "empty") == 0 ? 0
                       : huge                          ? 1000000000000ULL
                       : bigchunk                      ? 8192
                                                       : (hsize_t)n,
                       (hsize_t)side, (hsize_t)side, (hsize_t)C};
    int nd = channels ? 4 : 3;
    if (channels && chw) {
        dims[1] = (hsize_t)C;
        dims[3] = (hsize_t)side;
    }
    hsize_t flat = (hsize_t)(n * D);
    hid_t space = rank1 ? H5Screate_simple(1, &flat, NULL) : H5Screate_simple(nd, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (huge && chunk <= 0)
        chunk = 64;
    if (chunk > 0 && !rank1 && dims[0] > 0) {
        hsize_t c[4] = {(hsize_t)(chunk < (long)dims[0] ? chunk : (long)dims[0]), dims[1], dims[2],
                        dims[3]};
        H5Pset_chunk(dcpl, nd, c);
        if (deflate > 0)
            H5Pset_deflate(dcpl, (unsigned)deflate);
    }
    snprintf(name, sizeof name, "%s/images", prefix);
    int rc = 0;
    if (bad && strcmp(bad, "string") == 0) {
        hid_t st = H5Tcopy(H5T_C_S1);
        H5Tset_size(st, 4);
        char *txt = calloc((size_t)(n * D), 4);
        hid_t d = H5Dcreate2(file, name, st, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        rc |= H5Dwrite(d, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, txt) < 0;
        H5Dclose(d);
        H5Tclose(st);
        free(txt);
    } else {
        hid_t d = H5Dcreate2(file, name, bigchunk ? H5T_IEEE_F64LE : file_type(type, be), space,
                             lcpl, dcpl, H5P_DEFAULT);
        if (bigchunk) {
            /* nothing written */
        } else if (strcmp(type, "u8") == 0) {
            unsigned char *u = malloc((size_t)(n * D));
            for (long i = 0; i < n * D; i++)
                u[i] = (unsigned char)(img[i] * 255.0 + 0.5);
            rc |= H5Dwrite(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, u) < 0;
            free(u);
        } else {
            hid_t fs = H5Dget_space(d), ms = H5S_ALL;
            if (huge) { /* write the first n rows only */
                hsize_t start[4] = {0, 0, 0, 0}, cnt[4] = {(hsize_t)n, dims[1], dims[2], dims[3]};
                H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
                ms = H5Screate_simple(nd, cnt, NULL);
            }
            rc |= H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, huge ? fs : H5S_ALL, H5P_DEFAULT, img) < 0;
            if (huge)
                H5Sclose(ms);
            H5Sclose(fs);
        }
        H5Dclose(d);
    }
    H5Sclose(space);
    H5Pclose(dcpl);
    hsize_t nl = (hsize_t)(bad && strcmp(bad, "labels-length") == 0 ? n - 1 : n);
    if (huge)
        nl = dims[0];
    space = H5Screate_simple(1, &nl, NULL);
    snprintf(name, sizeof name, "%s/labels", prefix);
    hid_t lpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t lchunk = 1024, written = (hsize_t)n;
    if (huge)
        H5Pset_chunk(lpl, 1, &lchunk);
    hid_t d = H5Dcreate2(file, name, H5T_STD_I32LE, space, lcpl, lpl, H5P_DEFAULT);
    hid_t ms = H5Screate_simple(1, huge ? &written : &nl, NULL);
    hsize_t zero = 0;
    H5Sselect_hyperslab(space, H5S_SELECT_SET, &zero, NULL, huge ? &written : &nl, NULL);
    rc |= H5Dwrite(d, H5T_NATIVE_INT, ms, space, H5P_DEFAULT, lab) < 0;
    H5Sclose(ms);
    H5Dclose(d);
    H5Pclose(lpl);
    H5Sclose(space);
    H5Pclose(lcpl);
    free(img);
    free(lab);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') { /* --help is no file name */
        fprintf(stderr, "usage: gen_data OUT.h5 [options]\n");
        return 64;
    }
    long n = 1000, test = 200, chunk = 0;
    int side = 8, be = 0, deflate = 0;
    double gray = 1.0;
    const char *type = "u8", *bad = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(a, "--be") == 0) {
            be = 1;
            continue;
        }
        if (strcmp(a, "--shapes") == 0) {
            shapes = channels = 3;
            continue;
        }
        i++;
        if (strcmp(a, "--n") == 0) n = atol(v);
        else if (strcmp(a, "--test") == 0) test = atol(v);
        else if (strcmp(a, "--side") == 0) side = atoi(v);
        else if (strcmp(a, "--type") == 0) type = v;
        else if (strcmp(a, "--chunk") == 0) chunk = atol(v);
        else if (strcmp(a, "--deflate") == 0) deflate = atoi(v);
        else if (strcmp(a, "--bad") == 0) bad = v;
        else if (strcmp(a, "--gray") == 0) gray = atof(v);
        else if (strcmp(a, "--channels") == 0) channels = atoi(v);
        else if (strcmp(a, "--table") == 0) table = atol(v);

        else if (strcmp(a, "--layout") == 0) {
            chw = strcmp(v, "chw") == 0;
            channels = channels ? channels : 1;
        }
        else {
            fprintf(stderr, "gen_data: unknown option %s\n", a);
            return 64;
        }
    }
    if (shapes && (channels != 3 || side < 4)) {
        fprintf(stderr, "gen_data: --shapes makes images of 3 channels and a side of at least 4\n");
        return 64;
    }
    hid_t f = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return 73;
    int rc;
    if (table > 0) {
        rc = write_table(f, "/train", n, 0);
        if (test > 0)
            rc |= write_table(f, "/test", test, 1);
    } else {
        rc = write_set(f, "/train", n, side, type, be, chunk, deflate, bad, 0, gray);
        if (test > 0)
            rc |= write_set(f, "/test", test, side, type, be, chunk, deflate, NULL, 1, gray);
    }
    rc |= H5Fclose(f) < 0;
    return rc ? 74 : 0;
}
