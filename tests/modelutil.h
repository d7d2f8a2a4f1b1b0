/* modelutil.h — model shapes for the tests, from option text. */
#ifndef VD_MODELUTIL_H
#define VD_MODELUTIL_H

#include <stdarg.h>
#include <stdlib.h>

#include "model_desc.h"

/* A shape of D inputs with the model options' defaults, then the pairs of
 * option names and values that follow (NULL-terminated), as the command
 * line would set them; aborts on a bad pair (a test's own mistake). */
static inline VaeShape test_shape(int D, ...)
{
    VaeShape s;
    memset(&s, 0, sizeof s);
    vae_shape_defaults(&s);
    s.n_input = D;
    va_list ap;
    va_start(ap, D);
    for (const char *name; (name = va_arg(ap, const char *));) {
        const char *value = va_arg(ap, const char *);
        if (vae_shape_set(&s, name, value) != 0) {
            fprintf(stderr, "test_shape: bad --%s %s\n", name, value);
            abort();
        }
    }
    va_end(ap);
    return s;
}

#endif
