/* model_build.c — the graph of a model from its shape: nodes, stochastic
 * layers, prior, and the tensor table laid out in node order. See model.h
 * and docs/how-it-works.md#the-model. */
#include "model_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model_desc.h"
#include "util.h"

/* Adds a node; its per-draw rule: a sample is per draw, a layer when any of
 * its inputs is. Returns its index. Past VD_MAX_NODES it marks the build
 * refused and hands back the last node, so that the builders' indices stay
 * in bounds until vae_build says why. */
static int add_node(Vae *m, const VaeNode *n)
{
    if (m->n_nodes == VD_MAX_NODES) {
        m->too_many = 1;
        return VD_MAX_NODES - 1;
    }
    VaeNode *node = &m->nodes[m->n_nodes];
    *node = *n;
    if (node->type == VD_NODE_LAYER) {
        size_t size = layer_out_size(&node->layer); /* check_size refuses past 2^24 */
        node->size = size > (size_t)1 << 24 ? (1 << 24) + 1 : (int)size;
        for (int i = 0; i < node->n_in; i++)
            node->per_draw |= m->nodes[node->in[i]].per_draw;
    }
    return m->n_nodes++;
}

/* A layer reading the concatenation of the n nodes in[], named prefix. */
static int add_layer(Vae *m, Layer l, const int *in, int n, const char *prefix)
{
    VaeNode node = {.type = VD_NODE_LAYER, .n_in = n, .layer = l};
    memcpy(node.in, in, sizeof(int) * (size_t)n);
    snprintf(node.name, sizeof node.name, "%s", prefix);
    return add_node(m, &node);
}

static int in_size(const Vae *m, const int *in, int n)
{
    int size = 0;
    for (int i = 0; i < n; i++)
        size += m->nodes[in[i]].size;
    return size;
}

/* A hidden layer of width out on the concatenation of in[]: dense with the
 * model's activation, or gated; weights He-initialized in a gated model. */
static int add_hidden(Vae *m, const int *in, int n, int out, const char *prefix)
{
    const VaeShape *s = &m->shape;
    int width = in_size(m, in, n);
    Layer l = s->activation == VD_MODEL_GATED ? layer_gated_make(width, out)
              : layer_dense_make(width, out, s->activation == VD_MODEL_TANH ? VD_ACT_TANH
                                                                              : VD_ACT_RELU);
    return add_layer(m, l, in, n, prefix);
}

/* The heads of a d-dimensional Gaussian on node in. */
static int add_heads(Vae *m, int in, int d, const char *prefix)
{
    int gated = m->shape.activation == VD_MODEL_GATED;
    Layer l = layer_heads_make(m->nodes[in].size, d, gated);
    l.init = gated ? VD_INIT_HE : VD_INIT_UNIFORM;
    return add_layer(m, l, &in, 1, prefix);
}

static int add_sample(Vae *m, int level)
{
    VaeNode node = {.type = VD_NODE_SAMPLE, .level = level, .per_draw = 1,
                    .size = m->levels[level].d};
    return add_node(m, &node);
}

/* A chain of hidden layers hidden[from], hidden[from + step], ... (count
 * of them) on node in, named prefix.0, prefix.1, ... from index first. */
static int add_chain(Vae *m, int in, int from, int step, int count, const char *prefix, int first)
{
    for (int i = 0; i < count && in >= 0; i++) {
        char name[24];
        snprintf(name, sizeof name, "%.12s.%d", prefix, first + i);
        in = add_hidden(m, &in, 1, m->shape.hidden.v[from + i * step], name);
    }
    return in;
}

/* The textbook graph of one stochastic layer: the encoder (convolutions,
 * then the hidden layers), the heads, the sample, the mirrored decoder. */
static const char *build_one_level(Vae *m)
{
    const VaeShape *s = &m->shape;
    int c = s->in_c, h = s->in_h, w = s->in_w, x = 0, d = s->latent.v[0];
    int act = s->activation == VD_MODEL_TANH ? VD_ACT_TANH : VD_ACT_RELU;
    const char *why;
    char name[24];
    int node = x, k = 0; /* k numbers the encoder's layers */
    for (int i = 0; i < s->conv.n; i++, k++) {
        Layer l;
        if ((why = layer_conv_make(&l, c, h, w, s->conv.v[i], act)))
            return why;
        snprintf(name, sizeof name, "encoder.%d", k);
        node = add_layer(m, l, &node, 1, name);
        c = s->conv.v[i];
        h /= 2;
        w /= 2;
    }
    node = add_chain(m, node, 0, 1, s->hidden.n, "encoder", k);
    m->levels[0].q = add_heads(m, node, d, "");
    m->top_end = m->n_nodes;
    int z = m->levels[0].z = add_sample(m, 0);
    m->levels[0].p = -1;
    node = add_chain(m, z, s->hidden.n - 1, -1, s->hidden.n, "decoder", 0);
    k = s->hidden.n;
    snprintf(name, sizeof name, "decoder.%d", k++);
    if (!s->conv.n) {
        Layer out = layer_dense_make(m->nodes[node].size, s->n_input, VD_ACT_NONE);
        out.init = s->activation == VD_MODEL_GATED ? VD_INIT_HE : VD_INIT_UNIFORM;
        m->out = add_layer(m, out, &node, 1, name);
        return NULL;
    }
    Layer to_image = layer_dense_make(m->nodes[node].size, c * h * w, act);
    to_image.out_c = c; /* to the last convolution's shape */
    to_image.out_h = h;
    to_image.out_w = w;
    node = add_layer(m, to_image, &node, 1, name);
    for (int i = s->conv.n - 1; i >= 0; i--) {
        int c_out = i ? s->conv.v[i - 1] : s->in_c;
        Layer l;
        layer_tconv_make(&l, c, h, w, c_out, i ? act : VD_ACT_NONE);
        snprintf(name, sizeof name, "decoder.%d", k++);
        node = add_layer(m, l, &node, 1, name);
        c = c_out;
        h *= 2;
        w *= 2;
    }
    m->out = node;
    return NULL;
}

/* Several stochastic layers, as in Tomczak and Welling's two-level VAE
 * (hidden widths H[0..n), sizes d_1..d_L):
 *   q(z_L | x):          x -> H[0] .. H[n-1] -> heads
 *   q(z_l | x, z_l+1):   [x -> H[0] ; z_l+1 -> H[0]] -> H[1] .. H[n-1] -> heads
 *   p(z_l | z_l+1):      z_l+1 -> H[n-1] .. H[0] -> heads
 *   p(x | z_1 .. z_L):   [z_1 -> H[n-1] ; ..; z_L -> H[n-1]] -> H[n-2] .. H[0] -> D */
static const char *build_levels(Vae *m)
{
    const VaeShape *s = &m->shape;
    int L = s->latent.n, n = s->hidden.n, x = 0;
    char name[24];
    snprintf(name, sizeof name, "q%d", L);
    int node = add_chain(m, x, 0, 1, n, name, 0);
    m->levels[L - 1].q = add_heads(m, node, s->latent.v[L - 1], name);
    m->top_end = m->n_nodes;
    m->levels[L - 1].z = add_sample(m, L - 1);
    m->levels[L - 1].p = -1;
    for (int l = L - 2; l >= 0; l--) {
        int branch[2];
        snprintf(name, sizeof name, "q%d.x", l + 1);
        branch[0] = add_hidden(m, &x, 1, s->hidden.v[0], name);
        snprintf(name, sizeof name, "q%d.z", l + 1);
        branch[1] = add_hidden(m, &m->levels[l + 1].z, 1, s->hidden.v[0], name);
        snprintf(name, sizeof name, "q%d.0", l + 1);
        node = n > 1 ? add_hidden(m, branch, 2, s->hidden.v[1], name) : -1;
        snprintf(name, sizeof name, "q%d", l + 1);
        if (n > 1) {
            node = add_chain(m, node, 2, 1, n - 2, name, 1);
        } else { /* the heads read the branches themselves */
            Layer heads = layer_heads_make(in_size(m, branch, 2), s->latent.v[l],
                                           s->activation == VD_MODEL_GATED);
            heads.init = s->activation == VD_MODEL_GATED ? VD_INIT_HE : VD_INIT_UNIFORM;
            m->levels[l].q = add_layer(m, heads, branch, 2, name);
        }
        if (n > 1)
            m->levels[l].q = add_heads(m, node, s->latent.v[l], name);
        m->levels[l].z = add_sample(m, l);
    }
    for (int l = L - 2; l >= 0; l--) {
        snprintf(name, sizeof name, "p%d", l + 1);
        node = add_chain(m, m->levels[l + 1].z, n - 1, -1, n, name, 0);
        m->levels[l].p = add_heads(m, node, s->latent.v[l], name);
    }
    int branch[VD_MAX_LEVELS];
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "decoder.z%d", l + 1);
        branch[l] = add_hidden(m, &m->levels[l].z, 1, s->hidden.v[n - 1], name);
    }
    node = n > 1 ? add_hidden(m, branch, L, s->hidden.v[n - 2], "decoder.0") : -1;
    if (n > 1)
        node = add_chain(m, node, n - 3, -1, n - 2, "decoder", 1);
    snprintf(name, sizeof name, "decoder.%d", n > 1 ? n - 1 : 0);
    int in_nodes = n > 1 ? 1 : L, *in = n > 1 ? &node : branch;
    Layer out = layer_dense_make(in_size(m, in, in_nodes), s->n_input, VD_ACT_NONE);
    out.init = s->activation == VD_MODEL_GATED ? VD_INIT_HE : VD_INIT_UNIFORM;
    m->out = add_layer(m, out, in, in_nodes, name);
    return NULL;
}

/* ---- conv-hvae: the gated convolutional hierarchy ----------------------- */

/* A gated convolution of a branch on x: its channels (which of the preset's
 * three, shape.conv), window and stride, with "same" padding. */
typedef struct {
    int width, k, stride;
} GconvStep;

enum { BRANCH_CONVS = 5 };
/* q(z_L | x)'s convolutions, and the x branch of each q(z_l | x, z_l+1) */
static const GconvStep top_convs[BRANCH_CONVS] = {
    {0, 7, 1}, {0, 3, 2}, {1, 5, 1}, {1, 3, 2}, {2, 3, 1}};
static const GconvStep low_convs[BRANCH_CONVS] = {
    {0, 3, 1}, {0, 3, 2}, {1, 3, 1}, {1, 3, 2}, {2, 3, 1}};

/* The branch's gated convolutions on x, named prefix.0 ..; its last node,
 * or -1 with *why. */
static int add_gconv_branch(Vae *m, const GconvStep *steps, const char *prefix, const char **why)
{
    const VaeShape *s = &m->shape;
    int node = 0, c = s->in_c, h = s->in_h, w = s->in_w;
    for (int i = 0; i < BRANCH_CONVS && node >= 0; i++) {
        Layer l;
        char name[24];
        *why = layer_gconv_make(&l, c, h, w, s->conv.v[steps[i].width], steps[i].k,
                                steps[i].stride, VD_PAD_SAME);
        if (*why)
            return -1;
        snprintf(name, sizeof name, "%.12s.%d", prefix, i);
        node = add_layer(m, l, &node, 1, name);
        c = l.out_c;
        h = l.out_h;
        w = l.out_w;
    }
    return node;
}

/* p(x | z_1 .. z_L): [z_l -> G(H)] for every l, concatenated -> G(D) read
 * as the image (h, w, c) -> GC(c, C2, 3) and three GC(C2, C2, 3) -> a 1x1
 * convolution to c channels, the logits (or Gaussian means). */
static const char *add_conv_decoder(Vae *m)
{
    const VaeShape *s = &m->shape;
    int L = m->n_levels, branch[VD_MAX_LEVELS], c = s->conv.v[1];
    char name[24];
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "decoder.z%d", l + 1);
        branch[l] = add_hidden(m, &m->levels[l].z, 1, s->hidden.v[0], name);
    }
    Layer l = layer_gated_make(in_size(m, branch, L), s->n_input);
    const char *why = layer_reshape(&l, s->in_c, s->in_h, s->in_w);
    int node = why ? -1 : add_layer(m, l, branch, L, "decoder.0");
    for (int i = 0; i < 4 && !why && node >= 0; i++) {
        why = layer_gconv_make(&l, i ? c : s->in_c, s->in_h, s->in_w, c, 3, 1, VD_PAD_SAME);
        snprintf(name, sizeof name, "decoder.%d", i + 1);
        node = why ? -1 : add_layer(m, l, &node, 1, name);
    }
    if (!why)
        why = layer_conv2d_make(&l, c, s->in_h, s->in_w, s->in_c, 1, 1, 0, VD_ACT_NONE);
    if (!why && node >= 0)
        m->out = add_layer(m, l, &node, 1, "decoder.5");
    return why;
}

/* --preset conv-hvae: Tomczak and Welling's gated convolutional VAE of L
 * stochastic layers (their convHVAE_2level at L = 2), with channels C1, C2,
 * C3 = shape.conv and width H = shape.hidden; GC a gated convolution, G a
 * gated dense layer, every log-variance clamped to [-6, 2]:
 *   q(z_L | x):        x -> GC(C1, 7) GC(C1, 3, /2) GC(C2, 5) GC(C2, 3, /2)
 *                      GC(C3, 3), flattened to F -> heads
 *   q(z_l | x, z_l+1): [x -> GC(C1, 3) GC(C1, 3, /2) GC(C2, 3) GC(C2, 3, /2)
 *                      GC(C3, 3) ; z_l+1 -> G(F)] -> G(H) -> heads
 *   p(z_l | z_l+1):    z_l+1 -> G(H) -> G(H) -> heads
 *   p(x | z_1 .. z_L): add_conv_decoder. */
static const char *build_conv_hvae(Vae *m)
{
    const VaeShape *s = &m->shape;
    int L = m->n_levels, node;
    const char *why = NULL;
    char name[24];
    snprintf(name, sizeof name, "q%d", L);
    if ((node = add_gconv_branch(m, top_convs, name, &why)) < 0)
        return why ? why : "the model has too many layers";
    m->levels[L - 1].q = add_heads(m, node, s->latent.v[L - 1], name);
    m->top_end = m->n_nodes;
    m->levels[L - 1].z = add_sample(m, L - 1);
    m->levels[L - 1].p = -1;
    for (int l = L - 2; l >= 0; l--) {
        int branch[2];
        snprintf(name, sizeof name, "q%d.x", l + 1);
        if ((branch[0] = add_gconv_branch(m, low_convs, name, &why)) < 0)
            return why ? why : "the model has too many layers";
        snprintf(name, sizeof name, "q%d.z", l + 1);
        branch[1] = add_hidden(m, &m->levels[l + 1].z, 1, m->nodes[branch[0]].size, name);
        snprintf(name, sizeof name, "q%d.0", l + 1);
        node = add_hidden(m, branch, 2, s->hidden.v[0], name);
        snprintf(name, sizeof name, "q%d", l + 1);
        m->levels[l].q = add_heads(m, node, s->latent.v[l], name);
        m->levels[l].z = add_sample(m, l);
    }
    for (int l = L - 2; l >= 0; l--) {
        snprintf(name, sizeof name, "p%d", l + 1);
        node = add_chain(m, m->levels[l + 1].z, 0, 0, 2, name, 0);
        m->levels[l].p = add_heads(m, node, s->latent.v[l], name);
    }
    return add_conv_decoder(m);
}

static int add_tensor(Vae *m, const char *name, const TensorSpec *t)
{
    VaeTensor *ten = &m->tensors[m->n_tensors];
    memset(ten, 0, sizeof *ten);
    snprintf(ten->name, sizeof ten->name, "%s", name);
    ten->offset = m->n_params;
    ten->n_dims = t->n_dims;
    ten->rows = t->dims[0];
    ten->cols = t->n_dims > 1 ? 1 : 0;
    size_t count = (size_t)t->dims[0];
    for (int i = 0; i < t->n_dims; i++) {
        ten->dims[i] = t->dims[i];
        if (i > 0) {
            ten->cols *= t->dims[i];
            count *= (size_t)t->dims[i];
        }
    }
    ten->fan_in = t->fan_in;
    ten->init = t->init;
    m->n_params += count;
    return m->n_tensors++;
}

/* The tensors of layer node i, named prefix.<suffix> ("encoder.0.weight");
 * an empty prefix leaves the suffix alone ("mu.weight"). */
static void add_layer_tensors(Vae *m, VaeNode *node)
{
    Layer *l = &node->layer;
    TensorSpec spec[VD_LAYER_TENSORS];
    int n = l->kind->tensors(l, spec);
    l->t_first = m->n_tensors;
    for (int k = 0; k < n; k++) {
        char name[48];
        if (node->name[0])
            snprintf(name, sizeof name, "%s.%s", node->name, spec[k].suffix);
        else
            snprintf(name, sizeof name, "%s", spec[k].suffix);
        add_tensor(m, name, &spec[k]);
    }
}

/* The tensor table in node order; the top prior's tensors at its sample,
 * a learned likelihood's last. node_offset[i]: the first parameter of node
 * i or a later one. */
static void add_tensors(Vae *m)
{
    const VaeShape *s = &m->shape;
    int top = m->levels[m->n_levels - 1].z, d = vae_top_latent(m);
    m->prior = (VaePrior){s->classes > 0 ? VD_PRIOR_STANDARD : s->prior, s->classes,
                          s->prior == VD_PRIOR_VAMP ? s->pseudo_inputs : 0, -1, -1};
    for (int i = 0; i < m->n_nodes; i++) {
        m->node_offset[i] = m->n_params;
        if (m->nodes[i].type == VD_NODE_LAYER)
            add_layer_tensors(m, &m->nodes[i]);
        if (i == top && s->classes > 0)
            m->prior.t_mean = add_tensor(m, "prior.mean",
                                         &(TensorSpec){"", 2, {s->classes, d}, 0, VD_INIT_ZERO});
        if (i == top && m->prior.K > 0)
            m->prior.t_pseudo = add_tensor(
                m, "prior.pseudo_inputs", &(TensorSpec){"", 2, {m->prior.K, s->n_input}, 0,
                                                        VD_INIT_PSEUDO});
    }
    m->t_obs_logvar = m->t_logscale = -1;
    m->lik_channels = s->in_c > 0 ? s->in_c : 1;
    if (s->likelihood == VD_LIK_GAUSSIAN && s->learn_var)
        m->t_obs_logvar = add_tensor(m, "likelihood.logvar", &(TensorSpec){"", 1, {1}, 0, 0});
    if (s->likelihood == VD_LIK_LOGISTIC)
        m->t_logscale = add_tensor(m, "likelihood.logscale",
                                   &(TensorSpec){"", 1, {m->lik_channels}, 0, 0});
    /* a node without tensors is final when the next one with tensors is */
    size_t next = m->n_params;
    for (int i = m->n_nodes - 1; i >= 0; i--) {
        int has = m->nodes[i].type == VD_NODE_LAYER || (i == top && (m->prior.t_mean >= 0 ||
                                                                    m->prior.t_pseudo >= 0));
        next = has ? m->node_offset[i] : next;
        m->node_offset[i] = next;
    }
}

/* The shape of node i's output: an image, or (size, 1, 1). */
static void node_shape(const Vae *m, int i, int *c, int *h, int *w)
{
    const VaeNode *node = &m->nodes[i];
    const VaeShape *s = &m->shape;
    if (node->type == VD_NODE_LAYER) {
        *c = node->layer.out_c;
        *h = node->layer.out_h;
        *w = node->layer.out_w;
    } else if (i == 0 && vae_shape_image(s)) {
        *c = s->in_c;
        *h = s->in_h;
        *w = s->in_w;
    } else {
        *c = node->size;
        *h = *w = 1;
    }
}

/* Every layer reads as many values as its inputs give, and a layer that
 * sees its input as an image reads one node of that image's shape: a
 * wrongly wired graph is an error, not a read past a buffer. NULL or why. */
static const char *check_wiring(const Vae *m)
{
    static __thread char why[160];
    for (int i = 1; i < m->n_nodes; i++) {
        const VaeNode *node = &m->nodes[i];
        const Layer *l = &node->layer;
        if (node->type != VD_NODE_LAYER)
            continue;
        int c, h, w, n = in_size(m, node->in, node->n_in);
        if ((size_t)n != layer_in_size(l)) {
            snprintf(why, sizeof why, "layer %s (%s) reads %zu values, its inputs give %d",
                     node->name, l->kind->name, layer_in_size(l), n);
            return why;
        }
        if (l->in_h == 1 && l->in_w == 1)
            continue;
        node_shape(m, node->in[0], &c, &h, &w);
        if (node->n_in != 1 || c != l->in_c || h != l->in_h || w != l->in_w) {
            snprintf(why, sizeof why, "layer %s (%s) reads a %dx%dx%d image, its input is %dx%dx%d",
                     node->name, l->kind->name, l->in_h, l->in_w, l->in_c, h, w, c);
            return why;
        }
    }
    return NULL;
}

/* A bound on the parameter count and on every node's activations, so a
 * hostile checkpoint header is an error and not an allocation of terabytes:
 * 2^31 floats (8 GiB). NULL or why. */
static const char *check_size(const Vae *m)
{
    const VaeShape *s = &m->shape;
    double count = (double)s->classes * vae_top_latent(m) +
                   (s->prior == VD_PRIOR_VAMP ? (double)s->pseudo_inputs * s->n_input : 0);
    for (int i = 0; i < m->n_nodes; i++) {
        const VaeNode *node = &m->nodes[i];
        if (node->type == VD_NODE_LAYER) {
            size_t sizes[VD_LAYER_TENSORS];
            int n = layer_tensor_sizes(&node->layer, sizes);
            for (int k = 0; k < n; k++)
                count += (double)sizes[k];
        }
        if ((double)node->size > 1 << 24 || in_size(m, node->in, node->n_in) > 1 << 24)
            return "a layer of more than 2^24 values per sample";
    }
    return count > 2147483648.0 ? "more than 2^31 parameters" : NULL;
}

/* Builds m's graph and tensor table from m->shape; NULL or why not. */
const char *vae_build(Vae *m)
{
    const VaeShape *s = &m->shape;
    const char *why = vae_shape_check(s);
    if (why)
        return why;
    m->n_levels = s->latent.n;
    m->d_total = 0;
    for (int l = 0; l < m->n_levels; l++) {
        m->levels[l].d = s->latent.v[l];
        m->levels[l].eps_off = m->d_total;
        m->d_total += s->latent.v[l];
    }
    /* every layer's tensors, the prior's two and the likelihood's */
    m->tensors = vd_calloc((size_t)VD_MAX_NODES * VD_LAYER_TENSORS + 3, sizeof *m->tensors);
    VaeNode input = {.type = VD_NODE_INPUT, .size = s->n_input};
    add_node(m, &input);
    why = s->preset == VD_PRESET_CONV_HVAE ? build_conv_hvae(m)
          : m->n_levels == 1                ? build_one_level(m)
                                            : build_levels(m);
    if (!why && m->too_many)
        why = "the model has too many layers";
    if (!why)
        why = check_wiring(m);
    if (!why)
        why = check_size(m);
    if (!why)
        add_tensors(m);
    return why;
}

double vae_shape_params(const VaeShape *shape)
{
    Vae *m = vd_calloc(1, sizeof *m);
    m->shape = *shape;
    double count = vae_build(m) ? -1 : (double)m->n_params;
    vd_free(m->tensors);
    vd_free(m);
    return count;
}

/* ---- the graph, described for readers without vae-dist ------------------ */

typedef struct {
    char *buf;
    size_t used, size;
} Text;

static void put(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->used, t->size - t->used, fmt, ap);
        va_end(ap);
        if (n >= 0 && t->used + (size_t)n < t->size) {
            t->used += (size_t)n;
            return;
        }
        char *bigger = vd_calloc(2 * t->size, 1);
        memcpy(bigger, t->buf, t->used);
        vd_free(t->buf);
        t->buf = bigger;
        t->size *= 2;
    }
}

char *vae_graph_json(const Vae *m)
{
    static const char *acts[] = {"relu", "tanh", "none"};
    Text t = {vd_calloc(4096, 1), 0, 4096};
    put(&t, "{\"nodes\": [");
    for (int i = 0; i < m->n_nodes; i++) {
        const VaeNode *node = &m->nodes[i];
        const Layer *l = &node->layer;
        put(&t, "%s\n  {", i ? "," : "");
        if (node->type == VD_NODE_INPUT) {
            put(&t, "\"type\": \"input\", \"size\": %d}", node->size);
            continue;
        }
        if (node->type == VD_NODE_SAMPLE) {
            put(&t, "\"type\": \"sample\", \"level\": %d, \"size\": %d}", node->level,
                node->size);
            continue;
        }
        put(&t, "\"type\": \"layer\", \"kind\": \"%s\", \"name\": \"%s\", \"in\": [",
            l->kind->name, node->name);
        for (int j = 0; j < node->n_in; j++)
            put(&t, "%s%d", j ? ", " : "", node->in[j]);
        put(&t, "], \"act\": \"%s\", \"clamp\": [%g, %g], \"in_shape\": [%d, %d, %d], "
                "\"out_shape\": [%d, %d, %d], ",
            acts[l->act], l->clamp ? VD_LOGVAR_MIN : 0.0, l->clamp ? VD_LOGVAR_MAX : 0.0, l->in_h,
            l->in_w, l->in_c, l->out_h, l->out_w, l->out_c);
        if (l->kernel > 0) /* a convolution's window, as PyTorch's Conv2d takes it */
            put(&t, "\"kernel\": %d, \"stride\": %d, \"padding\": %d, ", l->kernel, l->stride,
                l->pad);
        else if (l->kind == &layer_upsample)
            put(&t, "\"factor\": %d, ", l->stride);
        put(&t, "\"tensors\": [");
        size_t sizes[VD_LAYER_TENSORS];
        int n = layer_tensor_sizes(l, sizes);
        for (int k = 0; k < n; k++)
            put(&t, "%s\"%s\"", k ? ", " : "", m->tensors[l->t_first + k].name);
        put(&t, "]}");
    }
    put(&t, "],\n \"levels\": [");
    for (int l = 0; l < m->n_levels; l++)
        put(&t, "%s{\"d\": %d, \"q\": %d, \"p\": %d, \"z\": %d}", l ? ", " : "",
            m->levels[l].d, m->levels[l].q, m->levels[l].p, m->levels[l].z);
    put(&t, "],\n \"out\": %d, \"top_end\": %d, \"prior\": {\"kind\": \"%s\", \"K\": %d, "
            "\"classes\": %d, \"clamp\": %d}, \"likelihood\": \"%s\"}\n",
        m->out, m->top_end,
        m->prior.K ? "vamp" : m->prior.classes ? "classes" : "standard", m->prior.K,
        m->prior.classes, vae_unit_data(&m->shape),
        m->shape.likelihood == VD_LIK_GAUSSIAN   ? "gaussian"
        : m->shape.likelihood == VD_LIK_LOGISTIC ? "logistic"
                                                 : "bernoulli");
    return t.buf;
}
