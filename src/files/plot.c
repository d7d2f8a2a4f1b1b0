/* plot.c — pixel canvas, 5x7 font, line and scatter figures. See plot.h. */
#include "plot.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

#define GRID 0xE6E6E6u  /* grid lines; never a data color */
#define PANEL_W 420
#define PANEL_H 320
#define SCATTER_W 640
#define SCATTER_H 640

const uint32_t plot_palette[10] = {PLOT_BLUE, PLOT_ORANGE, 0x2E9E3Eu, 0xD62839u, 0x8A4FC7u,
                                   0x8C5A3Cu, 0xE867B0u, 0x17B3C2u, 0xA8A81Au, 0x26305Eu};

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* ---- canvas ------------------------------------------------------------- */

void plot_canvas_init(PlotCanvas *c, int w, int h, uint32_t bg)
{
    c->rgb = vd_calloc((size_t)w * (size_t)h, 3);
    c->w = w;
    c->h = h;
    c->clip = (PlotRect){0, 0, w - 1, h - 1};
    plot_fill(c, 0, 0, w - 1, h - 1, bg);
}

void plot_canvas_free(PlotCanvas *c)
{
    if (!c)
        return;
    vd_free(c->rgb);
    c->rgb = NULL;
}

void plot_fill(PlotCanvas *c, int x0, int y0, int x1, int y1, uint32_t rgb)
{
    x0 = imax(x0, imax(c->clip.x0, 0));
    y0 = imax(y0, imax(c->clip.y0, 0));
    x1 = imin(x1, imin(c->clip.x1, c->w - 1));
    y1 = imin(y1, imin(c->clip.y1, c->h - 1));
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            uint8_t *p = c->rgb + ((size_t)y * c->w + x) * 3;
            p[0] = (uint8_t)(rgb >> 16);
            p[1] = (uint8_t)(rgb >> 8);
            p[2] = (uint8_t)rgb;
        }
}

static uint32_t pixel(const PlotCanvas *c, int x, int y)
{
    const uint8_t *p = c->rgb + ((size_t)y * c->w + x) * 3;
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

void plot_line(PlotCanvas *c, double x0, double y0, double x1, double y1, int width, uint32_t rgb)
{
    if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1))
        return;
    /* Liang-Barsky: shrink the parameter interval [t0, t1] of the segment to
     * the part inside the clip box (pixel centers are integers, so the box
     * reaches half a pixel beyond them). Far-away ends then cost nothing. */
    double dx = x1 - x0, dy = y1 - y0, t0 = 0.0, t1 = 1.0;
    const double p[4] = {-dx, dx, -dy, dy};
    const double q[4] = {x0 - (c->clip.x0 - 0.5), c->clip.x1 + 0.5 - x0,
                         y0 - (c->clip.y0 - 0.5), c->clip.y1 + 0.5 - y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0.0) {
            if (q[i] < 0.0)
                return; /* parallel to this edge and outside it */
            continue;
        }
        double t = q[i] / p[i];
        if (p[i] < 0.0)
            t0 = fmax(t0, t);
        else
            t1 = fmin(t1, t);
    }
    if (t0 > t1)
        return;
    double ax = x0 + t0 * dx, ay = y0 + t0 * dy, bx = x0 + t1 * dx, by = y0 + t1 * dy;
    int steps = (int)ceil(fmax(fabs(bx - ax), fabs(by - ay)));
    for (int i = 0; i <= steps; i++) { /* one pixel (or 2x2 block) per step of the long axis */
        double t = steps ? (double)i / steps : 0.0;
        int x = (int)lround(ax + t * (bx - ax)), y = (int)lround(ay + t * (by - ay));
        plot_fill(c, x, y, x + width - 1, y + width - 1, rgb);
    }
}

void plot_marker(PlotCanvas *c, double x, double y, int r, int disc, uint32_t rgb)
{
    if (!(fabs(x) < 1e6 && fabs(y) < 1e6)) /* also NaN; keeps lround in int range */
        return;
    int cx = (int)lround(x), cy = (int)lround(y);
    for (int dy = -r; dy <= r; dy++) {
        int half = disc ? (int)sqrt((double)(r * r + r - dy * dy)) : r; /* +r: rounder */
        plot_fill(c, cx - half, cy + dy, cx + half, cy + dy, rgb);
    }
}

/* ---- 5x7 font ----------------------------------------------------------- */

/* One byte per row from the top; bit 4 is the leftmost pixel. */
static const uint8_t font[128][7] = {
    ['0'] = {0x0E,0x11,0x13,0x15,0x19,0x11,0x0E}, ['1'] = {0x04,0x0C,0x04,0x04,0x04,0x04,0x0E},
    ['2'] = {0x0E,0x11,0x01,0x02,0x04,0x08,0x1F}, ['3'] = {0x1F,0x02,0x04,0x02,0x01,0x11,0x0E},
    ['4'] = {0x02,0x06,0x0A,0x12,0x1F,0x02,0x02}, ['5'] = {0x1F,0x10,0x1E,0x01,0x01,0x11,0x0E},
    ['6'] = {0x06,0x08,0x10,0x1E,0x11,0x11,0x0E}, ['7'] = {0x1F,0x01,0x02,0x04,0x08,0x08,0x08},
    ['8'] = {0x0E,0x11,0x11,0x0E,0x11,0x11,0x0E}, ['9'] = {0x0E,0x11,0x11,0x0F,0x01,0x02,0x0C},
    ['A'] = {0x0E,0x11,0x11,0x1F,0x11,0x11,0x11}, ['B'] = {0x1E,0x11,0x11,0x1E,0x11,0x11,0x1E},
    ['C'] = {0x0E,0x11,0x10,0x10,0x10,0x11,0x0E}, ['D'] = {0x1C,0x12,0x11,0x11,0x11,0x12,0x1C},
    ['E'] = {0x1F,0x10,0x10,0x1E,0x10,0x10,0x1F}, ['F'] = {0x1F,0x10,0x10,0x1E,0x10,0x10,0x10},
    ['G'] = {0x0E,0x11,0x10,0x17,0x11,0x11,0x0F}, ['H'] = {0x11,0x11,0x11,0x1F,0x11,0x11,0x11},
    ['I'] = {0x0E,0x04,0x04,0x04,0x04,0x04,0x0E}, ['J'] = {0x07,0x02,0x02,0x02,0x02,0x12,0x0C},
    ['K'] = {0x11,0x12,0x14,0x18,0x14,0x12,0x11}, ['L'] = {0x10,0x10,0x10,0x10,0x10,0x10,0x1F},
    ['M'] = {0x11,0x1B,0x15,0x15,0x11,0x11,0x11}, ['N'] = {0x11,0x11,0x19,0x15,0x13,0x11,0x11},
    ['O'] = {0x0E,0x11,0x11,0x11,0x11,0x11,0x0E}, ['P'] = {0x1E,0x11,0x11,0x1E,0x10,0x10,0x10},
    ['Q'] = {0x0E,0x11,0x11,0x11,0x15,0x12,0x0D}, ['R'] = {0x1E,0x11,0x11,0x1E,0x14,0x12,0x11},
    ['S'] = {0x0F,0x10,0x10,0x0E,0x01,0x01,0x1E}, ['T'] = {0x1F,0x04,0x04,0x04,0x04,0x04,0x04},
    ['U'] = {0x11,0x11,0x11,0x11,0x11,0x11,0x0E}, ['V'] = {0x11,0x11,0x11,0x11,0x11,0x0A,0x04},
    ['W'] = {0x11,0x11,0x11,0x15,0x15,0x15,0x0A}, ['X'] = {0x11,0x11,0x0A,0x04,0x0A,0x11,0x11},
    ['Y'] = {0x11,0x11,0x0A,0x04,0x04,0x04,0x04}, ['Z'] = {0x1F,0x01,0x02,0x04,0x08,0x10,0x1F},
    ['.'] = {0x00,0x00,0x00,0x00,0x00,0x0C,0x0C}, [','] = {0x00,0x00,0x00,0x00,0x0C,0x04,0x08},
    ['-'] = {0x00,0x00,0x00,0x1F,0x00,0x00,0x00}, ['+'] = {0x00,0x04,0x04,0x1F,0x04,0x04,0x00},
    ['('] = {0x02,0x04,0x08,0x08,0x08,0x04,0x02}, [')'] = {0x08,0x04,0x02,0x02,0x02,0x04,0x08},
    ['/'] = {0x01,0x01,0x02,0x04,0x08,0x10,0x10}, [':'] = {0x00,0x0C,0x0C,0x00,0x0C,0x0C,0x00},
    ['='] = {0x00,0x00,0x1F,0x00,0x1F,0x00,0x00}, ['%'] = {0x18,0x19,0x02,0x04,0x08,0x13,0x03},
    ['?'] = {0x0E,0x11,0x01,0x02,0x04,0x00,0x04},
    [' '] = {0},
};

static const uint8_t *glyph(char ch)
{
    int k = toupper((unsigned char)ch);
    if (k == ' ')
        return font[' '];
    if (k < 128 && (font[k][0] | font[k][1] | font[k][2] | font[k][3] | font[k][4] | font[k][5] |
                    font[k][6]))
        return font[k];
    return font['?'];
}

int plot_text(PlotCanvas *c, int x, int y, const char *s, int scale, uint32_t rgb)
{
    for (const char *ch = s; *ch; ch++, x += 6 * scale) {
        const uint8_t *g = glyph(*ch);
        for (int row = 0; row < 7; row++)
            for (int col = 0; col < 5; col++)
                if (g[row] >> (4 - col) & 1)
                    plot_fill(c, x + col * scale, y + row * scale, x + (col + 1) * scale - 1,
                              y + (row + 1) * scale - 1, rgb);
    }
    return plot_text_width(s, scale);
}

int plot_text_width(const char *s, int scale)
{
    size_t n = strlen(s);
    return n ? (int)n * 6 * scale - scale : 0;
}

/* ---- axes --------------------------------------------------------------- */

/* Data interval [lo, hi] shown on pixels p0 .. p1 (p1 < p0 for y, which grows down). */
typedef struct {
    double lo, hi;
    int p0, p1;
} Axis;

static double axis_px(const Axis *a, double v)
{
    return a->p0 + (v - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

/* Makes [lo, hi] drawable: no data gives [0, 1], a single value a width
 * around it; then widens it by margin (a fraction of the width) each side. */
static void range_fix(double *lo, double *hi, double margin)
{
    if (!(*lo <= *hi)) {
        *lo = 0.0;
        *hi = 1.0;
    }
    double mag = fmax(fabs(*lo), fabs(*hi));
    if (*hi - *lo <= 1e-9 * mag || *hi - *lo < 1e-300) {
        double pad = mag > 0 ? 0.05 * mag : 1.0;
        *lo -= pad;
        *hi += pad;
    }
    double w = *hi - *lo;
    *lo -= margin * w;
    *hi += margin * w;
}

/* Tick step 1, 2 or 5 x 10^k whose ticks in [lo, hi] number closest to 4
 * (ties go to more ticks); *first is the index of the first tick
 * (tick i is at i * step) and *count the number of ticks. */
static double tick_step(double lo, double hi, double *first, int *count)
{
    static const double mant[3] = {1.0, 2.0, 5.0};
    if (!(isfinite(hi - lo) && hi > lo)) { /* values near DBL_MAX: no ticks */
        *first = 0;
        *count = 0;
        return 1.0;
    }
    double best = 1.0, mag = pow(10.0, floor(log10((hi - lo) / 4.0)) - 1.0);
    *count = -100;
    for (int e = 0; e < 3; e++, mag *= 10.0)
        for (int m = 0; m < 3; m++) {
            double step = mant[m] * mag, i0 = ceil(lo / step);
            int n = (int)(floor(hi / step) - i0) + 1;
            if (abs(n - 4) < abs(*count - 4) || (abs(n - 4) == abs(*count - 4) && n > *count)) {
                best = step;
                *first = i0;
                *count = n;
            }
        }
    return best;
}

static void tick_label(char *buf, size_t size, double v, double step)
{
    int decimals = (int)-floor(log10(step) + 1e-9);
    if (fabs(v) < 1e7 && decimals <= 6)
        snprintf(buf, size, "%.*f", imax(decimals, 0), v);
    else
        snprintf(buf, size, "%.4g", v);
}

/* Grid, ticks, tick labels and frame of the data box spanned by ax and ay;
 * leaves c->clip at the inside of the frame, for the data. */
static void draw_axes(PlotCanvas *c, const Axis *ax, const Axis *ay)
{
    PlotRect box = {ax->p0, ay->p1, ax->p1, ay->p0};
    char label[32];
    plot_fill(c, box.x0, box.y0, box.x1, box.y1, PLOT_BLACK);
    plot_fill(c, box.x0 + 1, box.y0 + 1, box.x1 - 1, box.y1 - 1, PLOT_WHITE);
    for (int k = 0; k < 2; k++) {
        const Axis *a = k ? ay : ax;
        double first;
        int n;
        double step = tick_step(a->lo, a->hi, &first, &n);
        for (int i = 0; i < n; i++) {
            double v = (first + i) * step + 0.0; /* + 0.0 turns -0 into 0: no "-0" label */
            int p = (int)lround(axis_px(a, v));
            tick_label(label, sizeof label, v, step);
            int tw = plot_text_width(label, 1);
            if (k == 0) {
                plot_fill(c, p, box.y0 + 1, p, box.y1 - 1, GRID);
                plot_fill(c, p, box.y1 + 1, p, box.y1 + 4, PLOT_BLACK);
                plot_text(c, p - tw / 2, box.y1 + 8, label, 1, PLOT_BLACK);
            } else {
                plot_fill(c, box.x0 + 1, p, box.x1 - 1, p, GRID);
                plot_fill(c, box.x0 - 4, p, box.x0 - 1, p, PLOT_BLACK);
                plot_text(c, box.x0 - 8 - tw, p - 3, label, 1, PLOT_BLACK);
            }
        }
    }
    c->clip = (PlotRect){box.x0 + 1, box.y0 + 1, box.x1 - 1, box.y1 - 1};
}

/* ---- line plots --------------------------------------------------------- */

static int finite_point(const PlotSeries *s, int i)
{
    return isfinite(s->x[i]) && isfinite(s->y[i]);
}

static int series_visible(const PlotSeries *s)
{
    for (int i = 0; i < s->n; i++)
        if (finite_point(s, i))
            return 1;
    return 0;
}

/* The legend box at the corner of the data box where it covers the fewest
 * data pixels (drawn before it), so it rarely hides a curve. */
static void draw_legend(PlotCanvas *c, const PlotPanel *p)
{
    int n = 0, tw = 0;
    for (int k = 0; k < p->n_series; k++)
        if (p->series[k].label && series_visible(&p->series[k])) {
            n++;
            tw = imax(tw, plot_text_width(p->series[k].label, 1));
        }
    if (n == 0)
        return;
    PlotRect in = c->clip;
    int w = 8 + 20 + 6 + tw + 8, h = 6 + 12 * n, best_x = 0, best_y = 0;
    long best = -1;
    for (int corner = 0; corner < 4; corner++) { /* top right, top left, bottom ... */
        int x = corner % 2 ? in.x0 + 6 : in.x1 - 6 - w, y = corner < 2 ? in.y0 + 6 : in.y1 - 6 - h;
        long ink = 0;
        for (int yy = imax(y, 0); yy < imin(y + h, c->h); yy++)
            for (int xx = imax(x, 0); xx < imin(x + w, c->w); xx++)
                ink += pixel(c, xx, yy) != PLOT_WHITE && pixel(c, xx, yy) != GRID;
        if (best < 0 || ink < best) {
            best = ink;
            best_x = x;
            best_y = y;
        }
    }
    plot_fill(c, best_x, best_y, best_x + w - 1, best_y + h - 1, 0xB0B0B0u);
    plot_fill(c, best_x + 1, best_y + 1, best_x + w - 2, best_y + h - 2, PLOT_WHITE);
    int y = best_y + 6;
    for (int k = 0; k < p->n_series; k++) {
        const PlotSeries *s = &p->series[k];
        if (!s->label || !series_visible(s))
            continue;
        plot_fill(c, best_x + 8, y + 3, best_x + 27, y + 4, s->rgb);
        if (s->markers)
            plot_marker(c, best_x + 17.5, y + 3.5, 2, 0, s->rgb);
        plot_text(c, best_x + 34, y, s->label, 1, PLOT_BLACK);
        y += 12;
    }
}

/* The index of s's first finite point, or -1. */
static int first_point(const PlotSeries *s)
{
    for (int i = 0; i < s->n; i++)
        if (finite_point(s, i))
            return i;
    return -1;
}

static void draw_panel(PlotCanvas *c, const PlotPanel *p, int ox)
{
    /* x and the bottom of y cover every point (a KL that starts near 0 is
     * seen to); the top of y leaves out the first point of a curve without
     * markers, a training curve's first interval, whose average from the
     * random start would squash the rest: it is cut at the frame and its
     * value written there */
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < p->n_series; k++) {
        const PlotSeries *s = &p->series[k];
        int first = first_point(s);
        for (int i = 0; i < s->n; i++)
            if (finite_point(s, i)) {
                xlo = fmin(xlo, s->x[i]);
                xhi = fmax(xhi, s->x[i]);
                ylo = fmin(ylo, s->y[i]);
                if (s->markers || i != first || s->n == 1)
                    yhi = fmax(yhi, s->y[i]);
            }
    }
    if (!(ylo <= yhi) && ylo < INFINITY)
        yhi = ylo; /* only cut points: the range they give */
    range_fix(&xlo, &xhi, 0.02);
    range_fix(&ylo, &yhi, 0.05);
    Axis ax = {xlo, xhi, ox + 64, ox + PANEL_W - 16}, ay = {ylo, yhi, PANEL_H - 44, 40};

    c->clip = (PlotRect){ox, 0, ox + PANEL_W - 1, PANEL_H - 1};
    const char *title = p->title ? p->title : "";
    plot_text(c, (ax.p0 + ax.p1 - plot_text_width(title, 2)) / 2, 10, title, 2, PLOT_BLACK);
    if (p->xlabel)
        plot_text(c, (ax.p0 + ax.p1 - plot_text_width(p->xlabel, 1)) / 2, ay.p0 + 24, p->xlabel, 1,
                  PLOT_BLACK);
    if (p->ylabel)
        plot_text(c, ox + 8, ay.p1 - 14, p->ylabel, 1, PLOT_BLACK);
    draw_axes(c, &ax, &ay);
    int cut_labels = 0;
    for (int k = 0; k < p->n_series; k++) { /* a first point above the frame: how high */
        const PlotSeries *s = &p->series[k];
        int first = first_point(s);
        if (s->markers || first < 0 || s->y[first] <= ay.hi)
            continue;
        char label[48];
        snprintf(label, sizeof label, "FIRST %s %.4g", s->label ? s->label : "POINT", s->y[first]);
        plot_text(c, ax.p0 + 6, ay.p1 + 6 + 10 * cut_labels++, label, 1, s->rgb);
    }
    for (int k = 0; k < p->n_series; k++) {
        const PlotSeries *s = &p->series[k];
        int marks = s->markers && s->n <= (ax.p1 - ax.p0) / 8; /* else they merge into a bar */
        for (int i = 0; i < s->n; i++) {
            if (!finite_point(s, i))
                continue;
            double px = axis_px(&ax, s->x[i]), py = axis_px(&ay, s->y[i]);
            int prev = i > 0 && finite_point(s, i - 1);
            int next = i + 1 < s->n && finite_point(s, i + 1);
            if (prev)
                plot_line(c, axis_px(&ax, s->x[i - 1]), axis_px(&ay, s->y[i - 1]), px, py, 2,
                          s->rgb);
            if (marks || (!prev && !next)) /* a lone point has no line to show it */
                plot_marker(c, px + 0.5, py + 0.5, 2, 0, s->rgb);
        }
    }
    draw_legend(c, p);
}

int plot_lines_png(const char *path, const PlotPanel *panels, int n_panels, VdError *err)
{
    if (n_panels < 1)
        return vd_fail(err, VD_EX_SOFTWARE, "plot %s: no panels", path);
    PlotCanvas c;
    plot_canvas_init(&c, PANEL_W * n_panels, PANEL_H, PLOT_WHITE);
    for (int k = 0; k < n_panels; k++)
        draw_panel(&c, &panels[k], k * PANEL_W);
    int rc = png_write_rgb(path, c.rgb, c.w, c.h, err);
    plot_canvas_free(&c);
    return rc;
}

/* ---- scatter ------------------------------------------------------------ */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted v[0..n-1], interpolated; NaN if n == 0. */
static double quantile(const float *v, int n, double q)
{
    if (n == 0)
        return NAN;
    double pos = q * (n - 1);
    int i = (int)pos;
    return i + 1 < n ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[n - 1];
}

int plot_scatter_png(const char *path, const float *xy, const int32_t *labels, int n,
                     int n_classes, const char *title, VdError *err)
{
    double lo[2], hi[2];
    float *v = vd_calloc((size_t)imax(n, 1), sizeof(float));
    for (int d = 0; d < 2; d++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (isfinite(xy[2 * i + d]))
                v[m++] = xy[2 * i + d];
        qsort(v, (size_t)m, sizeof(float), cmp_float);
        lo[d] = quantile(v, m, 0.005);
        hi[d] = quantile(v, m, 0.995);
        range_fix(&lo[d], &hi[d], 0.05);
    }
    vd_free(v);
    /* the legend goes right of the box, never over the points */
    Axis a[2] = {{lo[0], hi[0], 64, SCATTER_W - 96}, {lo[1], hi[1], SCATTER_H - 44, 44}};

    PlotCanvas c;
    plot_canvas_init(&c, SCATTER_W, SCATTER_H, PLOT_WHITE);
    title = title ? title : "";
    plot_text(&c, (a[0].p0 + a[0].p1 - plot_text_width(title, 2)) / 2, 14, title, 2, PLOT_BLACK);
    draw_axes(&c, &a[0], &a[1]);
    int other = 0;
    for (int i = 0; i < n; i++) {
        double x = xy[2 * i], y = xy[2 * i + 1];
        int32_t k = labels ? labels[i] : 0;
        uint32_t rgb = !labels || (k >= 0 && k < n_classes) ? plot_palette[k % 10] : PLOT_GRAY;
        other |= rgb == PLOT_GRAY;
        if (x >= a[0].lo && x <= a[0].hi && y >= a[1].lo && y <= a[1].hi) /* false for NaN */
            plot_marker(&c, axis_px(&a[0], x), axis_px(&a[1], y), 1, 0, rgb);
    }
    c.clip = (PlotRect){0, 0, c.w - 1, c.h - 1};
    int listed = labels ? n_classes : 0, rows = (a[1].p0 - a[1].p1) / 14 - 2; /* "...", OTHER */
    int shown = imin(listed, rows), y = a[1].p1;
    char name[16];
    for (int k = 0; k < shown; k++, y += 14) {
        plot_fill(&c, a[0].p1 + 16, y, a[0].p1 + 23, y + 7, plot_palette[k % 10]);
        snprintf(name, sizeof name, "%d", k);
        plot_text(&c, a[0].p1 + 30, y, name, 1, PLOT_BLACK);
    }
    if (shown < listed) {
        plot_text(&c, a[0].p1 + 30, y, "...", 1, PLOT_BLACK);
        y += 14;
    }
    if (other) {
        plot_fill(&c, a[0].p1 + 16, y, a[0].p1 + 23, y + 7, PLOT_GRAY);
        plot_text(&c, a[0].p1 + 30, y, "OTHER", 1, PLOT_BLACK);
    }
    int rc = png_write_rgb(path, c.rgb, c.w, c.h, err);
    plot_canvas_free(&c);
    return rc;
}

/* ---- the run's loss figure ---------------------------------------------- */

/* Reads the columns named names[0 .. n-1] (n <= 8) of the CSV file at path:
 * col[j][r] for the *rows data rows, all in one vd_calloc'd block that
 * col[0] owns. A column missing from the header, or a field that is empty
 * or not a number, reads as NaN ("nan" parses as NaN). 0, or -1 with errno
 * set if the file cannot be opened or read. */
static int csv_read(const char *path, const char *const *names, int n, double **col, int *rows)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int lines = 1, ch; /* count first: one allocation, no regrowing */
    while ((ch = getc(f)) != EOF)
        lines += ch == '\n';
    rewind(f);
    double *block = vd_calloc((size_t)n * (size_t)lines, sizeof(double));
    int field_of[8]; /* the header field holding names[j], or -1 */
    for (int j = 0; j < n; j++) {
        col[j] = block + (size_t)j * (size_t)lines;
        field_of[j] = -1;
    }
    char *line = NULL;
    size_t cap = 0;
    *rows = -1; /* -1 while the header is read */
    while (getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\r\n")] = '\0';
        if (*rows >= 0 && !*line)
            continue;
        if (*rows >= lines - 1) /* the file grew since it was counted */
            break;
        char *rest = line, *field;
        for (int j = 0; *rows >= 0 && j < n; j++)
            col[j][*rows] = NAN;
        for (int k = 0; (field = strsep(&rest, ",")); k++)
            for (int j = 0; j < n; j++) {
                if (*rows < 0 && field_of[j] < 0 && strcmp(field, names[j]) == 0)
                    field_of[j] = k;
                if (*rows >= 0 && field_of[j] == k) {
                    char *end;
                    double x = strtod(field, &end);
                    col[j][*rows] = end == field ? NAN : x;
                }
            }
        ++*rows;
    }
    free(line);
    int bad = ferror(f);
    fclose(f);
    *rows = imax(*rows, 0);
    if (bad) {
        vd_free(block);
        errno = EIO;
        return -1;
    }
    return 0;
}

int plot_run_losses(const char *dir, double steps_per_epoch, VdError *err)
{
    static const char *const train_cols[] = {"step", "loss", "recon", "kl"};
    static const char *const test_cols[] = {"step", "test_loss", "test_recon", "test_kl"};
    static const char *const titles[] = {"NEGATIVE ELBO", "RECONSTRUCTION", "KL"};
    char path[VD_PATH_MAX];
    double *train[4] = {0}, *test[4] = {0};
    int n_train = 0, n_test = 0;
    if (vd_path_join(path, dir, "metrics.csv") != 0 || csv_read(path, train_cols, 4, train, &n_train) != 0) /* no run yet: nothing to draw */
        return errno == ENOENT ? VD_OK : vd_fail(err, VD_EX_NOINPUT, "cannot read %s: %s", path,
                                                 strerror(errno));
    vd_path_join(path, dir, "epochs.csv"); /* no longer than metrics.csv */
    if (csv_read(path, test_cols, 4, test, &n_test) != 0 && errno != ENOENT) {
        vd_free(train[0]);
        return vd_fail(err, VD_EX_NOINPUT, "cannot read %s: %s", path, strerror(errno));
    }
    int rc = VD_OK;
    if (n_train + n_test > 0) {
        double per = steps_per_epoch > 0 ? steps_per_epoch : 1.0; /* else x is the step */
        for (int i = 0; i < n_train; i++)
            train[0][i] /= per;
        for (int i = 0; i < n_test; i++)
            test[0][i] /= per;
        PlotSeries s[3][2];
        PlotPanel p[3];
        for (int k = 0; k < 3; k++) {
            s[k][0] = (PlotSeries){train[0], train[k + 1], n_train, PLOT_BLUE, 0, "TRAIN"};
            s[k][1] = (PlotSeries){test[0], test[k + 1], n_test, PLOT_ORANGE, 1, "TEST"};
            const char *xlabel = per == steps_per_epoch ? "EPOCH" : "STEP";
            p[k] = (PlotPanel){titles[k], xlabel, "NATS", s[k], 2};
        }
        vd_path_join(path, dir, "loss.png");
        rc = plot_lines_png(path, p, 3, err);
    }
    vd_free(train[0]);
    vd_free(test[0]);
    return rc;
}
