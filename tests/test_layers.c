/* test_layers.c — every layer kind (layer.h) on its own: the BLAS forward
 * against the kind's double reference, backward against finite differences
 * of that reference, small convolutions (4x4 stride 2 and its transpose; any
 * kernel and stride; gated), an upsampling worked out by hand, the gated
 * layer and the clamped heads, and the shape rules. */
#include "testutil.h"

#include <math.h>

#include "layer.h"
#include "rng.h"

static void fill_uniform(float *x, size_t n, uint32_t a, float lo, float hi)
{
    Rng r = rng_for(778, VD_RNG_INIT, 6);
    rng_uniform_fill(&r, a, 0, n, lo, hi, x);
}

/* A layer with its buffers, as model.c would give them: its tensors laid
 * out contiguously in one parameter buffer and one gradient buffer. */
typedef struct {
    Layer l;
    int nt;
    size_t sizes[VD_LAYER_TENSORS], np, nin, nout;
    float *p, *g, *in, *out, *din, *dout, *scratch, *saved;
    LayerParams pv, gv;
} Bench;

static void bench_init(Bench *t, Layer l, int B)
{
    memset(t, 0, sizeof *t);
    t->l = l;
    t->nt = layer_tensor_sizes(&l, t->sizes);
    for (int k = 0; k < t->nt; k++)
        t->np += t->sizes[k];
    t->p = calloc(t->np, sizeof(float));
    t->g = calloc(t->np, sizeof(float));
    for (size_t k = 0, at = 0; k < (size_t)t->nt; at += t->sizes[k++]) {
        t->pv.t[k] = t->p + at;
        t->gv.t[k] = t->g + at;
    }
    t->nin = (size_t)B * layer_in_size(&l);
    t->nout = (size_t)B * layer_out_size(&l);
    t->in = calloc(t->nin, sizeof(float));
    t->din = calloc(t->nin, sizeof(float));
    t->out = calloc(t->nout, sizeof(float));
    t->dout = calloc(t->nout, sizeof(float));
    t->scratch = calloc(l.kind->scratch_floats(&l, B) + 1, sizeof(float));
    t->saved = calloc(l.kind->saved_floats(&l, B) + 1, sizeof(float));
}

static void bench_free(Bench *t)
{
    free(t->p); free(t->g); free(t->in); free(t->din);
    free(t->out); free(t->dout); free(t->scratch); free(t->saved);
}

static void forward(Bench *t, int B)
{
    t->l.kind->forward(&t->l, &t->pv, t->out, t->in, B, t->scratch, t->saved);
}

/* The tensors as doubles, and their views. */
static double *as_double(const Bench *t, const double **views)
{
    double *d = malloc(sizeof(double) * t->np);
    for (size_t i = 0; i < t->np; i++)
        d[i] = t->p[i];
    for (size_t k = 0, at = 0; k < (size_t)t->nt; at += t->sizes[k++])
        views[k] = d + at;
    return d;
}

/* The float forward against the double reference, sample by sample. */
static void check_forward(Layer l, int B, double tol)
{
    Bench t;
    bench_init(&t, l, B);
    fill_uniform(t.p, t.np, 1, -0.5f, 0.5f);
    fill_uniform(t.in, t.nin, 3, -1, 1);
    forward(&t, B);
    size_t ni = layer_in_size(&l), no = layer_out_size(&l);
    const double *views[VD_LAYER_TENSORS];
    double *pd = as_double(&t, views);
    double *xd = malloc(sizeof(double) * ni), *yd = malloc(sizeof(double) * no);
    double worst = 0;
    for (int s = 0; s < B; s++) {
        for (size_t i = 0; i < ni; i++) xd[i] = t.in[s * ni + i];
        l.kind->forward_ref(&l, views, yd, xd);
        for (size_t i = 0; i < no; i++)
            worst = fmax(worst, fabs(yd[i] - t.out[s * no + i]));
    }
    if (worst >= tol)
        print_error("%s: worst forward error %g\n", l.kind->name, worst);
    assert_true(worst < tol);
    free(pd); free(xd); free(yd);
    bench_free(&t);
}

/* L = sum(r * layer(in)) over B samples, in double through the reference. */
static double ref_loss(const Layer *l, const double *const *p, const double *x, const float *r,
                       int B)
{
    size_t ni = layer_in_size(l), no = layer_out_size(l);
    double *y = malloc(sizeof(double) * no), sum = 0;
    for (int s = 0; s < B; s++) {
        l->kind->forward_ref(l, p, y, x + s * ni);
        for (size_t i = 0; i < no; i++)
            sum += r[s * no + i] * y[i];
    }
    free(y);
    return sum;
}

/* backward's tensor and input gradients against central differences of
 * ref_loss. The tensors' gradients are ADDED to what the buffer held (it
 * starts at arbitrary values); the input's is written over garbage, or
 * added with din_add. lo, hi: the inputs' range (away from kinks). */
static void check_backward_in(Layer l, int B, float lo, float hi)
{
    Bench t;
    bench_init(&t, l, B);
    fill_uniform(t.p, t.np, 4, -0.5f, 0.5f);
    fill_uniform(t.in, t.nin, 6, lo, hi);
    fill_uniform(t.dout, t.nout, 7, -1, 1);
    float *g0 = malloc(sizeof(float) * t.np), *grad = malloc(sizeof(float) * t.np);
    fill_uniform(g0, t.np, 8, -3, 3);
    memcpy(t.g, g0, sizeof(float) * t.np);
    for (size_t i = 0; i < t.nin; i++) t.din[i] = NAN;
    forward(&t, B);
    l.kind->backward(&l, &t.pv, &t.gv, t.din, 0, t.dout, t.in, B, t.scratch, t.saved);
    for (size_t i = 0; i < t.np; i++)
        grad[i] = t.g[i] - g0[i];
    const double *views[VD_LAYER_TENSORS];
    double *pd = as_double(&t, views);
    double *xd = malloc(sizeof(double) * t.nin);
    for (size_t i = 0; i < t.nin; i++) xd[i] = t.in[i];
    const double h = 1e-6;
    struct { double *v; size_t n; const float *grad; const char *what; } parts[2] = {
        {pd, t.np, grad, "tensors"}, {xd, t.nin, t.din, "input"}};
    for (int k = 0; k < 2; k++) {
        double worst = 0;
        for (size_t i = 0; i < parts[k].n; i++) {
            double keep = parts[k].v[i];
            parts[k].v[i] = keep + h;
            double lp = ref_loss(&l, views, xd, t.dout, B);
            parts[k].v[i] = keep - h;
            double lm = ref_loss(&l, views, xd, t.dout, B);
            parts[k].v[i] = keep;
            worst = fmax(worst, rel_err((lp - lm) / (2 * h), parts[k].grad[i], 1e-2));
        }
        if (worst >= 1e-4)
            print_error("%s %s: worst relative error %g\n", l.kind->name, parts[k].what, worst);
        assert_true(worst < 1e-4);
    }
    /* din_add adds the input gradient to what din held */
    float *din1 = malloc(sizeof(float) * t.nin);
    memcpy(din1, t.din, sizeof(float) * t.nin);
    for (size_t i = 0; i < t.nin; i++) t.din[i] = 1.0f;
    l.kind->backward(&l, &t.pv, &t.gv, t.din, 1, t.dout, t.in, B, t.scratch, t.saved);
    for (size_t i = 0; i < t.nin; i++)
        assert_true(fabsf(t.din[i] - (1.0f + din1[i])) <= 1e-5f * (1.0f + fabsf(din1[i])));
    /* no input gradient asked for: the tensors' are the same (added once more) */
    memcpy(t.g, g0, sizeof(float) * t.np);
    l.kind->backward(&l, &t.pv, &t.gv, NULL, 0, t.dout, t.in, B, t.scratch, t.saved);
    for (size_t i = 0; i < t.np; i++)
        assert_true(t.g[i] - g0[i] == grad[i]);
    free(pd); free(xd); free(g0); free(grad); free(din1);
    bench_free(&t);
}

static void check_backward(Layer l, int B) { check_backward_in(l, B, -1, 1); }

/* backward along one random direction of (tensors, input) against the
 * central difference of ref_loss: for layers too large to difference entry
 * by entry, whose products run over several blocks of windows. */
static void check_backward_direction(Layer l, int B)
{
    Bench t;
    bench_init(&t, l, B);
    fill_uniform(t.p, t.np, 4, -0.5f, 0.5f);
    fill_uniform(t.in, t.nin, 6, -1, 1);
    fill_uniform(t.dout, t.nout, 7, -1, 1);
    forward(&t, B);
    l.kind->backward(&l, &t.pv, &t.gv, t.din, 0, t.dout, t.in, B, t.scratch, t.saved);
    const double *views[VD_LAYER_TENSORS];
    double *pd = as_double(&t, views), *xd = malloc(sizeof(double) * t.nin);
    float *vp = malloc(sizeof(float) * (t.np + 1)), *vx = malloc(sizeof(float) * t.nin);
    fill_uniform(vp, t.np, 10, -1, 1);
    fill_uniform(vx, t.nin, 11, -1, 1);
    double analytic = 0, h = 1e-6, loss[2];
    for (size_t i = 0; i < t.np; i++)
        analytic += (double)vp[i] * t.g[i];
    for (size_t i = 0; i < t.nin; i++)
        analytic += (double)vx[i] * t.din[i];
    for (int side = 0; side < 2; side++) {
        double step = side ? -h : h;
        for (size_t i = 0; i < t.np; i++)
            pd[i] = (double)t.p[i] + step * vp[i];
        for (size_t i = 0; i < t.nin; i++)
            xd[i] = (double)t.in[i] + step * vx[i];
        loss[side] = ref_loss(&l, views, xd, t.dout, B);
    }
    double numeric = (loss[0] - loss[1]) / (2 * h);
    if (rel_err(numeric, analytic, 1e-2) >= 1e-5)
        print_error("%s: directional derivative %.9g, backward %.9g\n", l.kind->name, numeric,
                    analytic);
    assert_true(rel_err(numeric, analytic, 1e-2) < 1e-5);
    free(pd); free(xd); free(vp); free(vx);
    bench_free(&t);
}

static void test_dense_against_reference(void **state)
{
    (void)state;
    check_forward(layer_dense_make(13, 7, VD_ACT_NONE), 5, 1e-5);
    check_forward(layer_heads_make(9, 3, 0), 4, 1e-5);
    check_backward(layer_dense_make(6, 5, VD_ACT_NONE), 4);
    check_backward(layer_heads_make(5, 2, 0), 3);
}

/* The gated layer h * sigmoid(g), and heads whose log-variances are
 * clamped to [-6, 2]: inputs large enough that some are clamped (zero
 * gradient), the rest not. */
static void test_gated_and_clamped_heads(void **state)
{
    (void)state;
    check_forward(layer_gated_make(9, 4), 5, 1e-5);
    check_backward(layer_gated_make(7, 3), 4);
    check_backward(layer_gated_make(1, 5), 3);
    Layer heads = layer_heads_make(6, 4, 1);
    check_forward(heads, 6, 1e-5);
    check_backward_in(heads, 6, -9.0f, 9.0f);
    Bench t;
    bench_init(&t, heads, 6);
    fill_uniform(t.p, t.np, 4, -0.5f, 0.5f);
    fill_uniform(t.in, t.nin, 6, -9.0f, 9.0f);
    forward(&t, 6);
    int low = 0, high = 0, inside = 0;
    for (int s = 0; s < 6; s++)
        for (int j = 4; j < 8; j++) {
            float v = t.out[s * 8 + j];
            assert_true(v >= VD_LOGVAR_MIN && v <= VD_LOGVAR_MAX);
            low += v == VD_LOGVAR_MIN;
            high += v == VD_LOGVAR_MAX;
            inside += v > VD_LOGVAR_MIN && v < VD_LOGVAR_MAX;
        }
    print_message("clamped low %d, high %d, inside %d\n", low, high, inside);
    assert_true(low > 0 && high > 0 && inside > 0); /* the check saw every case */
    /* the gated layer at a zero gate input is half its linear part */
    Bench g;
    bench_init(&g, layer_gated_make(2, 1), 1);
    g.pv.t[0][0] = 1.0f; g.pv.t[0][1] = 2.0f; /* h.weight */
    g.pv.t[2][0] = 0.5f;                      /* h.bias; gate.weight and bias 0 */
    g.in[0] = 3.0f; g.in[1] = -1.0f;
    forward(&g, 1);
    assert_true(fabsf(g.out[0] - 0.5f * (3.0f - 2.0f + 0.5f)) < 1e-6f);
    bench_free(&g);
    bench_free(&t);
}

static void test_conv_against_reference(void **state)
{
    (void)state;
    Layer l;
    assert_null(layer_conv_make(&l, 3, 8, 6, 5, VD_ACT_RELU)); /* not square, odd channels */
    check_forward(l, 3, 1e-5);
    check_backward(l, 2);
    assert_null(layer_conv_make(&l, 1, 4, 4, 2, VD_ACT_RELU)); /* one input channel, as conv1 */
    check_forward(l, 2, 1e-5);
    check_backward(l, 2);
}

static void test_tconv_against_reference(void **state)
{
    (void)state;
    Layer l;
    assert_null(layer_tconv_make(&l, 4, 3, 2, 3, VD_ACT_NONE));
    check_forward(l, 3, 1e-5);
    check_backward(l, 2);
    assert_null(layer_tconv_make(&l, 3, 2, 2, 1, VD_ACT_NONE)); /* one output channel */
    check_forward(l, 2, 1e-5);
    check_backward(l, 2);
}

/* A 4x4 one-channel image 1..16 (row-major) through a 4x4 stride-2 window:
 * with all-ones weights each output is the sum of its window within the
 * image (padding reads zero); with one tap at (ky, kx) it is the input at
 * (2 oy + ky - 1, 2 ox + kx - 1). */
static void test_conv_by_hand(void **state)
{
    (void)state;
    Layer l;
    assert_null(layer_conv_make(&l, 1, 4, 4, 1, VD_ACT_NONE));
    Bench t;
    bench_init(&t, l, 1);
    for (int i = 0; i < 16; i++) {
        t.in[i] = (float)(i + 1);
        t.pv.t[0][i] = 1.0f;
    }
    forward(&t, 1);
    float want[4] = {54, 63, 90, 99};
    assert_memory_equal(t.out, want, sizeof want);
    memset(t.pv.t[0], 0, sizeof(float) * 16);
    t.pv.t[0][0 * 4 + 0] = 1.0f; /* tap (0, 0): input (2 oy - 1, 2 ox - 1) */
    t.pv.t[1][0] = 0.25f;
    forward(&t, 1);
    float tap00[4] = {0.25f, 0.25f, 0.25f, 6.25f};
    assert_memory_equal(t.out, tap00, sizeof tap00);
    t.pv.t[0][0] = 0.0f;
    t.pv.t[0][1 * 4 + 2] = 1.0f; /* tap (1, 2): input (2 oy, 2 ox + 1) */
    forward(&t, 1);
    float tap12[4] = {2.25f, 4.25f, 10.25f, 12.25f};
    assert_memory_equal(t.out, tap12, sizeof tap12);
    bench_free(&t);
}

/* A 2x2 image [[1, 2], [3, 4]] through the transposed window: output (oy,
 * ox) gathers the inputs whose window covers it, o = 2 i + k - 1. */
static void test_tconv_by_hand(void **state)
{
    (void)state;
    Layer l;
    assert_null(layer_tconv_make(&l, 1, 2, 2, 1, VD_ACT_NONE));
    Bench t;
    bench_init(&t, l, 1);
    float in[4] = {1, 2, 3, 4};
    memcpy(t.in, in, sizeof in);
    for (int i = 0; i < 16; i++)
        t.pv.t[0][i] = 1.0f;
    forward(&t, 1);
    float ones[16] = {1, 3, 3, 2, 4, 10, 10, 6, 4, 10, 10, 6, 3, 7, 7, 4};
    assert_memory_equal(t.out, ones, sizeof ones);
    memset(t.pv.t[0], 0, sizeof(float) * 16);
    t.pv.t[0][1 * 4 + 2] = 1.0f; /* tap (1, 2): input (iy, ix) lands on (2 iy, 2 ix + 1) */
    t.pv.t[1][0] = 0.5f;
    forward(&t, 1);
    float tap[16];
    for (int i = 0; i < 16; i++)
        tap[i] = 0.5f;
    tap[0 * 4 + 1] += 1;
    tap[0 * 4 + 3] += 2;
    tap[2 * 4 + 1] += 3;
    tap[2 * 4 + 3] += 4;
    assert_memory_equal(t.out, tap, sizeof tap);
    bench_free(&t);
}

/* The shape rules: a convolution halves an even image, its transpose
 * doubles any; odd sizes are refused with a reason. */
static void test_shape_rules(void **state)
{
    (void)state;
    Layer l;
    assert_null(layer_conv_make(&l, 1, 28, 28, 32, VD_ACT_RELU));
    assert_true(l.out_h == 14 && l.out_w == 14 && l.out_c == 32 && layer_out_size(&l) == 6272);
    assert_non_null(layer_conv_make(&l, 64, 7, 7, 128, VD_ACT_RELU)); /* 7 does not halve */
    assert_null(layer_tconv_make(&l, 64, 7, 7, 32, VD_ACT_RELU));
    assert_true(l.out_h == 14 && l.out_w == 14 && l.out_c == 32);
    TensorSpec spec[4];
    assert_int_equal(layer_conv.tensors(&(Layer){&layer_conv, 3, 8, 8, 5, 4, 4, 0, 0, 0, 0, 0, 0, 0}, spec), 2);
    assert_true(spec[0].n_dims == 4 && spec[0].dims[0] == 5 && spec[0].dims[3] == 3);
    assert_int_equal(spec[0].fan_in, 48);
    assert_int_equal(layer_tconv.tensors(&(Layer){&layer_tconv, 5, 4, 4, 3, 8, 8, 0, 0, 0, 0, 0, 0, 0}, spec), 2);
    assert_true(spec[0].dims[0] == 5 && spec[0].dims[3] == 3 && spec[0].fan_in == 48);
    assert_true(layer_conv.macs(&(Layer){&layer_conv, 1, 28, 28, 32, 14, 14, 0, 0, 0, 0, 0, 0, 0}) ==
                14.0 * 14 * 32 * 16);
}


/* Convolutions of every kernel, stride and padding the models use, on
 * images that are not square and channels that are not round: forward
 * against the double reference, backward against finite differences. */
static void test_conv2d_against_reference(void **state)
{
    (void)state;
    struct { int k, s, pad, h, w, ci, co; } c[] = {
        {1, 1, 0, 3, 5, 3, 2},            /* pointwise: no windows */
        {3, 1, VD_PAD_SAME, 4, 5, 2, 3},  /* "same" */
        {5, 2, VD_PAD_SAME, 6, 8, 2, 2},  /* stride 2, "same": 3x4 */
        {7, 1, VD_PAD_SAME, 7, 8, 1, 2},
        {3, 2, 0, 6, 6, 2, 1},            /* no padding: (6 - 3) / 2 + 1 = 2 */
        {3, 1, 2, 3, 3, 1, 2},            /* padding k - 1: 5x5 */
        {1, 2, 0, 4, 6, 2, 3}};           /* 1x1 of stride 2: windows after all */
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        Layer l;
        assert_null(layer_conv2d_make(&l, c[i].ci, c[i].h, c[i].w, c[i].co, c[i].k, c[i].s,
                                      c[i].pad, VD_ACT_NONE));
        check_forward(l, 3, 1e-5);
        check_backward(l, 2);
    }
}

/* The gated convolution: forward against the reference, backward against
 * finite differences, and, on layers whose products run over several
 * blocks of windows (a block holds 2^17 floats of windows), along a random
 * direction. */
static void test_gconv_against_reference(void **state)
{
    (void)state;
    Layer l;
    assert_null(layer_gconv_make(&l, 2, 5, 6, 3, 3, 1, VD_PAD_SAME));
    check_forward(l, 3, 1e-5);
    check_backward(l, 2);
    assert_null(layer_gconv_make(&l, 3, 6, 6, 2, 5, 2, VD_PAD_SAME));
    check_backward(l, 2);
    assert_null(layer_gconv_make(&l, 2, 3, 4, 1, 1, 1, 0)); /* pointwise */
    check_forward(l, 2, 1e-5);
    check_backward(l, 2);
    assert_null(layer_gconv_make(&l, 64, 12, 12, 2, 3, 1, VD_PAD_SAME)); /* 227-pixel blocks */
    ConvGeom g = conv_geom(&l);
    assert_true(2 * 12 * 12 > conv_block_pixels(&g));
    check_forward(l, 2, 1e-4);
    check_backward_direction(l, 2);
    Layer c;
    assert_null(layer_conv2d_make(&c, 60, 8, 8, 3, 7, 2, VD_PAD_SAME, VD_ACT_NONE));
    g = conv_geom(&c);
    assert_true(3 * 4 * 4 > conv_block_pixels(&g)); /* 44-pixel blocks */
    check_forward(c, 3, 1e-4);
    check_backward_direction(c, 3);
    assert_null(layer_conv2d_make(&c, 40, 9, 9, 2, 1, 1, 0, VD_ACT_NONE)); /* pointwise */
    check_backward_direction(c, 2);
}

/* A 3x3 image 1..9 through 3x3 windows: with all-ones weights each output
 * is the sum of its neighbourhood inside the image; one tap at (ky, kx)
 * reads input (oy + ky - 1, ox + kx - 1). Stride 2 on 4x4 sums the windows
 * centred on (0, 0), (0, 2), (2, 0), (2, 2). A pointwise layer mixes
 * channels. */
static void test_conv2d_by_hand(void **state)
{
    (void)state;
    Layer l;
    assert_null(layer_conv2d_make(&l, 1, 3, 3, 1, 3, 1, VD_PAD_SAME, VD_ACT_NONE));
    Bench t;
    bench_init(&t, l, 1);
    for (int i = 0; i < 9; i++) {
        t.in[i] = (float)(i + 1);
        t.pv.t[0][i] = 1.0f;
    }
    forward(&t, 1);
    float sums[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    assert_memory_equal(t.out, sums, sizeof sums);
    memset(t.pv.t[0], 0, sizeof(float) * 9);
    t.pv.t[0][0 * 3 + 2] = 1.0f; /* tap (0, 2): input (oy - 1, ox + 1) */
    t.pv.t[1][0] = 0.5f;
    forward(&t, 1);
    float tap[9] = {0.5f, 0.5f, 0.5f, 2.5f, 3.5f, 0.5f, 5.5f, 6.5f, 0.5f};
    assert_memory_equal(t.out, tap, sizeof tap);
    bench_free(&t);

    assert_null(layer_conv2d_make(&l, 1, 4, 4, 1, 3, 2, VD_PAD_SAME, VD_ACT_NONE));
    bench_init(&t, l, 1);
    for (int i = 0; i < 16; i++)
        t.in[i] = (float)(i + 1);
    for (int i = 0; i < 9; i++)
        t.pv.t[0][i] = 1.0f;
    forward(&t, 1);
    float s2[4] = {14, 30, 57, 99};
    assert_memory_equal(t.out, s2, sizeof s2);
    bench_free(&t);

    assert_null(layer_conv2d_make(&l, 2, 1, 2, 1, 1, 1, 0, VD_ACT_NONE));
    bench_init(&t, l, 1);
    float px[4] = {1, 2, 3, 4}; /* two pixels of two channels */
    memcpy(t.in, px, sizeof px);
    t.pv.t[0][0] = 10.0f;
    t.pv.t[0][1] = 1.0f;
    t.pv.t[1][0] = 0.25f;
    forward(&t, 1);
    float mixed[2] = {12.25f, 34.25f};
    assert_memory_equal(t.out, mixed, sizeof mixed);
    bench_free(&t);
}

/* The gated convolution with a zero gate is half its convolution; and a
 * nearest upsampling of [[1, 2], [3, 4]] repeats each pixel in a 2x2 block,
 * its backward summing each block's gradient. */
static void test_gconv_and_upsample_by_hand(void **state)
{
    (void)state;
    Layer l;
    assert_null(layer_gconv_make(&l, 1, 3, 3, 1, 3, 1, VD_PAD_SAME));
    Bench t;
    bench_init(&t, l, 1);
    for (int i = 0; i < 9; i++) {
        t.in[i] = (float)(i + 1);
        t.pv.t[0][i] = 1.0f; /* h.weight; gate.weight and both biases 0 */
    }
    forward(&t, 1);
    float half[9] = {6, 10.5f, 8, 13.5f, 22.5f, 16.5f, 12, 19.5f, 14};
    assert_memory_equal(t.out, half, sizeof half);
    t.pv.t[3][0] = 40.0f; /* gate.bias: the gate wide open */
    forward(&t, 1);
    float open[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    for (int i = 0; i < 9; i++)
        assert_true(fabsf(t.out[i] - open[i]) <= 1e-5f * open[i]);
    bench_free(&t);

    assert_null(layer_upsample_make(&l, 1, 2, 2, 2));
    bench_init(&t, l, 1);
    float in[4] = {1, 2, 3, 4};
    memcpy(t.in, in, sizeof in);
    forward(&t, 1);
    float up[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    assert_memory_equal(t.out, up, sizeof up);
    for (int i = 0; i < 16; i++)
        t.dout[i] = (float)i;
    l.kind->backward(&l, &t.pv, &t.gv, t.din, 0, t.dout, t.in, 1, t.scratch, t.saved);
    float blocks[4] = {0 + 1 + 4 + 5, 2 + 3 + 6 + 7, 8 + 9 + 12 + 13, 10 + 11 + 14 + 15};
    assert_memory_equal(t.din, blocks, sizeof blocks);
    bench_free(&t);
    /* two channels, factor 3, against the reference and finite differences */
    assert_null(layer_upsample_make(&l, 2, 2, 3, 3));
    check_forward(l, 2, 1e-7);
    check_backward(l, 2);
}

/* The new kinds' shape rules, and their refusals in one line each: an even
 * kernel, a kernel larger than the image, a stride that does not divide
 * the size, a padding past the window, a reshape of the wrong size. */
static void test_conv2d_shape_rules(void **state)
{
    (void)state;
    Layer l;
    assert_null(layer_gconv_make(&l, 1, 28, 28, 32, 7, 1, VD_PAD_SAME));
    assert_true(l.out_h == 28 && l.out_w == 28 && l.out_c == 32 && l.pad == 3);
    assert_true(l.kind->macs(&l) == 2.0 * 28 * 28 * 32 * 49);
    TensorSpec spec[4];
    assert_int_equal(l.kind->tensors(&l, spec), 4);
    assert_true(spec[1].n_dims == 4 && spec[1].dims[0] == 32 && spec[1].dims[1] == 7 &&
                spec[1].dims[3] == 1 && spec[1].fan_in == 49);
    assert_string_equal(spec[1].suffix, "gate.weight");
    assert_null(layer_gconv_make(&l, 32, 28, 28, 32, 3, 2, 1));
    assert_true(l.out_h == 14 && l.out_w == 14);
    assert_null(layer_conv2d_make(&l, 64, 28, 28, 1, 1, 1, 0, VD_ACT_NONE));
    assert_true(l.out_h == 28 && l.out_c == 1 && l.kind->macs(&l) == 28.0 * 28 * 64);
    assert_null(layer_conv2d_make(&l, 3, 7, 9, 4, 5, 1, 0, VD_ACT_RELU)); /* "valid" */
    assert_true(l.out_h == 3 && l.out_w == 5 && l.act == VD_ACT_RELU);
    struct { int h, w, k, s, pad; const char *why; } bad[] = {
        {8, 8, 4, 1, VD_PAD_SAME, "odd"},       {8, 8, 0, 1, 0, "odd"},
        {6, 6, 7, 1, VD_PAD_SAME, "larger"},    {8, 5, 7, 1, VD_PAD_SAME, "larger"},
        {7, 7, 3, 2, VD_PAD_SAME, "divide"},    {8, 6, 3, 3, VD_PAD_SAME, "stride"},
        {8, 8, 3, 1, 3, "padding"},             {8, 8, 17, 1, VD_PAD_SAME, "odd"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *why = layer_conv2d_make(&l, 2, bad[i].h, bad[i].w, 3, bad[i].k, bad[i].s,
                                            bad[i].pad, VD_ACT_NONE);
        assert_non_null(why);
        assert_non_null(strstr(why, bad[i].why));
        assert_null(strchr(why, '\n'));
        assert_non_null(layer_gconv_make(&l, 2, bad[i].h, bad[i].w, 3, bad[i].k, bad[i].s,
                                         bad[i].pad));
    }
    const char *big = layer_conv2d_make(&l, 1, 6, 6, 1, 7, 1, VD_PAD_SAME, VD_ACT_NONE);
    assert_non_null(big);
    assert_non_null(strstr(big, "a 7x7 kernel is larger than the 6x6 image"));
    assert_non_null(layer_upsample_make(&l, 3, 4, 4, 1));
    assert_null(layer_upsample_make(&l, 3, 4, 5, 2));
    assert_true(l.out_h == 8 && l.out_w == 10 && l.out_c == 3 && l.kind->tensors(&l, spec) == 0);
    /* a dense layer's 784 outputs read as a 28x28x1 image; not as 27x28 */
    Layer d = layer_gated_make(600, 784);
    assert_null(layer_reshape(&d, 1, 28, 28));
    assert_true(d.out_h == 28 && d.out_w == 28 && d.out_c == 1 && layer_out_size(&d) == 784);
    const char *why = layer_reshape(&d, 1, 27, 28);
    assert_non_null(why);
    assert_non_null(strstr(why, "reshape"));
    assert_true(d.out_h == 28 && d.out_w == 28); /* unchanged */
    assert_null(layer_gconv_make(&l, 1, 4, 4, 1, 3, 1, 1));
    assert_non_null(layer_reshape(&l, 16, 1, 1)); /* not a dense layer */
    Layer e = layer_dense_make(5, 12, VD_ACT_NONE);
    assert_null(layer_reshape(&e, 3, 2, 2));
    check_forward(e, 2, 1e-5); /* the reshape changes no value */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_against_reference),
        cmocka_unit_test(test_gated_and_clamped_heads),
        cmocka_unit_test(test_conv_against_reference),
        cmocka_unit_test(test_tconv_against_reference),
        cmocka_unit_test(test_conv_by_hand),
        cmocka_unit_test(test_tconv_by_hand),
        cmocka_unit_test(test_shape_rules),
        cmocka_unit_test(test_conv2d_against_reference),
        cmocka_unit_test(test_gconv_against_reference),
        cmocka_unit_test(test_conv2d_by_hand),
        cmocka_unit_test(test_gconv_and_upsample_by_hand),
        cmocka_unit_test(test_conv2d_shape_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
