/* activation.h — the elementwise activations the graph applies after a
 * layer, their derivatives, and their double references. Local. */
#ifndef VD_ACTIVATION_H
#define VD_ACTIVATION_H

#include <stddef.h>

typedef enum { VD_ACT_RELU = 0, VD_ACT_TANH = 1, VD_ACT_NONE = 2 } VdActivation;

/* x (n) = act(x); dx (n) *= act'(.) from the activation's output out; and
 * the double reference. VD_ACT_NONE does nothing. */
void act_forward(int act, float *x, size_t n);
void act_backward(int act, float *dx, const float *out, size_t n);
void act_ref(int act, double *x, size_t n);

/* sigmoid(a), the derivative of softplus; for the gates and the Bernoulli mean. */
static inline float act_sigmoid(float a)
{
    return 1.0f / (1.0f + __builtin_expf(-a));
}

#endif
