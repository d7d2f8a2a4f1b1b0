/* activation.c — relu and tanh, forward, backward and reference. See
 * activation.h. */
#include "activation.h"

#include <math.h>

#include "util.h"

VD_VECTOR_CLONES void act_forward(int act, float *x, size_t n)
{
    if (act == VD_ACT_TANH)
        for (size_t i = 0; i < n; i++)
            x[i] = tanhf(x[i]);
    else if (act == VD_ACT_RELU)
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

VD_VECTOR_CLONES void act_backward(int act, float *dx, const float *out, size_t n)
{
    if (act == VD_ACT_TANH)
        for (size_t i = 0; i < n; i++)
            dx[i] *= 1.0f - out[i] * out[i];
    else if (act == VD_ACT_RELU)
        for (size_t i = 0; i < n; i++)
            dx[i] = out[i] > 0.0f ? dx[i] : 0.0f;
}

void act_ref(int act, double *x, size_t n)
{
    for (size_t i = 0; act != VD_ACT_NONE && i < n; i++)
        x[i] = act == VD_ACT_TANH ? tanh(x[i]) : x[i] > 0.0 ? x[i] : 0.0;
}
