/* objective.c — what training minimizes, per data row:
 *   the negative ELBO: recon + beta sum_l KL_l, each KL in closed form where
 *   it has one (a VampPrior's is the one-draw log q - log p);
 *   the negative importance-weighted bound (IWAE; Burda, Grosse and
 *   Salakhutdinov 2016) of k draws: -log (1/k) sum_j w_j with
 *   log w_j = -recon_j - beta sum_l (log q - log p)_l,j, all one-draw terms;
 *   its gradient is sum_j wt_j grad(-log w_j), wt the normalized weights.
 * See model_impl.h and docs/vae-math.md. Local. */
#include "model_impl.h"

#include <math.h>

TermMode objective_terms(const Objective *obj)
{
    if (obj->kind == VD_OBJ_ELBO)
        return (TermMode){1, obj->one_draw, obj->one_draw};
    return (TermMode){0, 1, 1};
}

/* The one-draw terms of draw row r, summed over the levels. */
static double draw_terms(const Vae *m, const VaeWork *w, int r)
{
    double t = 0.0;
    for (int l = 0; l < m->n_levels; l++)
        t += w->lr[l][r];
    return t;
}

static double elbo(const Objective *obj, const Vae *m, VaeWork *w, int n)
{
    double total = 0.0;
    w->use_coef = 0;
    for (int i = 0; i < n; i++) {
        double kl = obj->one_draw ? w->lr[0][i] : w->kl[0][i];
        for (int l = 1; l < m->n_levels; l++)
            kl += obj->one_draw ? w->lr[l][i] : w->kl[l][i];
        w->row_recon[i] = w->recon[i];
        w->row_kl[i] = kl;
        w->loss[i] = w->recon[i] + (double)obj->beta * kl;
        total += w->loss[i];
    }
    return total;
}

/* log sum_j exp(-(recon_j + b t_j)) over data row i's k draws, with a
 * running maximum. */
static double log_sum(const Vae *m, const VaeWork *w, int i, int k, double b)
{
    double top = -INFINITY, sum = 0.0;
    for (int j = 0; j < k; j++) {
        int r = i * k + j;
        lse_add(&top, &sum, -(w->recon[r] + b * draw_terms(m, w, r)));
    }
    return top + log(sum);
}

static double iwae(const Objective *obj, const Vae *m, VaeWork *w, int n)
{
    int k = obj->k;
    double total = 0.0, log_k = log((double)k), beta = (double)obj->beta;
    w->use_coef = 1;
    for (int i = 0; i < n; i++) {
        double lse = log_sum(m, w, i, k, beta), recon = 0.0;
        for (int j = 0; j < k; j++) {
            int r = i * k + j;
            recon += w->recon[r];
            w->coef[r] = (float)exp(-(w->recon[r] + beta * draw_terms(m, w, r)) - lse);
        }
        w->loss[i] = -(lse - log_k);
        w->row_recon[i] = recon / k;
        /* reported: the bound itself (beta = 1), less the mean reconstruction */
        w->row_kl[i] = -(log_sum(m, w, i, k, 1.0) - log_k) - w->row_recon[i];
        total += w->loss[i];
    }
    return total;
}

double objective_forward(const Objective *obj, const Vae *m, VaeWork *w, int n)
{
    return obj->kind == VD_OBJ_ELBO ? elbo(obj, m, w, n) : iwae(obj, m, w, n);
}
