/* durable.c — write to a temporary name, sync, rename. See durable.h. */
#include "durable.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int durable_begin(DurableFile *d, const char *path, VdError *err)
{
    d->f = NULL;
    d->tmp[0] = '\0';
    int len = snprintf(d->path, sizeof d->path, "%s", path);
    if (len < 0 || (size_t)len + 4 >= sizeof d->tmp)
        return vd_fail(err, VD_EX_CANTCREAT, "cannot write %.200s...: path too long", path);
    snprintf(d->tmp, sizeof d->tmp, "%s.tmp", path);
    return VD_OK;
}

int durable_open(DurableFile *d, const char *path, const char *mode, VdError *err)
{
    if (durable_begin(d, path, err) != VD_OK)
        return err->code;
    d->f = fopen(d->tmp, mode);
    if (!d->f)
        return vd_fail(err, VD_EX_CANTCREAT, "cannot create %s: %s", d->tmp, strerror(errno));
    return VD_OK;
}

int durable_check(const char *path, VdError *err)
{
    DurableFile d;
    if (durable_begin(&d, path, err) != VD_OK)
        return err->code;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return vd_fail(err, VD_EX_CANTCREAT, "cannot write %s: it is a directory", path);
    char probe[VD_PATH_MAX + 8];
    snprintf(probe, sizeof probe, "%s.XXXXXX", path);
    int fd = mkstemp(probe);
    if (fd >= 0) {
        close(fd);
        unlink(probe);
        return VD_OK;
    }
    int why = errno;
    char dir[VD_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    if (why == ENOENT)
        return vd_fail(err, VD_EX_CANTCREAT, "cannot write %s: there is no directory %s", path,
                       dirname(dir));
    return vd_fail(err, VD_EX_CANTCREAT, "cannot write %s: %s", path, strerror(why));
}

/* fsync of what path names (a directory with dir); 0 or -1 with errno. */
static int sync_path(const char *path, int dir)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_WRONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd), saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int durable_commit(DurableFile *d, VdError *err)
{
    const char *step = NULL;
    if (d->f) {
        int bad = ferror(d->f);
        if (bad || fflush(d->f) != 0)
            step = "write";
        else if (fsync(fileno(d->f)) != 0)
            step = "fsync";
        int saved = errno;
        if (fclose(d->f) != 0 && !step) {
            step = "close";
            saved = errno;
        }
        d->f = NULL;
        errno = saved;
    } else if (sync_path(d->tmp, 0) != 0) {
        step = "fsync";
    }
    if (!step && rename(d->tmp, d->path) != 0)
        step = "rename";
    if (step) {
        int saved = errno;
        unlink(d->tmp);
        return vd_fail(err, VD_EX_IOERR, "writing %s failed at %s: %s", d->path, step,
                       saved ? strerror(saved) : "disk full?");
    }
    char dir[VD_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", d->path);
    /* some filesystems cannot sync a directory (EINVAL): the rename stands */
    if (sync_path(dirname(dir), 1) != 0 && errno != EINVAL && errno != ENOTSUP)
        return vd_fail(err, VD_EX_IOERR, "writing %s failed at directory fsync: %s", d->path,
                       strerror(errno));
    return VD_OK;
}

void durable_discard(DurableFile *d)
{
    if (d->f)
        fclose(d->f);
    d->f = NULL;
    if (d->tmp[0])
        unlink(d->tmp);
}
