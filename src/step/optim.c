/* optim.c — Adam. See optim.h. */
#include "optim.h"

#include <math.h>

#include "util.h"

VD_VECTOR_CLONES
void adam_step(const AdamConfig *c, long t, size_t n, float *params, const float *grads,
               float *m, float *v, float grad_scale)
{
    /* bias corrections in double: 1 - b^t loses digits in float for small t */
    float step = (float)(c->lr / (1.0 - pow(c->beta1, (double)t)));
    float vcorr = (float)(1.0 / (1.0 - pow(c->beta2, (double)t)));
    float b1 = c->beta1, b2 = c->beta2, eps = c->eps, decay = c->lr * c->weight_decay;
    if (c->weight_decay != 0.0f) {
        for (size_t i = 0; i < n; i++) {
            float g = grads[i] * grad_scale;
            float mi = b1 * m[i] + (1.0f - b1) * g;
            float vi = b2 * v[i] + (1.0f - b2) * g * g;
            m[i] = mi;
            v[i] = vi;
            float p = params[i] - decay * params[i];
            params[i] = p - step * mi / (sqrtf(vi * vcorr) + eps);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float g = grads[i] * grad_scale;
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] -= step * mi / (sqrtf(vi * vcorr) + eps);
    }
}
