/*
 * main.c — the broker process: configuration, start-up (data dir, cluster
 * id, metadata replay, partitions, listeners), the shard threads, and a
 * clean shutdown on SIGTERM/SIGINT.
 *
 * Start-up may block on the disk (it runs before any client is served);
 * nothing here runs on a shard's loop. Every way out of main() but --help
 * says why in the log first (a broker that exits silently cannot be fixed).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "broker.h"
#include "group/coord.h"
#include "group/group.h"
#include "handlers/dispatch.h"
#include "logging.h"
#include "metrics_http.h"
#include "controller.h"
#include "crash.h"
#include "quorum.h"
#include "dyncfg.h"
#include "partition.h"
#include "oauth.h"
#include "sasl.h"
#include "shard.h"
#include "share_coord.h"
#include "srv_assert.h"
#include "tls.h"

static int mkdir_p(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Kafka's ".lock": one process per log dir. Without it a broker started
 * while another was still shutting down recovered (and truncated) segments
 * the first one was still writing. The lock is an open-file-description
 * fcntl lock on the whole file: it conflicts with the POSIX record lock
 * Apache Kafka takes on the same file (Java's FileChannel.tryLock), so
 * kbroker and Kafka also keep off each other's dirs, which flock() would
 * not (flock and fcntl locks are independent on Linux). Unlike a classic
 * POSIX lock it belongs to this open file, so it also refuses a second open
 * in this process and no unrelated close() of the file can drop it. The fd
 * is never closed: the kernel releases the lock when the process is gone,
 * not before its last write. */
static int lock_log_dir(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        srv_error("cannot open lock file %s: %s", path, strerror(errno));
        return -1;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        int e = errno;
        if (e == EAGAIN || e == EACCES)
            srv_error("cannot lock %s: log dir %s is in use by another broker process (kbroker or "
                      "Apache Kafka) or another user of the directory; refusing to start",
                      path, dir);
        else
            srv_error("cannot lock %s: %s", path, strerror(e));
        close(fd);
        return -1;
    }
    return 0;
}

/* meta.properties keeps the cluster id across restarts, as Kafka's does. */
static int load_cluster_id(srv_broker *b)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/meta.properties", b->cfg.log_dirs[0]);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "cluster.id=%31s", b->cluster_id) == 1)
                break;
        fclose(f);
        if (b->cluster_id[0])
            return 0;
    }
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t r[16];
    if (b->cfg.nvoters) {
        /* The members of a quorum are started from the same voters list
         * and must report one cluster id: derived from that list (Kafka
         * has `kafka-storage format --cluster-id` give every node one). */
        uint8_t h[SHA256_DIGEST_LENGTH];
        char v[SRV_MAX_VOTERS * 300] = "kbroker-quorum";
        size_t off = strlen(v);
        for (int i = 0; i < b->cfg.nvoters && off < sizeof(v); i++)
            off += (size_t)snprintf(v + off, sizeof(v) - off, ",%d@%s:%u", (int)b->cfg.voters[i].id,
                                    b->cfg.voters[i].host, (unsigned)b->cfg.voters[i].port);
        SHA256((const unsigned char *)v, off < sizeof(v) ? off : sizeof(v) - 1, h);
        memcpy(r, h, sizeof(r));
    } else if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
        return -EIO;
    }
    /* Kafka's form: 16 random bytes in URL-safe base64 without padding. */
    uint32_t acc = 0;
    int nbits = 0, o = 0;
    for (int i = 0; i < 16; i++) {
        acc = (acc << 8) | r[i];
        nbits += 8;
        while (nbits >= 6) {
            nbits -= 6;
            b->cluster_id[o++] = b64[(acc >> nbits) & 63];
        }
    }
    if (nbits > 0)
        b->cluster_id[o++] = b64[(acc << (6 - nbits)) & 63];
    b->cluster_id[o] = 0;
    char tmp[4300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "#Written by kbroker\nversion=1\ncluster.id=%s\nnode.id=%d\n", b->cluster_id,
            (int)b->cfg.node_id);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        return -EIO;
    }
    fclose(f);
    return rename(tmp, path) == 0 ? 0 : -errno;
}

static int bind_one(const srv_listener *l, int port, int *out_port)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    int rc = getaddrinfo(l->host[0] ? l->host : NULL, ps, &hints, &res);
    if (rc != 0) {
        srv_error("cannot resolve listener host '%s': %s", l->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            srv_error("cannot create a socket for %s:%d: %s", l->host[0] ? l->host : "*", port,
                      strerror(errno));
            continue;
        }
        int one = 1;
        /* SO_REUSEADDR only lets us rebind over our own TIME_WAIT sockets after
         * a restart. No SO_REUSEPORT: with it a second broker could bind the
         * port while we still listen and take half of our clients. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            getsockname(fd, (struct sockaddr *)&ss, &sl);
            *out_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                                 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
            break;
        }
        srv_error("cannot listen on %s:%d: %s", l->host[0] ? l->host : "*", port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* One listening socket per listener; conn.c spreads its connections over
 * the shards. */
static int bind_listeners(srv_broker *b)
{
    b->nlisteners = b->cfg.n_listeners;
    b->listen_fds = calloc((size_t)b->nlisteners, sizeof(int));
    b->bound_ports = calloc((size_t)b->nlisteners, sizeof(int));
    if (!b->listen_fds || !b->bound_ports) {
        srv_error("out of memory setting up listeners");
        return -ENOMEM;
    }
    for (int i = 0; i < b->nlisteners; i++) {
        int fd = bind_one(&b->cfg.listeners[i], b->cfg.listeners[i].port, &b->bound_ports[i]);
        if (fd < 0)
            return -EADDRINUSE;
        b->listen_fds[i] = fd;
    }
    return 0;
}

/* The soft RLIMIT_NOFILE goes up to the hard limit: every partition,
 * segment and connection is a descriptor, and the soft default (often 1024)
 * is far below what a broker needs. Returns the limit now in force. */
static rlim_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        srv_warn("getrlimit(RLIMIT_NOFILE): %s; assuming 1024 file descriptors", strerror(errno));
        return 1024;
    }
    rlim_t was = rl.rlim_cur;
    /* An unlimited hard limit cannot be set (fs.nr_open caps it). */
    rlim_t want = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
    if (rl.rlim_cur < want) {
        struct rlimit nl = {want, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
            rl.rlim_cur = want;
        else
            srv_warn("cannot raise the RLIMIT_NOFILE soft limit from %llu to %llu: %s",
                     (unsigned long long)was, (unsigned long long)want, strerror(errno));
    }
    char hard[32];
    if (rl.rlim_max == RLIM_INFINITY)
        snprintf(hard, sizeof(hard), "unlimited");
    else
        snprintf(hard, sizeof(hard), "%llu", (unsigned long long)rl.rlim_max);
    srv_info("file descriptors: RLIMIT_NOFILE soft limit %llu (was %llu), hard limit %s",
             (unsigned long long)rl.rlim_cur, (unsigned long long)was, hard);
    return rl.rlim_cur;
}

/* Segment files get a budget (LRU-closed beyond it, storage/fdcache.c) so
 * that partitions are not limited by descriptors and connections keep the
 * rest; each shard owns its slice. */
static void set_file_budget(srv_broker *b, rlim_t nofile)
{
    unsigned long long total = b->cfg.log_max_open_files > 0 ? (unsigned long long)b->cfg.log_max_open_files
                                                             : (unsigned long long)nofile / 2;
    unsigned long long per = total / (unsigned long long)b->nshards;
    if (per < 4)
        per = 4; /* an active and a rolled segment, plus reads of older ones */
    if (per > UINT32_MAX)
        per = UINT32_MAX;
    for (int i = 0; i < b->nshards; i++)
        st_log_set_max_open_files(b->shards[i].io, (unsigned)per);
    unsigned long long used = per * (unsigned long long)b->nshards;
    if (used + 64 > (unsigned long long)nofile)
        srv_warn("log.max.open.files=%d leaves fewer than 64 of %llu descriptors for connections",
                 (int)b->cfg.log_max_open_files, (unsigned long long)nofile);
    /* The rest, minus what the broker opens besides (per shard: epoll,
     * eventfds, io_uring, listeners; recovery's and the background thread's
     * short-lived files; the metadata log), is for connections. */
    unsigned long long reserve = 64 + 16 * (unsigned long long)b->nshards;
    unsigned long long conns =
        nofile > used + reserve ? nofile - used - reserve : (unsigned long long)b->nshards;
    /* max.connections itself is kept broker-wide by the accepting shard
     * (throttle_conn.h); this bound is only the descriptors' budget. */
    unsigned long long cps = (conns + (unsigned long long)b->nshards - 1) / (unsigned long long)b->nshards;
    b->max_conns_per_shard = cps > INT32_MAX ? INT32_MAX : (int)(cps > 0 ? cps : 1);
    srv_info("segment files: at most %llu open (%llu per shard, log.max.open.files=%d%s); idle ones are "
             "closed and reopened on demand; connections: at most %d per shard",
             used, per, (int)b->cfg.log_max_open_files, b->cfg.log_max_open_files > 0 ? "" : " = auto",
             b->max_conns_per_shard);
}

/* A shard's partitions, opened before its thread runs (start-up only: the
 * shard's state is touched by this thread alone until then). */
static void *open_partitions(void *arg)
{
    srv_shard *s = arg;
    srv_partmap_reconcile(s->parts, s->meta);
    return NULL;
}

static int has_mech(const srv_broker *b, int l, int mech)
{
    for (int m = 0; m < b->n_sasl_mechs[l]; m++)
        if (b->sasl_mechs[l][m] == mech)
            return 1;
    return 0;
}

/* The enabled mechanisms of SASL listener l (config.c has checked the
 * names) and connections.max.reauth.ms per mechanism: the mechanism- and
 * listener-prefixed key, then the listener-prefixed, then the plain one. */
static int load_sasl_mechs(srv_broker *b, int l)
{
    const char *ln = b->cfg.listeners[l].name;
    const char *mechs = srv_config_sec(&b->cfg, ln, "sasl.enabled.mechanisms");
    char item[64];
    srv_cfgk_list_iter it = {mechs ? mechs : "", !mechs || !*mechs};
    while (srv_cfgk_list_next(&it, item, sizeof(item))) {
        int m = srv_sasl_mech_from_name(item);
        SRV_ASSERT(m != SRV_MECH_NONE, "listener %s: mechanism '%.60s' passed config.c's check", ln, item);
        if (has_mech(b, l, m) || b->n_sasl_mechs[l] == SRV_MECH_COUNT)
            continue;
        b->sasl_mechs[l][b->n_sasl_mechs[l]++] = (uint8_t)m;
        /* The mechanism prefix is its name in lower case, as Kafka's
         * listener.name.<l>.<mechanism>.<key> overrides spell it. */
        char key[96], lower[32];
        const char *name = srv_sasl_mech_name(m);
        size_t i = 0;
        for (; name[i] && i + 1 < sizeof(lower); i++)
            lower[i] = (char)tolower((unsigned char)name[i]);
        lower[i] = 0;
        snprintf(key, sizeof(key), "%s.connections.max.reauth.ms", lower);
        const char *v = srv_config_sec(&b->cfg, ln, key);
        if (!v)
            v = srv_config_sec(&b->cfg, ln, "connections.max.reauth.ms");
        int64_t ms = 0;
        if (v && (srv_cfgk_parse_i64(v, &ms) != 0 || ms < 0)) {
            srv_error("listener %s: connections.max.reauth.ms '%.40s' is not a number of milliseconds >= 0; "
                      "exiting",
                      ln, v);
            return -1;
        }
        b->reauth_ms[l][m] = ms;
    }
    return 0;
}

/* TLS contexts and SASL users of every listener, before anything else
 * starts: a bad key or JAAS line fails the start, as in Kafka. This reads
 * key files, which is fine here and nowhere later. */
/* Dynamic key and trust store locations (IncrementalAlterConfigs, kept in
 * the metadata log) win over server.properties, as in Kafka: applied once
 * the log is replayed, before any shard runs (loading files here is start-up
 * work). A store that cannot be used any more is logged and the static one
 * kept, so that a broker still starts and can be corrected. */
static void apply_dynamic_tls(srv_broker *b, const srv_meta *m)
{
    for (int i = 0; i < b->cfg.n_listeners; i++) {
        const char *name = b->cfg.listeners[i].name;
        char kk[SRV_CONFIG_NAME_MAX + 64], tk[SRV_CONFIG_NAME_MAX + 64];
        if (!b->tls_ctx[i] ||
            srv_dyncfg_listener_key(kk, sizeof(kk), name, strlen(name), "ssl.keystore.location") ||
            srv_dyncfg_listener_key(tk, sizeof(tk), name, strlen(name), "ssl.truststore.location"))
            continue;
        const char *ks = srv_dyncfg_effective(m->dyncfg, b->cfg.node_id, kk, NULL);
        const char *ts = srv_dyncfg_effective(m->dyncfg, b->cfg.node_id, tk, NULL);
        if (!ks && !ts)
            continue;
        char msg[600];
        if (srv_tls_slot_reload(b->tls_ctx[i], ks, ts, 0, msg, sizeof(msg)) != 0)
            srv_error(
                "listener %s: the dynamic key or trust store (%s%s%s) cannot be used, serving the static "
                "one: %s",
                name, ks ? ks : "", ks && ts ? ", " : "", ts ? ts : "", msg);
    }
}

static int load_security(srv_broker *b)
{
    char err[512];
    const char *cls = srv_config_sec_global(&b->cfg, "authorizer.class.name");
    const char *everyone = srv_config_sec_global(&b->cfg, "allow.everyone.if.no.acl.found");
    int on = cls && cls[0];
    if (on && !srv_authz_class_ok(cls)) {
        srv_error("authorizer.class.name=%s is not supported: the only authorizer is "
                  "org.apache.kafka.metadata.authorizer.StandardAuthorizer; exiting",
                  cls);
        return -1;
    }
    if (everyone && strcmp(everyone, "true") != 0 && strcmp(everyone, "false") != 0) {
        srv_error("allow.everyone.if.no.acl.found=%s: expected true or false; exiting", everyone);
        return -1;
    }
    if (srv_authz_cfg_init(&b->authz, on, everyone && strcmp(everyone, "true") == 0,
                           srv_config_sec_global(&b->cfg, "super.users"), err, sizeof(err)) != 0) {
        srv_error("%s; exiting", err);
        return -1;
    }
    if (on)
        srv_info("authorizer: StandardAuthorizer, %d super users, allow.everyone.if.no.acl.found=%s",
                 b->authz.nsuper, b->authz.allow_if_no_acl ? "true" : "false");
    for (int i = 0; i < b->cfg.n_listeners; i++) {
        const srv_listener *l = &b->cfg.listeners[i];
        if (SRV_PROTO_IS_TLS(l->proto)) {
            b->tls_ctx[i] = srv_tls_slot_new(&b->cfg, l->name, b->nshards, err, sizeof(err));
            if (!b->tls_ctx[i]) {
                srv_error("%s; exiting", err);
                return -1;
            }
        }
        if (SRV_PROTO_IS_SASL(l->proto) && load_sasl_mechs(b, i) != 0)
            return -1;
        if (SRV_PROTO_IS_SASL(l->proto) && b->oauth[i] == NULL && has_mech(b, i, SRV_MECH_OAUTHBEARER) &&
            srv_oauth_load(&b->cfg, l->name, &b->oauth[i], err, sizeof(err)) != 0) {
            srv_error("%s; exiting", err);
            return -1;
        }
        if (SRV_PROTO_IS_SASL(l->proto) && has_mech(b, i, SRV_MECH_PLAIN)) {
            const char *jaas = srv_config_sec(&b->cfg, l->name, "plain.sasl.jaas.config");
            if (!jaas ||
                srv_jaas_parse_plain(jaas, strlen(jaas), &b->plain_users[i], err, sizeof(err)) != 0) {
                srv_error("listener %s: %s; exiting", l->name, jaas ? err : "no JAAS configuration");
                return -1;
            }
            if (srv_plain_users_count(b->plain_users[i]) == 0)
                srv_warn(
                    "listener %s: the PLAIN JAAS configuration defines no user_<name> option: nobody can "
                    "authenticate",
                    l->name);
        }
    }
    return 0;
}

static void free_security(srv_broker *b)
{
    for (int i = 0; i < SRV_MAX_LISTENERS; i++) {
        srv_tls_slot_free(b->tls_ctx[i]);
        srv_plain_users_free(b->plain_users[i]);
        srv_oauth_free(b->oauth[i]);
    }
}

/* Per listener, the address clients of that listener are told to use: the
 * advertised listener of the same name (Kafka's rule), else the listener
 * itself; an empty host is "localhost", a port of 0 the port we got. */
static void resolve_advertised(srv_broker *b)
{
    for (int i = 0; i < b->nlisteners; i++) {
        const srv_listener *l = &b->cfg.listeners[i];
        const srv_listener *a = l;
        for (int j = 0; j < b->cfg.n_advertised; j++)
            if (strcmp(b->cfg.advertised[j].name, l->name) == 0)
                a = &b->cfg.advertised[j];
        snprintf(b->adv[i].host, sizeof(b->adv[i].host), "%s", a->host[0] ? a->host : "localhost");
        b->adv[i].port = a->port ? a->port : b->bound_ports[i];
    }
}

/* A share group's coordinator shard, as srv_gcall_send routes its calls: the
 * owner of its __consumer_offsets partition. */
static int share_route(srv_broker *b, kp_str group_id)
{
    const srv_topic *t = srv_meta_topic(b->shards[0].meta, kp_str_c(SRV_OFFSETS_TOPIC));
    if (!t)
        return -1;
    return srv_partition_owner(b->nshards, &t->id, srv_group_partition_for(group_id, t->nparts));
}

int main(int argc, char **argv)
{
    static srv_broker broker;
    srv_broker *b = &broker;
    char err[512];
    /* Fetched records stay in their read buffers (up to a partition's
     * max_bytes each) until the socket has taken them, and are freed on the
     * connection's shard: with glibc's defaults such buffers come from fresh
     * mmaps or trimmed heap, and every read paid the kernel's page faults and
     * zeroing again (a third of the broker's consume CPU). Keep them in the
     * heap for reuse. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    srv_crash_report_install();
    srv_config_init(&b->cfg, srv_log_line);
    int rc = srv_config_parse_args(argc, argv, &b->cfg, err, sizeof(err));
    if (rc == SRV_CONFIG_HELP) {
        fputs(srv_config_usage(), stdout);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "kbroker: %s\n", err);
        fprintf(stderr, "Run 'kbroker --help' for usage.\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    b->nshards = b->cfg.shards > 0 ? b->cfg.shards : (ncpu > 0 ? (int)ncpu : 1);
    if (load_security(b) != 0)
        return 1;
    rlim_t nofile = raise_nofile();
    /* Every dir is locked before anything in any of them is read. */
    for (int i = 0; i < b->cfg.n_log_dirs; i++) {
        if ((rc = mkdir_p(b->cfg.log_dirs[i])) != 0) {
            srv_error("cannot create log dir %s: %s; exiting", b->cfg.log_dirs[i], strerror(-rc));
            return 1;
        }
        if (lock_log_dir(b->cfg.log_dirs[i]) != 0)
            return 1;
    }
    if ((rc = load_cluster_id(b)) != 0) {
        srv_error("cannot read or write %s/meta.properties: %s; exiting", b->cfg.log_dirs[0], strerror(-rc));
        return 1;
    }
    b->pid_base = srv_now_ms() * 1024;
    b->pid_stride = 1;
    b->pid_slot = 0;
    for (int i = 0; b->cfg.nvoters >= 2 && i < b->cfg.nvoters; i++)
        if (b->cfg.voters[i].id == b->cfg.node_id) {
            b->pid_stride = b->cfg.nvoters;
            b->pid_slot = i;
        }
    b->features_epoch = srv_now_ms();
    b->dispatch = srv_dispatch;
    b->conn_closed = srv_conn_closed;
    st_set_log_line(srv_log_line);

    b->shards = calloc((size_t)b->nshards, sizeof(srv_shard));
    if (!b->shards) {
        srv_error("out of memory allocating %d shards; exiting", b->nshards);
        return 1;
    }
    for (int i = 0; i < b->nshards; i++)
        if ((rc = srv_shard_init(b, &b->shards[i], i)) != 0) {
            srv_error("cannot set up shard %d: %s; exiting", i, strerror(rc < 0 ? -rc : rc));
            return 1;
        }
    set_file_budget(b, nofile);
    if ((rc = srv_controller_open(b)) != 0) {
        srv_error("cannot load the metadata log from %s: %s; exiting", b->cfg.log_dirs[0], st_strerror(rc));
        return 1;
    }
    if (b->cfg.nvoters) {
        /* The metadata log is the quorum's: the shards start from what it
         * replays to (bounded wait, quorum.c). */
        srv_meta *qm = NULL;
        if ((rc = srv_quorum_start(b, &qm)) != 0) {
            srv_error("cannot start the metadata quorum: %s; exiting", strerror(-rc));
            return 1;
        }
        srv_ctl_adopt(b->ctl, qm);
    }
    {
        srv_meta *m = srv_controller_current(b);
        apply_dynamic_tls(b, m);
        srv_meta_unref(m);
    }
    /* Every shard starts from the replayed metadata and opens its partitions
     * (recovery of each log happens here, before any client connects), all
     * shards at once: with 100,000 partitions the opens are most of the
     * start. */
    pthread_t *openers = calloc((size_t)b->nshards, sizeof(pthread_t));
    int *started = calloc((size_t)b->nshards, sizeof(int));
    for (int i = 0; i < b->nshards; i++) {
        srv_shard *s = &b->shards[i];
        s->meta = srv_controller_current(b);
        started[i] = openers && started && pthread_create(&openers[i], NULL, open_partitions, s) == 0;
        if (!started[i])
            open_partitions(s);
    }
    for (int i = 0; i < b->nshards; i++)
        if (started && started[i])
            pthread_join(openers[i], NULL);
    free(openers);
    free(started);
    if ((rc = srv_groups_start(b)) != 0) {
        srv_error("cannot load the consumer groups: %s; exiting", st_strerror(rc));
        return 1;
    }
    if ((rc = srv_txns_start(b, srv_txn_marker_append)) != 0) {
        srv_error("cannot load the transactional ids: %s; exiting", st_strerror(rc));
        return 1;
    }
    if ((rc = srv_share_state_start(b, share_route)) != 0) {
        srv_error("cannot load the share-group state: %s; exiting", st_strerror(rc));
        return 1;
    }
    if (bind_listeners(b) != 0) {
        srv_error("cannot listen on the configured listeners; exiting");
        return 1;
    }
    resolve_advertised(b);

    /* Only main receives SIGTERM/SIGINT: shards inherit a blocked mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < b->nshards; i++)
        if ((rc = srv_shard_start(&b->shards[i])) != 0) {
            srv_error("cannot start shard thread %d: %s; exiting", i, strerror(-rc));
            return 1;
        }
    while (__atomic_load_n(&b->ready_count, __ATOMIC_ACQUIRE) < b->nshards)
        usleep(1000);
    /* Key and trust store files are watched off the loops, so a renewed
     * certificate reaches new connections without a restart. */
    srv_tls_watch *tls_watch =
        srv_tls_watch_start(b->tls_ctx, b->cfg.n_listeners, b->cfg.ssl_reload_interval_ms);
    if ((rc = srv_metrics_start(b)) != 0) {
        srv_error("cannot start the metrics endpoint: %s; stopping", strerror(-rc));
        __atomic_store_n(&b->stopping, 1, __ATOMIC_RELEASE);
    }
    if (!__atomic_load_n(&b->stopping, __ATOMIC_ACQUIRE)) {
        char where[1024] = "";
        size_t off = 0;
        for (int i = 0; i < b->nlisteners && off < sizeof(where); i++)
            off += (size_t)snprintf(
                where + off, sizeof(where) - off, "%s%s://%s:%d", i ? "," : "", b->cfg.listeners[i].name,
                b->cfg.listeners[i].host[0] ? b->cfg.listeners[i].host : "0.0.0.0", b->bound_ports[i]);
        srv_info("kbroker ready: listening on %s (advertised %s:%d), node.id=%d, %d shards, log.dirs=%s, "
                 "cluster.id=%s",
                 where, b->adv[0].host, b->adv[0].port, (int)b->cfg.node_id, b->nshards, b->cfg.log_dirs[0],
                 b->cluster_id);
        int sig = 0;
        sigwait(&set, &sig);
        srv_info("signal %d: shutting down", sig);
        __atomic_store_n(&b->stopping, 1, __ATOMIC_RELEASE);
    }
    for (int i = 0; i < b->nshards; i++)
        srv_shard_join(&b->shards[i]);
    /* Every callback of work in flight runs now, while what it touches
     * (partitions, groups, transaction and share state) still exists; only
     * then is that state freed. */
    b->draining = 1;
    srv_controller_drain(b);
    for (int i = 0; i < b->nshards; i++)
        srv_partmap_drain(b->shards[i].parts);
    srv_tls_watch_stop(tls_watch);
    srv_metrics_stop(b);
    srv_groups_stop(b);
    srv_txns_stop(b);
    srv_share_state_stop(b);
    srv_quorum_stop(b);
    srv_controller_close(b);
    for (int i = 0; i < b->nshards; i++)
        srv_shard_destroy(&b->shards[i]);
    free(b->shards);
    free(b->listen_fds);
    free(b->bound_ports);
    free_security(b);
    srv_info("stopped cleanly");
    return 0;
}
