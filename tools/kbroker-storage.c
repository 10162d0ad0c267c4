/*
 * kbroker-storage.c — `kbroker-storage format`: prepares a log dir before the
 * broker's first start, as Kafka's `kafka-storage format --add-scram` does:
 * the first SCRAM users (an admin) go into the metadata log, so a cluster
 * with only SASL/SCRAM listeners can be administered at all.
 *
 *   kbroker-storage format --config server.properties [--set k=v]...
 *                          --add-scram 'SCRAM-SHA-256=[name=admin,password=admin-secret]'...
 *
 * Owns the command line and Kafka's --add-scram syntax (name=, password= or
 * saltedpassword= with salt= (base64), iterations=; "quoted" values).
 * Must not: encode records or validate credentials itself (the server's
 * controller does both, exactly as for AlterUserScramCredentials), print a
 * password, or write while a broker holds the log dir (its .lock).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "controller.h"
#include "logging.h"
#include "scram.h"
#include "scram_store.h"

#define MAX_USERS 64

typedef struct user_spec {
    char name[SRV_SCRAM_USER_MAX + 1];
    int mech;
    int32_t iterations;
    uint8_t salt[SRV_SCRAM_SALT_MAX];
    size_t salt_len;
    uint8_t salted[SRV_SCRAM_KEY_MAX];
} user_spec;

static void usage(FILE *f)
{
    fprintf(
        f, "usage: kbroker-storage format --config server.properties [--set key=value]...\n"
           "                              --add-scram 'SCRAM-SHA-256=[name=admin,password=admin-secret]'...\n"
           "\n"
           "Writes the SCRAM credentials into the metadata log of the first of log.dirs, before the\n"
           "broker's first start (refused when the log already holds credentials). A credential is\n"
           "  MECHANISM=[name=N,password=P[,iterations=I][,salt=BASE64]]\n"
           "  MECHANISM=[name=N,salt=BASE64,saltedpassword=BASE64[,iterations=I]]\n"
           "with MECHANISM SCRAM-SHA-256 or SCRAM-SHA-512 and iterations 4096..16384 (default 4096).\n");
}

/* Strict base64 through OpenSSL: -1 when malformed or over cap bytes. */
static long unb64(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0 || n % 4)
        return -1;
    uint8_t *tmp = malloc(n);
    if (!tmp)
        return -1;
    int got = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
    long len = got < 0 ? -1 : (long)got - (in[n - 1] == '=') - (in[n - 2] == '=');
    if (len >= 0 && (size_t)len <= cap)
        memcpy(out, tmp, (size_t)len);
    else
        len = -1;
    OPENSSL_cleanse(tmp, n);
    free(tmp);
    return len;
}

/* One --add-scram value into u; the password is hashed at once. */
static int parse_spec(const char *spec, user_spec *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    const char *eq = strchr(spec, '=');
    size_t speclen = strlen(spec);
    if (!eq || speclen < 4 || eq[1] != '[' || spec[speclen - 1] != ']') {
        snprintf(err, errlen,
                 "expecting a credential in the form 'SCRAM-SHA-256=[name=alice,password=alice-secret]'");
        return -1;
    }
    u->mech = srv_scram_mech_from_name(spec, (size_t)(eq - spec));
    if (u->mech == SRV_SCRAM_UNKNOWN) {
        snprintf(err, errlen, "unknown SCRAM mechanism '%.*s' (SCRAM-SHA-256 or SCRAM-SHA-512)",
                 (int)(eq - spec), spec);
        return -1;
    }
    u->iterations = SRV_SCRAM_MIN_ITERATIONS;
    const char *p = eq + 2, *end = spec + speclen - 1;
    char *password = NULL;
    int have_name = 0, have_salt = 0, have_salted = 0, rc = -1;
    char val[1024];
    while (p < end) {
        const char *k = p;
        while (p < end && *p != '=')
            p++;
        size_t kl = (size_t)(p - k);
        if (p >= end) {
            snprintf(err, errlen, "'%.*s' has no value", (int)kl, k);
            goto out;
        }
        p++;
        size_t vl = 0;
        if (*p == '"') {
            for (p++; p < end && *p != '"'; p++)
                if (vl + 1 < sizeof(val))
                    val[vl++] = *p;
            if (p >= end) {
                snprintf(err, errlen, "unterminated quoted value of '%.*s'", (int)kl, k);
                goto out;
            }
            p++;
        } else {
            for (; p < end && *p != ','; p++)
                if (vl + 1 < sizeof(val))
                    val[vl++] = *p;
        }
        val[vl] = 0;
        if (p < end && *p++ != ',') {
            snprintf(err, errlen, "expected ',' after the value of '%.*s'", (int)kl, k);
            goto out;
        }
        if (kl == 4 && memcmp(k, "name", 4) == 0) {
            if (vl == 0 || vl > SRV_SCRAM_USER_MAX) {
                snprintf(err, errlen, "name must have 1 to %d bytes", SRV_SCRAM_USER_MAX);
                goto out;
            }
            memcpy(u->name, val, vl + 1);
            have_name = 1;
        } else if (kl == 8 && memcmp(k, "password", 8) == 0) {
            free(password);
            password = strdup(val);
        } else if (kl == 10 && memcmp(k, "iterations", 10) == 0) {
            char *e;
            errno = 0;
            long it = strtol(val, &e, 10);
            if (errno || e == val || *e || it < INT32_MIN || it > INT32_MAX) {
                snprintf(err, errlen, "iterations '%s' is not a number", val);
                goto out;
            }
            u->iterations = (int32_t)it;
        } else if (kl == 4 && memcmp(k, "salt", 4) == 0) {
            long n = unb64(val, vl, u->salt, sizeof(u->salt));
            if (n < 0) {
                snprintf(err, errlen, "salt is not base64 of at most %d bytes", SRV_SCRAM_SALT_MAX);
                goto out;
            }
            u->salt_len = (size_t)n;
            have_salt = 1;
        } else if (kl == 14 && memcmp(k, "saltedpassword", 14) == 0) {
            if (unb64(val, vl, u->salted, sizeof(u->salted)) != (long)srv_scram_key_len(u->mech)) {
                snprintf(err, errlen, "saltedpassword is not base64 of %zu bytes (%s)",
                         srv_scram_key_len(u->mech), srv_scram_mech_name(u->mech));
                goto out;
            }
            have_salted = 1;
        } else {
            snprintf(err, errlen, "unknown key '%.*s' (name, password, iterations, salt, saltedpassword)",
                     (int)kl, k);
            goto out;
        }
    }
    if (!have_name) {
        snprintf(err, errlen, "you must supply 'name' to add-scram");
        goto out;
    }
    if (!password == !have_salted) {
        snprintf(err, errlen,
                 password ? "you must only supply one of 'password' or 'saltedpassword' to add-scram"
                          : "you must supply one of 'password' or 'saltedpassword' to add-scram");
        goto out;
    }
    if (have_salted && !have_salt) {
        snprintf(err, errlen, "you must supply 'salt' with 'saltedpassword' to add-scram");
        goto out;
    }
    if (u->iterations < SRV_SCRAM_MIN_ITERATIONS || u->iterations > SRV_SCRAM_MAX_ITERATIONS) {
        snprintf(err, errlen, "iterations must be %d to %d, not %d", SRV_SCRAM_MIN_ITERATIONS,
                 SRV_SCRAM_MAX_ITERATIONS, (int)u->iterations);
        goto out;
    }
    if (!have_salt) {
        u->salt_len = 32;
        if (getrandom(u->salt, u->salt_len, 0) != (ssize_t)u->salt_len) {
            snprintf(err, errlen, "no randomness for a salt");
            goto out;
        }
    }
    if (password && srv_scram_salt_password(u->mech, (const uint8_t *)password, strlen(password), u->salt,
                                            u->salt_len, u->iterations, u->salted) != 0) {
        snprintf(err, errlen, "cannot salt the password");
        goto out;
    }
    rc = 0;
out:
    if (password) {
        OPENSSL_cleanse(password, strlen(password));
        free(password);
    }
    OPENSSL_cleanse(val, sizeof(val));
    return rc;
}

/* The broker's .lock (main.c): an open-file-description lock, so a running
 * broker and this tool exclude each other. */
static int lock_dir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        snprintf(err, errlen, "cannot lock %s (%s): is a broker running on this log dir?", path,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd; /* held until exit */
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "format") != 0) {
        usage(argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? stdout : stderr);
        return argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? 0 : 2;
    }
    /* --add-scram is ours; the rest is the broker's own command line. */
    char **cargs = calloc((size_t)argc + 1, sizeof(char *));
    static user_spec users[MAX_USERS];
    int nusers = 0, nc = 0;
    char err[8800];
    if (!cargs)
        return 1;
    cargs[nc++] = argv[0];
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        if (strcmp(argv[i], "--add-scram") == 0 || strcmp(argv[i], "-S") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "kbroker-storage: %s needs a value\n", argv[i]);
                return 2;
            }
            v = argv[++i];
        } else if (strncmp(argv[i], "--add-scram=", 12) == 0) {
            v = argv[i] + 12;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            cargs[nc++] = argv[i];
            continue;
        }
        if (nusers == MAX_USERS) {
            fprintf(stderr, "kbroker-storage: at most %d --add-scram\n", MAX_USERS);
            return 2;
        }
        if (parse_spec(v, &users[nusers], err, sizeof(err)) != 0) {
            fprintf(stderr, "kbroker-storage: --add-scram: %s\n", err);
            return 2;
        }
        nusers++;
    }
    if (nusers == 0) {
        fprintf(stderr, "kbroker-storage: nothing to do: give --add-scram (see --help)\n");
        return 2;
    }
    static srv_config cfg;
    srv_config_init(&cfg, NULL);
    int rc = srv_config_parse_args(nc, cargs, &cfg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "kbroker-storage: %s\n", rc == SRV_CONFIG_HELP ? "see --help" : err);
        return 2;
    }
    const char *dir = cfg.log_dirs[0];
    int lockfd = lock_dir(dir, err, sizeof(err));
    if (lockfd < 0) {
        fprintf(stderr, "kbroker-storage: %s\n", err);
        return 1;
    }
    srv_scram_change ch[MAX_USERS];
    memset(ch, 0, sizeof(ch));
    for (int i = 0; i < nusers; i++) {
        ch[i].user = (kp_str){users[i].name, (int32_t)strlen(users[i].name)};
        ch[i].mech = (int8_t)users[i].mech;
        ch[i].iterations = users[i].iterations;
        ch[i].salt = (kp_bytes){users[i].salt, (int32_t)users[i].salt_len};
        ch[i].salted_password = (kp_bytes){users[i].salted, (int32_t)srv_scram_key_len(users[i].mech)};
    }
    rc = srv_controller_bootstrap_scram(dir, ch, nusers, err, sizeof(err));
    OPENSSL_cleanse(users, sizeof(users));
    if (rc != 0) {
        fprintf(stderr, "kbroker-storage: %s\n", err);
        return 1;
    }
    for (int i = 0; i < nusers; i++)
        printf("Formatting metadata log in %s with SCRAM credential %s for user %.*s\n", dir,
               srv_scram_mech_name(ch[i].mech), (int)ch[i].user.len, ch[i].user.p);
    free(cargs);
    close(lockfd);
    return 0;
}
