/* test_plot.c — RGB PNG round trip; the 5x7 font, line clipping; scatter
 * clusters where they belong despite an outlier; the run's loss figure from
 * metrics.csv and epochs.csv (test curve present or absent, early points
 * not squashing the axis); NaN, single points and empty data. */
#include "testutil.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "plot.h"

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* Pixels of color rgb in the inclusive box [x0, x1] x [y0, y1] of an (h, w, 3) image. */
static int count_color(const uint8_t *img, int w, int x0, int y0, int x1, int y1, uint32_t rgb)
{
    int n = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            const uint8_t *p = img + ((size_t)y * w + x) * 3;
            n += ((uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]) == rgb;
        }
    return n;
}

static int count_not(const PlotCanvas *c, uint32_t bg)
{
    return c->w * c->h - count_color(c->rgb, c->w, 0, 0, c->w - 1, c->h - 1, bg);
}

/* Decodes path, checks its size and returns the pixels (caller frees). */
static uint8_t *read_png(const char *path, int w, int h)
{
    VdError err = {0};
    uint8_t *rgb = NULL;
    int pw = 0, ph = 0;
    assert_int_equal(png_read_rgb(path, &rgb, &pw, &ph, &err), VD_OK);
    assert_int_equal(pw, w);
    assert_int_equal(ph, h);
    return rgb;
}

static void test_png_rgb_round_trip(void **state)
{
    (void)state;
    enum { W = 37, H = 23 };
    uint8_t rgb[W * H * 3], gray[W * H];
    for (int i = 0; i < W * H * 3; i++)
        rgb[i] = (uint8_t)(i * 7 + i / 5);
    for (int i = 0; i < W * H; i++)
        gray[i] = (uint8_t)(i * 13);
    char path[600], tmp[700];
    snprintf(path, sizeof path, "%s/rgb.png", test_tmpdir());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    VdError err = {0};
    assert_int_equal(png_write_rgb(path, rgb, W, H, &err), VD_OK);
    assert_false(exists(tmp));
    uint8_t *back = read_png(path, W, H);
    assert_memory_equal(back, rgb, sizeof rgb);
    free(back);
    /* the grayscale writer shares the code and still round-trips */
    int w, h;
    assert_int_equal(png_write_gray(path, gray, W, H, &err), VD_OK);
    assert_int_equal(png_read_gray(path, &back, &w, &h, &err), VD_OK);
    assert_int_equal(w * h, W * H);
    assert_memory_equal(back, gray, sizeof gray);
    free(back);
    /* an unwritable path fails cleanly */
    assert_int_equal(png_write_rgb("/nonexistent-dir/x.png", rgb, W, H, &err), VD_EX_CANTCREAT);
}

/* The figures' image grid, through a PNG and back: tiles of non-square
 * images in row-major order, pixel (y, x) of image k where it belongs, values
 * scaled to 0..255 and clamped, so a transposed, mis-ordered or mis-scaled
 * grid fails. */
static void test_image_grid_layout(void **state)
{
    (void)state;
    enum { N = 5, IH = 3, IW = 4, COLS = 2 };
    float img[N * IH * IW];
    for (int k = 0; k < N; k++)
        for (int y = 0; y < IH; y++)
            for (int x = 0; x < IW; x++) /* distinct per (k, y, x); some outside [0, 1] */
                img[(k * IH + y) * IW + x] = (float)(k * 12 + y * 4 + x) / 50.0f - 0.1f;
    int gw, gh, w, h;
    uint8_t grid[(COLS * (IW + 1) + 1) * (3 * (IH + 1) + 1)], *back;
    image_grid(grid, &gw, &gh, img, N, &(ImageGeom){1, IH, IW, 0}, COLS);
    assert_int_equal(gw, COLS * (IW + 1) + 1);
    assert_int_equal(gh, 3 * (IH + 1) + 1);
    char path[600];
    snprintf(path, sizeof path, "%s/grid.png", test_tmpdir());
    VdError err = {0};
    assert_int_equal(png_write_gray(path, grid, gw, gh, &err), VD_OK);
    assert_int_equal(png_read_gray(path, &back, &w, &h, &err), VD_OK);
    assert_int_equal(w, gw);
    assert_int_equal(h, gh);
    for (int k = 0; k < N; k++)
        for (int y = 0; y < IH; y++)
            for (int x = 0; x < IW; x++) {
                float v = img[(k * IH + y) * IW + x];
                v = v < 0 ? 0 : v > 1 ? 1 : v;
                int px = 1 + (k % COLS) * (IW + 1) + x, py = 1 + (k / COLS) * (IH + 1) + y;
                assert_int_equal(back[py * w + px], (int)(v * 255.0f + 0.5f));
            }
    assert_int_equal(back[0], 32); /* the gap colour */
    free(back);
}

/* Three channels give an RGB grid: pixel (y, x) of image k has its three
 * channels (stored channels last) as red, green and blue. */
static void test_image_grid_colour(void **state)
{
    (void)state;
    enum { N = 3, IH = 2, IW = 3, C = 3, COLS = 2 };
    float img[N * IH * IW * C];
    for (int i = 0; i < N * IH * IW * C; i++)
        img[i] = (float)((i * 37) % 101) / 100.0f;
    char path[600];
    snprintf(path, sizeof path, "%s/rgb.png", test_tmpdir());
    VdError err = {0};
    ImageGeom g = {C, IH, IW, 0};
    assert_int_equal(image_grid_png(path, img, N, &g, COLS, 1, NULL, NULL, &err), VD_OK);
    uint8_t *back;
    int w, h;
    assert_int_equal(png_read_rgb(path, &back, &w, &h, &err), VD_OK);
    assert_int_equal(w, COLS * (IW + 1) + 1);
    assert_int_equal(h, 2 * (IH + 1) + 1);
    for (int k = 0; k < N; k++)
        for (int y = 0; y < IH; y++)
            for (int x = 0; x < IW; x++)
                for (int c = 0; c < C; c++) {
                    float v = img[((k * IH + y) * IW + x) * C + c];
                    int px = 1 + (k % COLS) * (IW + 1) + x, py = 1 + (k / COLS) * (IH + 1) + y;
                    assert_int_equal(back[(py * w + px) * 3 + c], (int)(v * 255.0f + 0.5f));
                }
    /* scaled: every pixel a 3 x 3 block of itself, the size three times; a
     * scale of 0 is the automatic one, readable tiles of small images */
    int w1 = w, h1 = h, gw, gh;
    uint8_t *big;
    assert_int_equal(image_grid_png(path, img, N, &g, COLS, 3, &gw, &gh, &err), VD_OK);
    assert_int_equal(png_read_rgb(path, &big, &w, &h, &err), VD_OK);
    assert_true(w == 3 * w1 && h == 3 * h1 && gw == w && gh == h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                assert_int_equal(big[(y * w + x) * 3 + c], back[((y / 3) * w1 + x / 3) * 3 + c]);
    free(big);
    free(back);
    assert_int_equal(image_auto_scale(&(ImageGeom){1, 28, 28, 0}), 3);
    assert_int_equal(image_auto_scale(&(ImageGeom){3, 32, 32, 0}), 3);
    assert_int_equal(image_auto_scale(&(ImageGeom){1, 8, 4, 0}), 12);
    assert_int_equal(image_auto_scale(&(ImageGeom){3, 64, 64, 0}), 1);
    assert_int_equal(image_auto_scale(&(ImageGeom){1, 200, 100, 0}), 1);
    assert_int_equal(image_grid_png(path, img, N, &g, COLS, 0, &gw, &gh, &err), VD_OK);
    assert_true(gw == (IMAGE_TILE_PX / IW) * w1 && gh == (IMAGE_TILE_PX / IW) * h1);
}

/* The layout rule: channels where an axis of at most 4 faces one of more;
 * what the shape leaves open goes to the tie (or is no image); an override
 * that contradicts the shape is refused. */
static void test_image_geometry_rule(void **state)
{
    (void)state;
    ImageGeom g;
    char why[256];
    int64_t hwc[3] = {32, 32, 3}, chw[3] = {3, 32, 32}, one[3] = {1, 28, 28}, hw[2] = {28, 28};
    int64_t flat[1] = {784}, table[1] = {12}, open_[3] = {4, 4, 3}, big[3] = {64, 64, 64};
    assert_int_equal(image_geom(hwc, 3, VD_LAYOUT_AUTO, VD_LAYOUT_AUTO, &g, why, sizeof why), 0);
    assert_true(g.c == 3 && g.h == 32 && g.w == 32 && !g.chw);
    assert_int_equal(image_geom(chw, 3, VD_LAYOUT_AUTO, VD_LAYOUT_AUTO, &g, why, sizeof why), 0);
    assert_true(g.c == 3 && g.h == 32 && g.w == 32 && g.chw);
    assert_int_equal(image_geom(one, 3, VD_LAYOUT_AUTO, VD_LAYOUT_AUTO, &g, why, sizeof why), 0);
    assert_true(g.c == 1 && g.h == 28 && g.w == 28);
    assert_int_equal(image_geom(hw, 2, VD_LAYOUT_CHW, VD_LAYOUT_AUTO, &g, why, sizeof why), 0);
    assert_true(g.c == 1 && g.h == 28);
    assert_int_equal(image_geom(flat, 1, VD_LAYOUT_AUTO, VD_LAYOUT_AUTO, &g, why, sizeof why), 0);
    assert_true(g.c == 1 && g.h == 28 && g.w == 28);
    assert_int_equal(image_geom(table, 1, VD_LAYOUT_AUTO, VD_LAYOUT_AUTO, &g, why, sizeof why), 0);
    assert_int_equal(g.c, 0);
    assert_int_equal(image_geom(table, 1, VD_LAYOUT_HWC, VD_LAYOUT_AUTO, &g, why, sizeof why), -1);
    assert_int_equal(image_geom(open_, 3, VD_LAYOUT_AUTO, VD_LAYOUT_AUTO, &g, why, sizeof why), 0);
    assert_int_equal(g.c, 0);
    assert_int_equal(image_geom(open_, 3, VD_LAYOUT_AUTO, VD_LAYOUT_CHW, &g, why, sizeof why), 0);
    assert_true(g.c == 4 && g.chw);
    assert_int_equal(image_geom(big, 3, VD_LAYOUT_HWC, VD_LAYOUT_AUTO, &g, why, sizeof why), 0);
    assert_true(g.c == 64 && !g.chw);
    assert_int_equal(image_geom(hwc, 3, VD_LAYOUT_CHW, VD_LAYOUT_AUTO, &g, why, sizeof why), -1);
    assert_non_null(strstr(why, "--layout hwc"));
    assert_int_equal(image_geom(chw, 3, VD_LAYOUT_HWC, VD_LAYOUT_AUTO, &g, why, sizeof why), -1);
    assert_string_equal(image_layout_name(&(ImageGeom){3, 32, 32, 1}), "chw");
}

static void test_text(void **state)
{
    (void)state;
    PlotCanvas a, b;
    plot_canvas_init(&a, 80, 20, PLOT_WHITE);
    plot_canvas_init(&b, 80, 20, PLOT_WHITE);
    assert_int_equal(count_not(&a, PLOT_WHITE), 0);
    assert_int_equal(plot_text(&a, 2, 3, "0123456789", 1, PLOT_BLACK), 59);
    int ink = count_not(&a, PLOT_WHITE);
    assert_true(ink > 50);
    /* all of it inside the text's box: x 2 .. 60, y 3 .. 9 */
    assert_int_equal(count_color(a.rgb, a.w, 2, 3, 60, 9, PLOT_BLACK), ink);
    plot_text(&b, 2, 3, "0123456780", 1, PLOT_BLACK);
    assert_memory_not_equal(a.rgb, b.rgb, (size_t)a.w * a.h * 3);
    plot_canvas_free(&a);
    plot_canvas_free(&b);

    /* every glyph is drawn and differs from every other; lowercase is
     * uppercase, unknown characters are '?'; scale 2 has 4 times the ink */
    const char *set = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.,-+()/:=%?";
    size_t n = strlen(set);
    uint8_t glyphs[64][5 * 7 * 3];
    for (size_t i = 0; i < n; i++) {
        char s[2] = {set[i], 0};
        PlotCanvas g;
        plot_canvas_init(&g, 5, 7, PLOT_WHITE);
        plot_text(&g, 0, 0, s, 1, PLOT_BLACK);
        assert_true(count_not(&g, PLOT_WHITE) > 0);
        memcpy(glyphs[i], g.rgb, sizeof glyphs[i]);
        for (size_t j = 0; j < i; j++)
            assert_memory_not_equal(glyphs[i], glyphs[j], sizeof glyphs[i]);
        PlotCanvas big;
        plot_canvas_init(&big, 10, 14, PLOT_WHITE);
        plot_text(&big, 0, 0, s, 2, PLOT_BLACK);
        assert_int_equal(count_not(&big, PLOT_WHITE), 4 * count_not(&g, PLOT_WHITE));
        plot_canvas_free(&big);
        if (set[i] >= 'A' && set[i] <= 'Z') {
            s[0] = (char)(set[i] - 'A' + 'a');
            plot_fill(&g, 0, 0, 4, 6, PLOT_WHITE);
            plot_text(&g, 0, 0, s, 1, PLOT_BLACK);
            assert_memory_equal(g.rgb, glyphs[i], sizeof glyphs[i]);
        }
        plot_canvas_free(&g);
    }
    PlotCanvas q;
    plot_canvas_init(&q, 5, 7, PLOT_WHITE);
    plot_text(&q, 0, 0, "~", 1, PLOT_BLACK);
    assert_memory_equal(q.rgb, glyphs[n - 1], sizeof glyphs[0]);
    plot_fill(&q, 0, 0, 4, 6, PLOT_WHITE);
    plot_text(&q, 0, 0, " ", 1, PLOT_BLACK);
    assert_int_equal(count_not(&q, PLOT_WHITE), 0);
    plot_canvas_free(&q);
}

static void test_line_clipping(void **state)
{
    (void)state;
    PlotCanvas c;
    plot_canvas_init(&c, 50, 50, PLOT_WHITE);
    c.clip = (PlotRect){10, 10, 39, 39};
    /* a horizontal line far beyond both sides: exactly the 30 clip columns */
    plot_line(&c, -1e12, 25, 1e12, 25, 1, PLOT_BLUE);
    assert_int_equal(count_not(&c, PLOT_WHITE), 30);
    assert_int_equal(count_color(c.rgb, c.w, 10, 25, 39, 25, PLOT_BLUE), 30);
    /* width 2, diagonal through the corner: no pixel outside the clip */
    plot_line(&c, -20, -20, 80, 80, 2, PLOT_ORANGE);
    int orange = count_color(c.rgb, c.w, 0, 0, 49, 49, PLOT_ORANGE);
    assert_true(orange >= 30);
    assert_int_equal(count_color(c.rgb, c.w, 10, 10, 39, 39, PLOT_ORANGE), orange);
    /* entirely outside, or not finite: nothing */
    int before = count_not(&c, PLOT_WHITE);
    plot_line(&c, 0, 0, 49, 5, 2, PLOT_BLACK);
    plot_line(&c, NAN, 20, 30, 20, 2, PLOT_BLACK);
    plot_line(&c, 15, 20, 30, INFINITY, 2, PLOT_BLACK);
    plot_marker(&c, NAN, 20, 2, 1, PLOT_BLACK);
    assert_int_equal(count_not(&c, PLOT_WHITE), before);
    /* markers: a 5x5 square, a disc of radius 2 with fewer pixels, cut at the clip */
    plot_canvas_free(&c);
    plot_canvas_init(&c, 50, 50, PLOT_WHITE);
    plot_marker(&c, 20, 20, 2, 0, PLOT_BLACK);
    assert_int_equal(count_not(&c, PLOT_WHITE), 25);
    plot_marker(&c, 30, 30, 2, 1, PLOT_BLUE);
    int disc = count_color(c.rgb, c.w, 0, 0, 49, 49, PLOT_BLUE);
    assert_true(disc > 9 && disc < 25);
    c.clip = (PlotRect){0, 0, 10, 10};
    plot_marker(&c, 10, 10, 2, 0, PLOT_ORANGE);
    assert_int_equal(count_color(c.rgb, c.w, 0, 0, 49, 49, PLOT_ORANGE), 9);
    plot_canvas_free(&c);
}

/* Two classes in opposite corners of the latent plane, 200 points each,
 * and one far outlier that the quantile range must ignore. */
static void test_scatter_clusters(void **state)
{
    (void)state;
    enum { N = 401 };
    float xy[2 * N];
    int32_t lab[N];
    for (int i = 0; i < 400; i++) {
        int k = i % 2;
        float c = k ? 1.0f : -1.0f;
        xy[2 * i] = c + 0.01f * (float)((i / 2) % 20 - 10);
        xy[2 * i + 1] = c + 0.01f * (float)((i / 2) / 20 - 5);
        lab[i] = k;
    }
    xy[2 * 400] = 1000.0f;
    xy[2 * 400 + 1] = -1000.0f;
    lab[400] = 0;
    char path[600];
    snprintf(path, sizeof path, "%s/scatter.png", test_tmpdir());
    VdError err = {0};
    assert_int_equal(plot_scatter_png(path, xy, lab, N, 2, "LATENT", &err), VD_OK);
    uint8_t *img = read_png(path, 640, 640);
    /* the data box spans about x 64 .. 544, y 44 .. 596; y grows down, so
     * class 0 (-1, -1) is bottom left and class 1 (1, 1) top right */
    uint32_t c0 = plot_palette[0], c1 = plot_palette[1];
    assert_true(count_color(img, 640, 64, 320, 300, 596, c0) >= 100);
    assert_int_equal(count_color(img, 640, 64, 320, 300, 596, c1), 0);
    assert_true(count_color(img, 640, 310, 44, 544, 310, c1) >= 100);
    assert_int_equal(count_color(img, 640, 310, 44, 544, 310, c0), 0);
    /* and each cluster is near its corner, not squeezed toward the middle */
    assert_true(count_color(img, 640, 64, 500, 160, 596, c0) >= 100);
    assert_true(count_color(img, 640, 450, 44, 544, 140, c1) >= 100);
    /* the outlier is not drawn: nothing of class 0 in the bottom right */
    assert_int_equal(count_color(img, 640, 310, 320, 544, 596, c0), 0);
    /* the legend (right of the box) shows both classes */
    assert_true(count_color(img, 640, 548, 0, 639, 639, c0) > 0);
    assert_true(count_color(img, 640, 548, 0, 639, 639, c1) > 0);
    free(img);

    /* a label out of range is gray; NaN points, one point, no points: valid PNGs */
    lab[3] = 7;
    xy[0] = NAN;
    assert_int_equal(plot_scatter_png(path, xy, lab, N, 2, "GRAY", &err), VD_OK);
    img = read_png(path, 640, 640);
    assert_true(count_color(img, 640, 64, 44, 544, 596, PLOT_GRAY) > 0);
    free(img);
    assert_int_equal(plot_scatter_png(path, xy + 2, lab + 1, 1, 2, NULL, &err), VD_OK);
    free(read_png(path, 640, 640));
    assert_int_equal(plot_scatter_png(path, xy, NULL, 0, 0, "EMPTY", &err), VD_OK);
    free(read_png(path, 640, 640));
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* A run of 4 epochs of 100 steps logged every 10 steps in metrics.csv's
 * format ("%.9g"), the first interval one step long with a huge loss. */
static void write_run(const char *dir, int with_epochs, int test_nan)
{
    mkdir(dir, 0755);
    char text[20000], *p = text;
    p += sprintf(p, "step,epoch,loss,recon,kl,lr,samples_per_s\n");
    p += sprintf(p, "1,1,5000,4990,10,0.001,1000\n");
    for (int s = 10; s <= 400; s += 10)
        p += sprintf(p, "%d,%d,%.9g,%.9g,%.9g,0.001,1234.5\n", s, (s - 1) / 100 + 1, 300 - 0.2 * s,
                     280 - 0.22 * s, 20 + 0.02 * s);
    write_file(dir, "metrics.csv", text);
    if (!with_epochs)
        return;
    p = text;
    p += sprintf(p, "epoch,step,train_loss,test_loss,test_recon,test_kl,seconds\n");
    for (int e = 1; e <= 4; e++) {
        if (test_nan)
            p += sprintf(p, "%d,%d,%.9g,nan,nan,nan,3.5\n", e, 100 * e, 300 - 20.0 * e);
        else
            p += sprintf(p, "%d,%d,%.9g,%.9g,%.9g,%.9g,3.5\n", e, 100 * e, 300 - 20.0 * e,
                         305 - 20.0 * e, 283 - 22.0 * e, 22 + 2.0 * e);
    }
    write_file(dir, "epochs.csv", text);
}

static void test_run_losses(void **state)
{
    (void)state;
    char dir[600], path[700], tmp[700];
    VdError err = {0};
    snprintf(dir, sizeof dir, "%s/run-full", test_tmpdir());
    write_run(dir, 1, 0);
    assert_int_equal(plot_run_losses(dir, 100.0, &err), VD_OK);
    snprintf(path, sizeof path, "%s/loss.png", dir);
    snprintf(tmp, sizeof tmp, "%s/loss.png.tmp", dir);
    assert_false(exists(tmp));
    uint8_t *img = read_png(path, 3 * 420, 320);
    for (int k = 0; k < 3; k++) { /* each panel has both curves */
        assert_true(count_color(img, 1260, 420 * k, 0, 420 * k + 419, 319, PLOT_BLUE) > 300);
        assert_true(count_color(img, 1260, 420 * k, 0, 420 * k + 419, 319, PLOT_ORANGE) > 100);
    }
    /* the one-step first interval (loss 5000) does not squash the y axis:
     * over the middle of the x axis, the train curve still falls visibly */
    int top = 320, bottom = -1;
    for (int y = 0; y < 320; y++)
        if (count_color(img, 1260, 200, y, 270, y, PLOT_BLUE) > 0) {
            top = y < top ? y : top;
            bottom = y;
        }
    assert_true(bottom - top > 30);
    /* ... it is cut at the frame, and its value is written at the top left
     * of the panel ("FIRST TRAIN 5000": text where the curve is far lower) */
    assert_true(count_color(img, 1260, 130, 46, 160, 53, PLOT_BLUE) > 5);
    /* the KL's axis takes in its first interval (10, the lowest): that point
     * lies inside the frame, above its 5% margin, not cut at its bottom */
    assert_int_equal(count_color(img, 1260, 840 + 65, 272, 840 + 403, 275, PLOT_BLUE), 0);
    assert_true(count_color(img, 1260, 840 + 65, 250, 840 + 403, 271, PLOT_BLUE) > 0);
    free(img);

    /* no epochs.csv, or test columns all nan: no test curve, no legend entry */
    for (int nan_run = 0; nan_run < 2; nan_run++) {
        snprintf(dir, sizeof dir, "%s/run-%s", test_tmpdir(), nan_run ? "nan" : "noepochs");
        write_run(dir, nan_run, 1);
        assert_int_equal(plot_run_losses(dir, 100.0, &err), VD_OK);
        snprintf(path, sizeof path, "%s/loss.png", dir);
        img = read_png(path, 1260, 320);
        assert_true(count_color(img, 1260, 0, 0, 1259, 319, PLOT_BLUE) > 900);
        assert_int_equal(count_color(img, 1260, 0, 0, 1259, 319, PLOT_ORANGE), 0);
        free(img);
    }

    /* no metrics.csv: nothing written, not an error */
    snprintf(dir, sizeof dir, "%s/run-empty", test_tmpdir());
    mkdir(dir, 0755);
    assert_int_equal(plot_run_losses(dir, 100.0, &err), VD_OK);
    snprintf(path, sizeof path, "%s/loss.png", dir);
    assert_false(exists(path));
    /* headers only (a run that has not logged yet): nothing either */
    write_file(dir, "metrics.csv", "step,epoch,loss,recon,kl,lr,samples_per_s\n");
    write_file(dir, "epochs.csv", "epoch,step,train_loss,test_loss,test_recon,test_kl,seconds\n");
    assert_int_equal(plot_run_losses(dir, 100.0, &err), VD_OK);
    assert_false(exists(path));
    /* columns found by name, whatever their order; one row is a valid picture */
    write_file(dir, "metrics.csv", "kl,loss,step,recon\n20,300,50,280\n");
    assert_int_equal(plot_run_losses(dir, 100.0, &err), VD_OK);
    img = read_png(path, 1260, 320);
    assert_true(count_color(img, 1260, 0, 0, 1259, 319, PLOT_BLUE) > 0);
    free(img);
    assert_int_equal(err.code, VD_OK);
}

/* A NaN breaks the line; single points and constant series still plot. */
static void test_lines_nan_and_degenerate(void **state)
{
    (void)state;
    double x[5] = {0, 1, 2, 3, 4}, y[5] = {3, 2, NAN, 4, 5}; /* y(0) inside y(x >= 0.2) */
    double one_x = 7, one_y = 3, flat[5] = {2, 2, 2, 2, 2};
    PlotSeries broken = {x, y, 5, PLOT_BLUE, 0, NULL};
    PlotSeries single = {&one_x, &one_y, 1, PLOT_BLUE, 0, "ONE"};
    PlotSeries constant = {x, flat, 5, PLOT_ORANGE, 1, "FLAT"};
    PlotPanel panels[4] = {{"BROKEN", "X", NULL, &broken, 1},
                           {"SINGLE", "X", "NATS", &single, 1},
                           {"FLAT", NULL, NULL, &constant, 1},
                           {NULL, NULL, NULL, NULL, 0}};
    char path[600];
    snprintf(path, sizeof path, "%s/lines.png", test_tmpdir());
    VdError err = {0};
    assert_int_equal(plot_lines_png(path, panels, 4, &err), VD_OK);
    uint8_t *img = read_png(path, 4 * 420, 320);
    /* x in [0, 4] with a 2% margin on pixels 64 .. 404: x = 1 near column
     * 152, x = 3 near 316; nothing between, something before */
    assert_int_equal(count_color(img, 1680, 160, 0, 308, 319, PLOT_BLUE), 0);
    assert_true(count_color(img, 1680, 70, 0, 145, 319, PLOT_BLUE) > 50);
    assert_true(count_color(img, 1680, 320, 0, 400, 319, PLOT_BLUE) > 50);
    /* the single point is drawn (as a marker), the flat line too */
    assert_true(count_color(img, 1680, 420, 0, 839, 319, PLOT_BLUE) > 9);
    assert_true(count_color(img, 1680, 840, 0, 1259, 319, PLOT_ORANGE) > 300);
    free(img);
    assert_int_equal(plot_lines_png(path, panels, 0, &err), VD_EX_SOFTWARE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_rgb_round_trip),
        cmocka_unit_test(test_image_grid_layout),
        cmocka_unit_test(test_image_grid_colour),
        cmocka_unit_test(test_image_geometry_rule),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_line_clipping),
        cmocka_unit_test(test_scatter_clusters),
        cmocka_unit_test(test_run_losses),
        cmocka_unit_test(test_lines_nan_and_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
