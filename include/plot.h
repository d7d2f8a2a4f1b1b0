/* plot.h — small RGB figures written as PNG: loss curves and 2-D scatter
 * plots, drawn on a pixel canvas with a built-in 5x7 bitmap font. No
 * dependency beyond libpng (via image.h). Local; the figure writers are
 * called by rank 0 only.
 *
 * Coordinates are pixels, x to the right and y down from the top-left
 * corner. Colors are 0xRRGGBB. */
#ifndef VD_PLOT_H
#define VD_PLOT_H

#include <stdint.h>

#include "util.h"

#define PLOT_WHITE 0xFFFFFFu
#define PLOT_BLACK 0x000000u
#define PLOT_GRAY 0x999999u   /* scatter points whose label is out of range */
#define PLOT_BLUE 0x1F6FD0u   /* train curves; plot_palette[0] */
#define PLOT_ORANGE 0xF07F16u /* test curves; plot_palette[1] */

/* The qualitative palette of scatter classes (class k gets k % 10). */
extern const uint32_t plot_palette[10];

/* Inclusive pixel bounds. */
typedef struct {
    int x0, y0, x1, y1;
} PlotRect;

/* The canvas owns rgb; every drawing call is clipped to clip (the whole
 * canvas after plot_canvas_init). */
typedef struct {
    uint8_t *rgb; /* (h, w, 3) */
    int w, h;
    PlotRect clip;
} PlotCanvas;

/* Allocates a w x h canvas filled with bg; aborts if memory runs out. */
void plot_canvas_init(PlotCanvas *c, int w, int h, uint32_t bg);
void plot_canvas_free(PlotCanvas *c); /* accepts NULL */

void plot_fill(PlotCanvas *c, int x0, int y0, int x1, int y1, uint32_t rgb); /* inclusive */
/* A straight line, width 1 or 2 px; points need not be on the canvas, the
 * part outside c->clip is cut off. Non-finite coordinates draw nothing. */
void plot_line(PlotCanvas *c, double x0, double y0, double x1, double y1, int width,
               uint32_t rgb);
/* A filled square of side 2r+1, or a disc of radius r, centered on (x, y). */
void plot_marker(PlotCanvas *c, double x, double y, int r, int disc, uint32_t rgb);
/* Text in the 5x7 font, each font pixel a scale x scale block, top-left at
 * (x, y); lowercase is drawn as uppercase, unknown characters as '?'.
 * plot_text returns the width drawn, plot_text_width measures without
 * drawing (6 * scale per character, the last column is spacing). */
int plot_text(PlotCanvas *c, int x, int y, const char *s, int scale, uint32_t rgb);
int plot_text_width(const char *s, int scale);

typedef struct {
    const double *x, *y; /* n points; a NaN in x or y skips the point and breaks the line */
    int n;
    uint32_t rgb;
    int markers;         /* also a square at each point; such a series sets the y range */
    const char *label;   /* legend entry, or NULL for none */
} PlotSeries;

typedef struct {
    const char *title, *xlabel, *ylabel; /* ylabel (a unit) may be NULL */
    const PlotSeries *series;
    int n_series;
} PlotPanel;

/* Line plots, n_panels side by side (420 x 320 px each), each with a frame,
 * ticks and a legend. The x range covers every point, and so does the y
 * range, except that the first point of a series without markers does not
 * raise its top: the first logging interval of a training curve does not
 * squash the rest. Such a point above the frame is cut there, and a line
 * at the frame's top left gives its value ("FIRST TRAIN 551.2"). VD_OK or
 * an error from png_write_rgb. */
int plot_lines_png(const char *path, const PlotPanel *panels, int n_panels, VdError *err);

/* A 640 x 640 px scatter of n points (xy: (n, 2)), each a 3x3 dot colored
 * by labels[i] from plot_palette (PLOT_GRAY if outside [0, n_classes); labels
 * may be NULL), with a legend of class numbers. Each axis spans the 0.5% to
 * 99.5% quantiles of its coordinate widened by 5% on each side; points
 * outside are not drawn. VD_OK or an error from png_write_rgb. */
int plot_scatter_png(const char *path, const float *xy, const int32_t *labels, int n,
                     int n_classes, const char *title, VdError *err);

/* Redraws DIR/loss.png from DIR/metrics.csv and DIR/epochs.csv (see
 * metrics.h): panels for the negative ELBO, reconstruction and KL in nats
 * against epochs (step / steps_per_epoch), train in blue, test in orange.
 * A missing epochs.csv means no test curves; a missing metrics.csv, or no
 * rows at all, writes nothing. Cheap for thousands of rows; loss.png is
 * replaced atomically. VD_OK, VD_EX_NOINPUT (a file exists but cannot be
 * read) or an error from png_write_rgb. */
int plot_run_losses(const char *dir, double steps_per_epoch, VdError *err);

#endif
