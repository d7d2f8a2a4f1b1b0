/* optim.h — Adam with bias correction (Kingma & Ba, 2015). Sees only flat
 * arrays: it knows nothing of the model. Local (no communication). */
#ifndef VD_OPTIM_H
#define VD_OPTIM_H

#include <stddef.h>

typedef struct {
    float lr, beta1, beta2, eps;
    float weight_decay; /* decoupled, as AdamW (Loshchilov and Hutter): 0 for Adam */
} AdamConfig;

/* One step t (1-based) on n parameters:
 *   g = grad_scale * grads;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   params -= lr wd params  (when weight_decay is not 0)
 *   params -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * grad_scale folds the 1/G of the global mean (and a clipping factor) into
 * the same pass. */
void adam_step(const AdamConfig *c, long t, size_t n, float *params, const float *grads,
               float *m, float *v, float grad_scale);

#endif
