/* feed.c — which feed a run uses, and the one interface in front of the
 * two: feed_resident.c and feed_stream.c. See feed.h. */
#include "feed.h"

#include "comm.h"
#include "feed_resident.h"
#include "feed_stream.h"

struct Feed {
    MPI_Comm comm;
    int64_t budget;         /* FeedConfig.budget, for the start line */
    FeedResident *resident; /* one of the two */
    FeedStream *stream;
};

int feed_open(Feed **out, const FeedConfig *c, VdError *err)
{
    Feed *f = vd_calloc(1, sizeof *f);
    *out = f;
    f->comm = c->comm;
    f->budget = c->budget;
    double resident = feed_resident_need(c); /* on the fullest rank */
    MPI_Allreduce(MPI_IN_PLACE, &resident, 1, MPI_DOUBLE, MPI_MAX, c->comm);
    int mode = c->mode != VD_FEED_AUTO ? c->mode
               : resident <= (double)c->budget ? VD_FEED_RESIDENT : VD_FEED_STREAM;
    if (mode == VD_FEED_STREAM)
        f->stream = feed_stream_open(c, err);
    else if (resident > (double)c->budget)
        vd_fail(err, VD_EX_USAGE,
                "--data-mode resident needs %.3g MiB per rank, more than --data-budget "
                "(%.3g MiB): raise the budget, add ranks, or use --data-mode stream",
                resident / (1 << 20), (double)c->budget / (1 << 20));
    else
        f->resident = feed_resident_open(c, err);
    return vd_error_agree(err, c->comm);
}

int feed_epoch(Feed *f, int64_t epoch, int64_t first_step, VdError *err)
{
    if (f->resident) {
        feed_resident_epoch(f->resident, epoch);
        return vd_error_agree(err, f->comm);
    }
    feed_stream_epoch(f->stream, epoch, first_step);
    return feed_check(f, err);
}

void feed_batch(Feed *f, int64_t s, float *x, int32_t *y, int64_t *rows)
{
    if (f->resident)
        feed_resident_batch(f->resident, s, x, y, rows);
    else
        feed_stream_batch(f->stream, x, y, rows);
}

int feed_failed(Feed *f)
{
    VdError ignored = {0};
    return f->stream && feed_stream_error(f->stream, &ignored) != VD_OK;
}

int feed_check(Feed *f, VdError *err)
{
    if (f->stream)
        feed_stream_error(f->stream, err);
    return vd_error_agree(err, f->comm);
}

void feed_close(Feed *f)
{
    if (!f)
        return;
    feed_stream_close(f->stream);
    feed_resident_close(f->resident);
    vd_free(f);
}

int feed_mode(const Feed *f) { return f->resident ? VD_FEED_RESIDENT : VD_FEED_STREAM; }

int64_t feed_budget(const Feed *f) { return f->budget; }

int64_t feed_bytes(const Feed *f)
{
    return f->resident ? feed_resident_bytes(f->resident) : feed_stream_bytes(f->stream);
}

double feed_load_seconds(const Feed *f)
{
    return f->resident ? feed_resident_load_seconds(f->resident)
                       : feed_stream_load_seconds(f->stream);
}
