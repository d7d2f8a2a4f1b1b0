/* nolock.c — an LD_PRELOAD library for tests/no-locks.sh: flock() fails with
 * ENOLCK, as on NFS mounts without a lock manager and Lustre without
 * flock support. */
#include <errno.h>
#include <sys/file.h>

int flock(int fd, int operation)
{
    (void)fd;
    (void)operation;
    errno = ENOLCK;
    return -1;
}
