/* model_desc.h — the one table that describes a model's options: their
 * command-line options (the train command includes model_options), the
 * checkpoint's /model attributes (ckpt.c walks model_fields), equality,
 * and the checks of a shape read from anywhere. A new model option is a
 * row here, its use in model_build.c, and its words in vae_shape_text's
 * one-line summary when it changes the model's name. Local. */
#ifndef VD_MODEL_DESC_H
#define VD_MODEL_DESC_H

#include "model.h"
#include "opts.h"

/* The model's options, offsets into VaeShape, OPT_END-terminated. Their
 * count is part of the type, so that train_opts.c can size its table,
 * which includes them, at compile time. A table of another length is
 * refused when the train options are built, before main (a longer one
 * also draws the compiler's "excess elements" warning). */
#define MODEL_N_OPTIONS 10
extern const OptSpec model_options[MODEL_N_OPTIONS + 1];

/* How a field is stored in /model. */
typedef enum {
    VD_ATTR_INTS = 0,    /* int64 array (a list) or scalar (an int) */
    VD_ATTR_CHOICE = 1,  /* string: the choice's name */
    VD_ATTR_VARIANCE = 2 /* obs_logvar (float64) and learn_var (int64) */
} VdAttrKind;

typedef struct {
    const OptSpec *opt;   /* its option */
    const char *attr;     /* its /model attribute */
    const char *old_attr; /* the name older files use, or NULL */
    int kind;             /* VdAttrKind */
    int since;            /* files of this format version on must have it */
    const char *absent;   /* its value, as option text, in a file without it */
    /* Part of the model only when this holds of the shape (NULL: always):
     * two shapes differ in it only then. Every file writes it. */
    int (*relevant)(const VaeShape *s);
} ModelField;

extern const ModelField model_fields[];
extern const int n_model_fields;

/* A published architecture, --preset NAME (VdPreset n is model_presets[n -
 * 1]): its sizes, and what `vae-dist help` says of it. */
typedef struct {
    const char *name;
    int conv[3], n_conv;     /* channels, into VaeShape.conv */
    int hidden;              /* the dense layers' width, into VaeShape.hidden */
    int latent[2], n_latent; /* into VaeShape.latent */
    const char *about;
} ModelPreset;

extern const ModelPreset model_presets[];
extern const int n_model_presets;

/* Gives s its preset's sizes (conv, hidden, latent) and gated layers;
 * nothing without a preset. The command line then sets what it names over
 * them (train_parse), so they are the preset's defaults. */
void vae_shape_preset(VaeShape *s);

/* Sets s's model options to their defaults (data fields untouched). */
void vae_shape_defaults(VaeShape *s);

/* Fills s->obs_logvar and s->learn_var from s->variance and the likelihood;
 * NULL, or why the variance is not "learned" or a number in [1e-12, 1e12]. */
const char *vae_shape_resolve(VaeShape *s);

/* Sets the model option named name (as on the command line, without "--")
 * of s to value, and resolves the variance; "preset" also sets the preset's
 * sizes (vae_shape_preset). 0, or -1 for an unknown name or a bad value. */
int vae_shape_set(VaeShape *s, const char *name, const char *value);

/* Parses text into field f of s (the option's rule and range). 0 or -1. */
int vae_field_parse(const ModelField *f, VaeShape *s, const char *text);

#endif
