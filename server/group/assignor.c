/*
 * assignor.c — the "uniform" and "range" server assignors (see assignor.h).
 *
 * Owns the arithmetic of assignments. Must not: allocate anything that
 * outlives a call except the members' output sets.
 */
#include "assignor.h"
#include "sstr.h"

#include <stdlib.h>
#include <string.h>

static int subscribed(const srv_asg_member *m, const char *topic)
{
    int lo = 0, hi = m->nsubs - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = srv_scmp(m->subs[mid], topic);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

static int topic_index(const srv_ctopic *topics, int ntopics, const kp_uuid *id)
{
    for (int i = 0; i < ntopics; i++)
        if (memcmp(topics[i].id.b, id->b, 16) == 0)
            return i;
    return -1;
}

/* Uniform: keep every member's previous partitions that are still valid,
 * hand the free ones to the least loaded eligible member, then move
 * partitions from members holding at least two more than an eligible peer
 * until no such pair is left. Each move lowers the sum of squared counts, so
 * the loop ends; with identical subscriptions counts differ by at most one. */
static int assign_uniform(srv_asg_member *ms, int n, const srv_ctopic *topics, int ntopics)
{
    int total = 0;
    for (int t = 0; t < ntopics; t++)
        total += topics[t].nparts > 0 ? topics[t].nparts : 0;
    int *base = calloc((size_t)ntopics + 1, sizeof(int));
    int *owner = malloc(((size_t)total + 1) * sizeof(int));
    int *count = calloc((size_t)n + 1, sizeof(int));
    char *elig = calloc((size_t)n * (size_t)ntopics + 1, 1);
    int rc = base && owner && count && elig ? 0 : -1;
    for (int t = 0, acc = 0; rc == 0 && t < ntopics; t++) {
        base[t] = acc;
        acc += topics[t].nparts > 0 ? topics[t].nparts : 0;
        for (int m = 0; m < n; m++)
            elig[(size_t)m * (size_t)ntopics + (size_t)t] = (char)subscribed(&ms[m], topics[t].name);
    }
    for (int i = 0; rc == 0 && i < total; i++)
        owner[i] = -1;
    for (int m = 0; rc == 0 && m < n; m++) {
        for (int k = 0; ms[m].prev && k < ms[m].prev->n; k++) {
            const srv_tp *tp = &ms[m].prev->v[k];
            int t = topic_index(topics, ntopics, &tp->topic);
            if (t < 0 || tp->partition < 0 || tp->partition >= topics[t].nparts ||
                !elig[(size_t)m * (size_t)ntopics + (size_t)t])
                continue;
            int *o = &owner[base[t] + tp->partition];
            if (*o < 0) {
                *o = m;
                count[m]++;
            }
        }
    }
    for (int t = 0; rc == 0 && t < ntopics; t++) {
        for (int p = 0; p < topics[t].nparts; p++) {
            if (owner[base[t] + p] >= 0)
                continue;
            int best = -1;
            for (int m = 0; m < n; m++)
                if (elig[(size_t)m * (size_t)ntopics + (size_t)t] && (best < 0 || count[m] < count[best]))
                    best = m;
            if (best >= 0) {
                owner[base[t] + p] = best;
                count[best]++;
            }
        }
    }
    for (int changed = 1; rc == 0 && changed;) {
        changed = 0;
        for (int t = 0; t < ntopics; t++) {
            for (int p = 0; p < topics[t].nparts; p++) {
                int a = owner[base[t] + p], best = -1;
                if (a < 0)
                    continue;
                for (int m = 0; m < n; m++)
                    if (elig[(size_t)m * (size_t)ntopics + (size_t)t] && (best < 0 || count[m] < count[best]))
                        best = m;
                if (best >= 0 && count[a] > count[best] + 1) {
                    owner[base[t] + p] = best;
                    count[a]--;
                    count[best]++;
                    changed = 1;
                }
            }
        }
    }
    for (int t = 0; rc == 0 && t < ntopics; t++)
        for (int p = 0; p < topics[t].nparts && rc == 0; p++) {
            int o = owner[base[t] + p];
            if (o >= 0)
                rc = srv_tps_add(&ms[o].out, topics[t].id, p);
        }
    free(base);
    free(owner);
    free(count);
    free(elig);
    return rc;
}

static int by_member_id(const void *a, const void *b)
{
    return srv_scmp((*(const srv_asg_member *const *)a)->id, (*(const srv_asg_member *const *)b)->id);
}

/* Range: per topic, the subscribers sorted by member id each take a
 * contiguous range; the first (partitions % subscribers) take one more. */
static int assign_range(srv_asg_member *ms, int n, const srv_ctopic *topics, int ntopics)
{
    srv_asg_member **subs = malloc(((size_t)n + 1) * sizeof(*subs));
    if (!subs)
        return -1;
    int rc = 0;
    for (int t = 0; rc == 0 && t < ntopics; t++) {
        int k = 0;
        for (int m = 0; m < n; m++)
            if (subscribed(&ms[m], topics[t].name))
                subs[k++] = &ms[m];
        if (k == 0)
            continue;
        qsort(subs, (size_t)k, sizeof(*subs), by_member_id);
        int32_t np = topics[t].nparts > 0 ? topics[t].nparts : 0;
        int32_t q = np / k, r = np % k, p = 0;
        for (int i = 0; i < k && rc == 0; i++) {
            int32_t take = q + (i < r ? 1 : 0);
            for (int32_t j = 0; j < take && rc == 0; j++)
                rc = srv_tps_add(&subs[i]->out, topics[t].id, p++);
        }
    }
    free(subs);
    return rc;
}

int srv_assign(kp_str name, srv_asg_member *ms, int n, const srv_ctopic *topics, int ntopics)
{
    for (int m = 0; m < n; m++)
        ms[m].out.n = 0;
    if (kp_str_eq(name, "range"))
        return assign_range(ms, n, topics, ntopics);
    return assign_uniform(ms, n, topics, ntopics);
}
