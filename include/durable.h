/* durable.h — replacing a file so that a crash or a full disk never leaves
 * it half-written: every file vae-dist writes whole (checkpoints, "latest",
 * figures, metrics rewrites, eval and sample results, imported data) goes
 * through here.
 *
 *   write path.tmp -> flush -> fsync -> rename over path -> fsync the directory
 *
 * A reader sees the old file or the complete new one, and after
 * durable_commit returns the new one survives a power cut. Local. */
#ifndef VD_DURABLE_H
#define VD_DURABLE_H

#include <stdio.h>

#include "util.h"

typedef struct {
    char path[VD_PATH_MAX]; /* the file to replace */
    char tmp[VD_PATH_MAX];  /* where it is written first: path ".tmp" */
    FILE *f;                /* durable_open's FILE on tmp; NULL after durable_begin */
} DurableFile;

/* Starts replacing path: durable_open opens tmp as a stdio FILE (mode "w"
 * or "wb") in d->f; durable_begin only names d->tmp, for writers that create
 * the file themselves (HDF5, libpng's own FILE). VD_OK or VD_EX_CANTCREAT. */
int durable_open(DurableFile *d, const char *path, const char *mode, VdError *err);
int durable_begin(DurableFile *d, const char *path, VdError *err);

/* Whether path can be written, before the work that makes it: its directory
 * exists and takes a new file (one is made and removed), and path is not a
 * directory. VD_OK, or VD_EX_CANTCREAT saying why. */
int durable_check(const char *path, VdError *err);

/* Flushes, fsyncs and closes tmp, renames it over path and fsyncs the
 * directory. On failure tmp is removed and err names the step that failed
 * (write, fsync, close, rename, directory fsync). VD_OK or VD_EX_IOERR. */
int durable_commit(DurableFile *d, VdError *err);

/* Abandons the write: closes d->f if open and removes tmp. */
void durable_discard(DurableFile *d);

#endif
