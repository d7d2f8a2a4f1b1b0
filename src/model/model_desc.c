/* model_desc.c — the model's description table: options, /model attributes,
 * equality, summary and checks. See model_desc.h. */
#include "model_desc.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(f) offsetof(VaeShape, f)

const OptSpec model_options[] = {
    {"hidden", OPT_LIST, OFF(hidden), 0, "400", 1, 1 << 20, "N[,N...]",
     "hidden layer widths, input side first (1 to 8 layers); the decoder mirrors them (with "
     "--preset, the width of its dense layers)"},
    {"conv", OPT_LIST, OFF(conv), 0, "none", 1, 65536, "C[,C...]",
     "4x4 stride-2 convolutions with these output channels before the --hidden layers, "
     "each halving height and width (the decoder mirrors them; none: an MLP); with --preset, "
     "its channels"},
    {"latent", OPT_LIST, OFF(latent), 0, "20", 1, VD_MAX_LATENT, "D[,D...]",
     "stochastic layers' sizes, the one next to the data first (1 to 4 layers; see "
     "docs/how-it-works.md#the-model for how several are wired)"},
    {"activation", OPT_CHOICE, OFF(activation), 0, "relu", 0, 0, "relu|tanh|gated",
     "the hidden layers: dense with relu or tanh, or gated dense layers (h * sigmoid(g)), "
     "whose model also clamps every log-variance to [-6, 2] and He-initializes its weights"},
    {"likelihood", OPT_CHOICE, OFF(likelihood), 0, "bernoulli", 0, 0,
     "bernoulli|gaussian|logistic",
     "p(x|z): Bernoulli (data in [0, 1]); Gaussian (continuous data); or the discretized "
     "logistic of 8-bit data (in [0, 1], read as 256 levels; a learned log-scale per channel; "
     "eval reports bits/dim)"},
    {"variance", OPT_STR, OFF(variance), sizeof(((VaeShape *)0)->variance), "learned", 0, 0,
     "S2|learned", "the Gaussian's variance s^2: fixed at S2, or learned (one scalar)"},
    {"classes", OPT_INT, OFF(classes), 0, "0", 0, 1 << 20, "C",
     "conditional VAE: a learned prior mean per class 0..C-1, from the labels (0: off)"},
    {"prior", OPT_CHOICE, OFF(prior), 0, "standard", 0, 0, "standard|vamp",
     "the top layer's prior: N(0, I), or a VampPrior, the mixture of the posteriors of "
     "--pseudo-inputs learned inputs"},
    {"pseudo-inputs", OPT_INT, OFF(pseudo_inputs), 0, "500", 1, 65536, "K",
     "--prior vamp: the number of pseudo-inputs"},
    {"preset", OPT_CHOICE, OFF(preset), 0, "none", 0, 0, "none|conv-hvae",
     "a published architecture (`vae-dist help` lists them, with the --conv, --hidden and "
     "--latent it takes by default; the command line may still set those)"},
    OPT_END};

const ModelPreset model_presets[] = {
    {"conv-hvae", {32, 64, 6}, 3, 300, {40, 40}, 2,
     "the gated convolutional two-level VAE of Tomczak and Welling (VampPrior, 2018): "
     "2,210,861 parameters on 28x28x1 images (2,602,861 with --prior vamp); images whose sides "
     "divide by 4 and are at least 12; --conv C1,C2,C3 [32,64,6] its channels, --hidden H "
     "[300] its dense layers, --latent [40,40] 1 to 4 stochastic layers"},
};
const int n_model_presets = (int)(sizeof model_presets / sizeof *model_presets);

static int gaussian(const VaeShape *s) { return s->likelihood == VD_LIK_GAUSSIAN; }
static int vamp(const VaeShape *s) { return s->prior == VD_PRIOR_VAMP; }

/* Format 4 added latent (was the scalar n_latent), gated, prior and
 * pseudo_inputs; format 2 the activation, likelihood and classes. A file
 * without a preset has none (conv and preset: since 99, never required). */
const ModelField model_fields[] = {
    {&model_options[0], "hidden", NULL, VD_ATTR_INTS, 1, NULL, NULL},
    {&model_options[1], "conv", NULL, VD_ATTR_INTS, 99, "none", NULL},
    {&model_options[2], "latent", "n_latent", VD_ATTR_INTS, 1, NULL, NULL},
    {&model_options[3], "activation", NULL, VD_ATTR_CHOICE, 2, "relu", NULL},
    {&model_options[4], "likelihood", NULL, VD_ATTR_CHOICE, 2, "bernoulli", NULL},
    {&model_options[5], "obs_logvar", NULL, VD_ATTR_VARIANCE, 2, "learned", gaussian},
    {&model_options[6], "n_classes", NULL, VD_ATTR_INTS, 2, "0", NULL},
    {&model_options[7], "prior", NULL, VD_ATTR_CHOICE, 4, "standard", NULL},
    {&model_options[8], "pseudo_inputs", NULL, VD_ATTR_INTS, 4, "500", vamp},
    {&model_options[9], "preset", NULL, VD_ATTR_CHOICE, 99, "none", NULL},
};
const int n_model_fields = (int)(sizeof model_fields / sizeof *model_fields);

void vae_shape_defaults(VaeShape *s)
{
    opts_defaults(model_options, s);
    vae_shape_resolve(s);
}

const char *vae_shape_resolve(VaeShape *s)
{
    char *end = NULL;
    double s2 = 1.0;
    s->learn_var = 0;
    s->obs_logvar = 0.0f;
    if (strcmp(s->variance, "learned") != 0) {
        s2 = strtod(s->variance, &end);
        if (!s->variance[0] || *end || !(s2 >= 1e-12 && s2 <= 1e12))
            return "--variance is neither 'learned' nor a number in [1e-12, 1e12]";
    }
    if (gaussian(s)) {
        s->learn_var = strcmp(s->variance, "learned") == 0;
        s->obs_logvar = (float)log(s2);
    }
    return NULL;
}

int vae_field_parse(const ModelField *f, VaeShape *s, const char *text)
{
    VdError err = {0};
    return opts_set(f->opt, s, text, &err) == VD_OK ? 0 : -1;
}

int vae_shape_set(VaeShape *s, const char *name, const char *value)
{
    for (int i = 0; i < n_model_fields; i++)
        if (strcmp(model_fields[i].opt->name, name) == 0) {
            if (vae_field_parse(&model_fields[i], s, value) != 0 || vae_shape_resolve(s))
                return -1;
            if (strcmp(name, "preset") == 0)
                vae_shape_preset(s);
            return 0;
        }
    return -1;
}

void vae_shape_preset(VaeShape *s)
{
    if (s->preset == VD_PRESET_NONE)
        return;
    const ModelPreset *p = &model_presets[s->preset - 1];
    s->conv.n = p->n_conv;
    memcpy(s->conv.v, p->conv, sizeof p->conv);
    s->hidden.n = 1;
    s->hidden.v[0] = p->hidden;
    s->latent.n = p->n_latent;
    memcpy(s->latent.v, p->latent, sizeof p->latent);
    s->activation = VD_MODEL_GATED;
}

static const void *field_ptr(const ModelField *f, const VaeShape *s)
{
    return (const char *)s + f->opt->offset;
}

static int field_equal(const ModelField *f, const VaeShape *a, const VaeShape *b)
{
    if (f->relevant && (f->relevant(a) || f->relevant(b)) && f->relevant(a) != f->relevant(b))
        return 0;
    if (f->relevant && !f->relevant(a))
        return 1;
    if (f->kind == VD_ATTR_VARIANCE) /* the model's variance, whatever text gave it */
        return a->learn_var == b->learn_var && (a->learn_var || a->obs_logvar == b->obs_logvar);
    if (f->opt->type == OPT_LIST) {
        const OptList *x = field_ptr(f, a), *y = field_ptr(f, b);
        return x->n == y->n && memcmp(x->v, y->v, sizeof(int) * (size_t)x->n) == 0;
    }
    return *(const int *)field_ptr(f, a) == *(const int *)field_ptr(f, b);
}

int vae_shape_equal(const VaeShape *a, const VaeShape *b)
{
    int same = a->n_input == b->n_input;
    for (int i = 0; same && i < n_model_fields; i++)
        same = field_equal(&model_fields[i], a, b);
    if (same && vae_shape_image(a)) /* an MLP's input is D values, whatever their shape */
        same = a->in_c == b->in_c && a->in_h == b->in_h && a->in_w == b->in_w;
    return same;
}

void vae_shape_text(const VaeShape *s, char *buf, size_t n)
{
    size_t used = 0;
#define ADD(...) (used += used < n ? (size_t)snprintf(buf + used, n - used, __VA_ARGS__) : 0)
    buf[0] = '\0';
    if (s->preset != VD_PRESET_NONE) { /* its widths, when they are not the preset's */
        const ModelPreset *p = &model_presets[s->preset - 1];
        ADD("%s ", p->name);
        if (s->conv.n != p->n_conv || memcmp(s->conv.v, p->conv, sizeof p->conv) ||
            s->hidden.n != 1 || s->hidden.v[0] != p->hidden) {
            for (int i = 0; i < s->conv.n; i++)
                ADD("%sc%d", i ? "-" : "(", s->conv.v[i]);
            for (int i = 0; i < s->hidden.n; i++)
                ADD("-%d", s->hidden.v[i]);
            ADD(") ");
        }
        ADD("%dx%dx%d", s->in_h, s->in_w, s->in_c);
    } else if (s->conv.n) {
        ADD("%dx%dx%d", s->in_h, s->in_w, s->in_c);
        for (int i = 0; i < s->conv.n; i++)
            ADD("-conv%d", s->conv.v[i]);
    } else {
        ADD("%d", s->n_input);
    }
    for (int l = 0; s->preset == VD_PRESET_NONE && l < s->hidden.n; l++)
        ADD("-%d", s->hidden.v[l]);
    for (int l = 0; l < s->latent.n; l++)
        ADD("%s%d", l ? "," : "-", s->latent.v[l]);
    if (s->activation != VD_MODEL_RELU && s->preset == VD_PRESET_NONE)
        ADD(", %s", s->activation == VD_MODEL_TANH ? "tanh" : "gated");
    if (s->likelihood == VD_LIK_GAUSSIAN && s->learn_var)
        ADD(", gaussian learned s^2");
    else if (s->likelihood == VD_LIK_GAUSSIAN)
        ADD(", gaussian s^2 %g", exp((double)s->obs_logvar));
    if (s->likelihood == VD_LIK_LOGISTIC)
        ADD(", logistic");
    if (s->classes > 0)
        ADD(", %d classes", s->classes);
    if (s->prior == VD_PRIOR_VAMP)
        ADD(", vamp %d", s->pseudo_inputs);
#undef ADD
}

/* Is every value of field f of s in its option's range? */
static int in_range(const ModelField *f, const VaeShape *s)
{
    const OptSpec *o = f->opt;
    if (o->type == OPT_LIST) {
        const OptList *l = field_ptr(f, s);
        if (l->n < 0 || l->n > VD_LIST_MAX)
            return 0;
        for (int i = 0; i < l->n; i++)
            if (l->v[i] < o->min || l->v[i] > o->max)
                return 0;
        return 1;
    }
    if (o->type == OPT_INT)
        return *(const int *)field_ptr(f, s) >= o->min && *(const int *)field_ptr(f, s) <= o->max;
    if (o->type == OPT_CHOICE) {
        int k = *(const int *)field_ptr(f, s), choices = 1;
        for (const char *c = o->metavar; *c; c++)
            choices += *c == '|';
        return k >= 0 && k < choices;
    }
    return 1;
}

/* The rest of vae_shape_check for a preset: NULL, or why not. */
static const char *preset_check(const VaeShape *s)
{
    static __thread char why[192];
    const ModelPreset *p = &model_presets[s->preset - 1];
    if (s->conv.n != p->n_conv)
        snprintf(why, sizeof why, "--preset %s takes %d channel counts (--conv C1,C2,C3), not %d",
                 p->name, p->n_conv, s->conv.n);
    else if (s->hidden.n != 1)
        snprintf(why, sizeof why, "--preset %s takes one width (--hidden H), not %d", p->name,
                 s->hidden.n);
    else if (s->activation != VD_MODEL_GATED)
        snprintf(why, sizeof why, "--preset %s is made of gated layers: leave out --activation",
                 p->name);
    else if (s->in_h % 4 || s->in_w % 4 || s->in_h < 12 || s->in_w < 12)
        snprintf(why, sizeof why, "--preset %s needs images whose height and width divide by 4 "
                 "and are at least 12 (two stride-2 convolutions, then 3x3 windows), not %dx%dx%d",
                 p->name, s->in_h, s->in_w, s->in_c);
    else
        return NULL;
    return why;
}

const char *vae_shape_check(const VaeShape *s)
{
    for (int i = 0; i < n_model_fields; i++)
        if (!in_range(&model_fields[i], s)) {
            static __thread char why[96];
            snprintf(why, sizeof why, "--%s is out of its range", model_fields[i].opt->name);
            return why;
        }
    if (s->n_input < 1)
        return "the input size must be positive";
    if (s->latent.n < 1 || s->latent.n > VD_MAX_LEVELS)
        return "the model takes 1 to 4 stochastic layers (--latent)";
    if (s->hidden.n < 1 || s->hidden.n > VD_MAX_HIDDEN)
        return "the model needs 1 to 8 hidden layers";
    if (s->conv.n > VD_MAX_CONV)
        return "the model takes 0 to 6 convolutions";
    if (vae_shape_image(s) && (s->in_c < 1 || s->in_h < 1 || s->in_w < 1 || s->in_c > 1 << 16 ||
                               (double)s->in_c * s->in_h * s->in_w != (double)s->n_input))
        return "a convolutional model needs an image input of h x w x c = D values";
    const char *why = s->preset != VD_PRESET_NONE ? preset_check(s) : NULL;
    if (why)
        return why;
    if (s->conv.n && !s->preset && s->latent.n > 1)
        return "--conv takes one stochastic layer (--latent D)";
    if (s->conv.n && !s->preset && s->activation == VD_MODEL_GATED)
        return "--conv takes --activation relu or tanh";
    if (!isfinite(s->obs_logvar) || fabsf(s->obs_logvar) > 50.0f)
        return "the Gaussian's variance is out of range";
    if (s->prior == VD_PRIOR_VAMP && s->classes > 0)
        return "--prior vamp and --classes are two priors for the top layer: choose one";
    return NULL;
}
