#!/usr/bin/env bash
# docker/entrypoint.sh — the kbroker image's entrypoint: turns the environment
# variables that compose files write for Kafka images into kbroker
# `--set key=value` arguments, prints them, and execs the broker.
#
# Owns: the environment -> config mapping of the Apache (apache/kafka),
# Confluent (confluentinc/cp-kafka) and Bitnami (bitnami/kafka) images, the
# image defaults (listen on all interfaces, data in /var/lib/kbroker), the
# KRaft cluster id hand-over, and the address the HEALTHCHECK pings.
#
# Must not: decide which keys the broker honours (it validates every key,
# logs ZooKeeper/KRaft keys as not applying and unknown keys as ignored);
# pass JVM or image-only variables (heap, JMX, log4j, SASL users) as config;
# write anything in dry-run mode.
#
# Mapping rules (checked against the images' own scripts):
#   KAFKA_FOO_BAR      -> foo.bar   Apache/Confluent: strip KAFKA_, lower-case,
#                                   ___ -> '-', __ -> '_', _ -> '.'
#   KAFKA_CFG_FOO_BAR  -> foo.bar   Bitnami: strip KAFKA_CFG_, lower-case, every
#                                   _ -> '.', then sasl.ssl/sasl.plaintext -> sasl_*
#   CLUSTER_ID, KAFKA_CLUSTER_ID, KAFKA_KRAFT_CLUSTER_ID, KAFKA_CFG_CLUSTER_ID:
#                      the cluster id a fresh data directory starts with
#   KB_SHARDS          -> shards (kbroker's own; other non-KAFKA_ variables are ignored)
# Security, as the images' own scripts do it:
#   KAFKA_LISTENER_SECURITY_PROTOCOL_MAP, KAFKA_SSL_*, KAFKA_SASL_*,
#   KAFKA_LISTENER_NAME_<L>_<KEY> (Apache rule: write SASL__SSL for sasl_ssl)
#                      -> the keys themselves (generic rule above)
#   KAFKA_SSL_KEYSTORE_FILENAME / _TRUSTSTORE_FILENAME (Confluent, Apache):
#                      ssl.keystore.location / ssl.truststore.location in the
#                      secrets dir (KB_SECRETS_DIR, default /etc/kafka/secrets)
#   KAFKA_SSL_KEYSTORE_CREDENTIALS / _KEY_CREDENTIALS / _TRUSTSTORE_CREDENTIALS:
#                      files in that dir holding ssl.keystore.password /
#                      ssl.key.password / ssl.truststore.password
#   KAFKA_CLIENT_USERS + KAFKA_CLIENT_PASSWORDS (Bitnami): PLAIN users
#                      (listener.name.<l>.plain.sasl.jaas.config) of every
#                      SASL listener that has no JAAS line of its own
# Secret values (passwords, keys, JAAS lines) are never logged.
# Later sources win: Apache-style < Bitnami-style < the container's command arguments.
#
# Env: KB_BROKER_BIN (default: kbroker on PATH), KB_DATA_DIR (default
# /var/lib/kbroker), KB_ENTRYPOINT_DRY_RUN=1 (print the broker's argv, one
# argument per line, on stdout and exit), KB_HEALTH_FILE (default
# /tmp/kbroker-health-address).
set -euo pipefail

log() { printf 'kbroker-entrypoint: %s\n' "$*" >&2; }

# `docker run IMAGE kbroker-admin ...` or `... bash` runs that command; a
# leading `kbroker` is dropped so its arguments still get the env mapping.
if [ $# -gt 0 ] && [ "$1" = kbroker ]; then
    shift
elif [ $# -gt 0 ] && [ "${1#-}" = "$1" ] && [ ! -f "$1" ] && command -v "$1" >/dev/null 2>&1; then
    exec "$@"
fi

BROKER="${KB_BROKER_BIN:-$(command -v kbroker || echo /usr/local/bin/kbroker)}"
DRY_RUN="${KB_ENTRYPOINT_DRY_RUN:-0}"

# JVM / image-only variables: meaningful to a Kafka image, not to a broker config.
IMAGE_ONLY=" KAFKA_VERSION KAFKA_HEAP_OPT KAFKA_HEAP_OPTS KAFKA_LOG4J_OPTS KAFKA_OPTS KAFKA_JMX_OPTS
 KAFKA_JVM_PERFORMANCE_OPTS KAFKA_GC_LOG_OPTS KAFKA_LOG4J_ROOT_LOGLEVEL KAFKA_LOG4J_LOGGERS
 KAFKA_TOOLS_LOG4J_LOGLEVEL KAFKA_JMX_PORT KAFKA_JMX_HOSTNAME KAFKA_DEBUG KAFKA_HOME
 KAFKA_ENABLE_KRAFT KAFKA_SKIP_KRAFT_STORAGE_INIT KAFKA_CLIENT_LISTENER_NAME KAFKA_INTER_BROKER_USER KAFKA_INTER_BROKER_PASSWORD KAFKA_CONTROLLER_USER
 KAFKA_CONTROLLER_PASSWORD KAFKA_CERTIFICATE_PASSWORD KAFKA_TLS_TYPE KAFKA_TLS_CLIENT_AUTH
 KAFKA_ZOOKEEPER_PROTOCOL KAFKA_ZOOKEEPER_USER KAFKA_ZOOKEEPER_PASSWORD KAFKA_VOLUME_DIR
 KAFKA_DATA_TO_PERSIST KAFKA_MOUNTED_CONF_DIR KAFKA_INITSCRIPTS_DIR KAFKA_CONF_FILE KAFKA_CONF_DIR
 KAFKA_BASE_DIR KAFKA_DAEMON_USER KAFKA_DAEMON_GROUP KAFKA_CREATE_TOPICS "
# Image variables that are not keys: files in the secrets dir (Confluent,
# Apache) and Bitnami's client users, handled below.
SECRET_FILE_VARS=" KAFKA_SSL_KEYSTORE_FILENAME KAFKA_SSL_KEYSTORE_CREDENTIALS KAFKA_SSL_KEY_CREDENTIALS
 KAFKA_SSL_TRUSTSTORE_FILENAME KAFKA_SSL_TRUSTSTORE_CREDENTIALS KAFKA_CLIENT_USERS KAFKA_CLIENT_PASSWORDS "
SECRETS_DIR="${KB_SECRETS_DIR:-/etc/kafka/secrets}"
# One line each for the " $name " matches below.
IMAGE_ONLY="${IMAGE_ONLY//$'\n'/ }"
SECRET_FILE_VARS="${SECRET_FILE_VARS//$'\n'/ }"
CLUSTER_ID_VARS=" CLUSTER_ID KAFKA_CLUSTER_ID KAFKA_KRAFT_CLUSTER_ID KAFKA_CFG_CLUSTER_ID "

SETS=()            # "key=value", in application order
declare -A VAL=()  # key -> effective value (last one wins, as in the broker)

is_secret() { # key
    case "${1,,}" in
    *password* | *jaas.config | *ssl.keystore.key | *keystore.certificate.chain | *truststore.certificates) return 0 ;;
    esac
    return 1
}

add_set() { # key value origin
    SETS+=("$1=$2")
    VAL["$1"]="$2"
    if is_secret "$1"; then
        log "$3 -> $1=(secret, ${#2} characters)"
    else
        log "$3 -> $1=$2"
    fi
}

# The content of a credentials file in the secrets dir (Confluent's *_CREDENTIALS).
read_secret() { # variable-name file-name
    local f="$SECRETS_DIR/$2"
    if [ ! -r "$f" ]; then
        log "$1: cannot read $f"
        exit 1
    fi
    local v
    v="$(<"$f")"
    printf '%s' "${v%$'\n'}"
}

apache_key() { # name without KAFKA_
    local s="$1"
    s="${s//___/-}"
    s="${s//__/%}" # '%' cannot occur in a variable name, so it stands in for '_' meanwhile
    s="${s//_/.}"
    s="${s//%/_}"
    printf '%s' "${s,,}"
}

bitnami_key() { # name without KAFKA_CFG_
    local s="${1//_/.}"
    s="${s,,}"
    s="${s//sasl.ssl/sasl_ssl}"
    s="${s//sasl.plaintext/sasl_plaintext}"
    printf '%s' "$s"
}

mapfile -t NAMES < <(compgen -e | LC_ALL=C sort)
CLUSTER_ID_VALUE=""
# Pass 1: Apache / Confluent style; pass 2: Bitnami style (wins on conflicts).
for pass in apache bitnami; do
    for name in "${NAMES[@]}"; do
        case "$name" in KAFKA_*) ;; *) continue ;; esac
        value="${!name}"
        if [[ "$CLUSTER_ID_VARS" == *" $name "* ]]; then
            [ "$pass" = apache ] && [ -n "$value" ] && CLUSTER_ID_VALUE="$value"
            continue
        fi
        if [ "$pass" = apache ]; then
            case "$name" in KAFKA_CFG_*) continue ;; esac
            if [[ "$SECRET_FILE_VARS" == *" $name "* ]]; then
                continue
            fi
            if [[ "$IMAGE_ONLY" == *" $name "* ]] || [[ "$name" == KAFKA_ZOOKEEPER_TLS_* ]]; then
                log "$name is a JVM/image setting of Kafka images: ignored"
                continue
            fi
            key="$(apache_key "${name#KAFKA_}")"
        else
            case "$name" in KAFKA_CFG_*) ;; *) continue ;; esac
            key="$(bitnami_key "${name#KAFKA_CFG_}")"
        fi
        if [ -z "$value" ]; then
            log "$name is empty: ignored"
            continue
        fi
        [ -n "$key" ] && add_set "$key" "$value" "$name"
    done
done
if [ -n "${CLUSTER_ID:-}" ]; then
    CLUSTER_ID_VALUE="$CLUSTER_ID"
fi

# Key and trust stores as the Confluent and Apache images take them: file
# names in the secrets dir, passwords in files beside them.
if [ -n "${KAFKA_SSL_KEYSTORE_FILENAME:-}" ]; then
    add_set ssl.keystore.location "$SECRETS_DIR/$KAFKA_SSL_KEYSTORE_FILENAME" KAFKA_SSL_KEYSTORE_FILENAME
fi
if [ -n "${KAFKA_SSL_KEYSTORE_CREDENTIALS:-}" ]; then
    secret="$(read_secret KAFKA_SSL_KEYSTORE_CREDENTIALS "$KAFKA_SSL_KEYSTORE_CREDENTIALS")" || exit 1
    add_set ssl.keystore.password "$secret" KAFKA_SSL_KEYSTORE_CREDENTIALS
fi
if [ -n "${KAFKA_SSL_KEY_CREDENTIALS:-}" ]; then
    secret="$(read_secret KAFKA_SSL_KEY_CREDENTIALS "$KAFKA_SSL_KEY_CREDENTIALS")" || exit 1
    add_set ssl.key.password "$secret" KAFKA_SSL_KEY_CREDENTIALS
fi
if [ -n "${KAFKA_SSL_TRUSTSTORE_FILENAME:-}" ]; then
    add_set ssl.truststore.location "$SECRETS_DIR/$KAFKA_SSL_TRUSTSTORE_FILENAME" KAFKA_SSL_TRUSTSTORE_FILENAME
fi
if [ -n "${KAFKA_SSL_TRUSTSTORE_CREDENTIALS:-}" ]; then
    secret="$(read_secret KAFKA_SSL_TRUSTSTORE_CREDENTIALS "$KAFKA_SSL_TRUSTSTORE_CREDENTIALS")" || exit 1
    add_set ssl.truststore.password "$secret" KAFKA_SSL_TRUSTSTORE_CREDENTIALS
fi

# Bitnami's client users: a PLAIN JAAS line for every SASL listener without one.
if [ -n "${KAFKA_CLIENT_USERS:-}" ]; then
    IFS=',' read -r -a cusers <<<"$KAFKA_CLIENT_USERS"
    IFS=',' read -r -a cpasses <<<"${KAFKA_CLIENT_PASSWORDS:-}"
    jaas="org.apache.kafka.common.security.plain.PlainLoginModule required"
    for i in "${!cusers[@]}"; do
        u="${cusers[$i]// /}"
        p="${cpasses[$i]:-}"
        if [ -z "$u" ] || [ -z "$p" ]; then
            log "KAFKA_CLIENT_USERS: user '$u' has no password in KAFKA_CLIENT_PASSWORDS: skipped"
            continue
        fi
        p="${p//\\/\\\\}"
        jaas="$jaas user_$u=\"${p//\"/\\\"}\""
    done
    jaas="$jaas;"
    IFS=',' read -r -a mapitems <<<"${VAL[listener.security.protocol.map]:-}"
    made=0
    for item in "${mapitems[@]}"; do
        item="${item// /}"
        lname="${item%%:*}"
        proto="${item#*:}"
        case "${proto^^}" in SASL_PLAINTEXT | SASL_SSL) ;; *) continue ;; esac
        key="listener.name.${lname,,}.plain.sasl.jaas.config"
        [ -n "${VAL[$key]:-}" ] && continue
        add_set "$key" "$jaas" "KAFKA_CLIENT_USERS"
        made=1
    done
    if [ "$made" = 1 ] && [ -z "${VAL[sasl.enabled.mechanisms]:-}" ]; then
        add_set sasl.enabled.mechanisms PLAIN "default (KAFKA_CLIENT_USERS)"
    fi
fi
if [ -n "${KB_SHARDS:-}" ]; then
    add_set shards "$KB_SHARDS" KB_SHARDS
fi

# Listeners. Inside a container the broker must listen on every interface;
# like the Apache image, listeners default to the advertised ones with the
# host replaced by 0.0.0.0.
if [ -z "${VAL[listeners]:-}" ]; then
    if [ -n "${VAL[advertised.listeners]:-}" ]; then
        derived=""
        IFS=',' read -r -a items <<<"${VAL[advertised.listeners]}"
        for item in "${items[@]}"; do
            item="${item// /}"
            [ -z "$item" ] && continue
            derived="${derived:+$derived,}${item%%://*}://0.0.0.0:${item##*:}"
        done
        add_set listeners "$derived" "default (from advertised.listeners)"
    else
        # Empty host = all interfaces; the broker then advertises localhost:9092,
        # as the Apache image does by default.
        add_set listeners "PLAINTEXT://:9092" "default"
    fi
fi
if [ -z "${VAL[log.dirs]:-}" ] && [ -z "${VAL[log.dir]:-}" ]; then
    add_set log.dirs "${KB_DATA_DIR:-/var/lib/kbroker}" "default"
fi
DATA_DIR="${VAL[log.dirs]:-${VAL[log.dir]:-}}"
DATA_DIR="${DATA_DIR%%,*}"

# Two or more voters make a metadata quorum (docs/design.md); one voter, or
# none, is the single-node broker, which has no use for the KRaft keys.
nvoters=0
if [ -n "${VAL[controller.quorum.voters]:-}" ]; then
    IFS=',' read -r -a voters <<<"${VAL[controller.quorum.voters]}"
    nvoters=${#voters[@]}
fi
if [ "$nvoters" -ge 2 ]; then
    log "metadata quorum of $nvoters voters (${VAL[controller.quorum.voters]}): voters' hosts must be IPv4 addresses"
    quorum_keys="zookeeper.connect controller.quorum.bootstrap.servers"
    why="a kbroker quorum is formed from controller.quorum.voters only"
else
    quorum_keys="zookeeper.connect process.roles controller.quorum.voters controller.quorum.bootstrap.servers"
    why="kbroker is a single node without them"
fi
for k in $quorum_keys; do
    if [ -n "${VAL[$k]:-}" ]; then
        log "$k is a ZooKeeper/KRaft setting: $why (the broker logs it as not applying)"
    fi
done

# Health address: the first client listener (controller listeners are not
# opened by the broker) that answers a bare ApiVersions, i.e. without TLS
# (PLAINTEXT, or SASL_PLAINTEXT, which serves ApiVersions before
# authentication), with a wildcard host replaced by loopback.
health=""
IFS=',' read -r -a items <<<"${VAL[listeners]}"
ctl=",${VAL[controller.listener.names]:-},"
pmap=",${VAL[listener.security.protocol.map]:-},"
for item in "${items[@]}"; do
    item="${item// /}"
    lname="${item%%://*}"
    [[ "${ctl^^}" == *",${lname^^},"* ]] && continue
    proto="${pmap^^}"
    proto="${proto#*,"${lname^^}":}"
    [ "$proto" = "${pmap^^}" ] && proto="$lname" # not in the map: the name is the protocol
    proto="${proto%%,*}"
    case "${proto^^}" in PLAINTEXT | SASL_PLAINTEXT) ;; *) continue ;; esac
    hostport="${item#*://}"
    host="${hostport%:*}"
    port="${hostport##*:}"
    case "$host" in "" | 0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;; esac
    health="$host:$port"
    break
done
if [ -z "$health" ]; then
    log "no PLAINTEXT or SASL_PLAINTEXT listener: the image's HEALTHCHECK (a bare ApiVersions) cannot reach a TLS-only broker; override it with kbroker-admin --security.protocol SSL --ssl.ca.location ... ping"
fi

ARGS=()
for s in "${SETS[@]}"; do
    ARGS+=(--set "$s")
done
ARGS+=("$@")

if [ "$DRY_RUN" = 1 ]; then
    [ -n "$CLUSTER_ID_VALUE" ] && log "cluster id $CLUSTER_ID_VALUE (not written: dry run)"
    log "health address ${health:-none}"
    printf '%s\n' "$BROKER" "${ARGS[@]}"
    exit 0
fi

mkdir -p "$DATA_DIR" 2>/dev/null || true
if [ ! -w "$DATA_DIR" ]; then
    log "data directory $DATA_DIR is not writable by uid $(id -u): mount a volume there owned by it, or set KAFKA_LOG_DIRS"
    exit 1
fi
# A fresh data directory starts with the configured cluster id, as
# `kafka-storage.sh format -t $CLUSTER_ID` does; an existing one keeps its own.
if [ -n "$CLUSTER_ID_VALUE" ]; then
    if [ -f "$DATA_DIR/meta.properties" ]; then
        log "cluster id: $DATA_DIR/meta.properties exists, keeping its cluster.id (CLUSTER_ID=$CLUSTER_ID_VALUE not applied)"
    elif [[ "$CLUSTER_ID_VALUE" =~ ^[A-Za-z0-9_-]{1,31}$ ]]; then
        printf '#Written by kbroker-entrypoint\nversion=1\ncluster.id=%s\nnode.id=%s\n' \
            "$CLUSTER_ID_VALUE" "${VAL[node.id]:-${VAL[broker.id]:-1}}" >"$DATA_DIR/meta.properties"
        log "cluster id $CLUSTER_ID_VALUE written to $DATA_DIR/meta.properties"
    else
        log "cluster id '$CLUSTER_ID_VALUE' is not a Kafka cluster id ([A-Za-z0-9_-], at most 31 characters): ignored"
    fi
fi
if [ -n "$health" ]; then
    printf '%s\n' "$health" >"${KB_HEALTH_FILE:-/tmp/kbroker-health-address}" 2>/dev/null || true
fi

SHOWN=()
for a in "${ARGS[@]}"; do
    if is_secret "${a%%=*}" && [ "${a#*=}" != "$a" ]; then
        SHOWN+=("${a%%=*}=(secret)")
    else
        SHOWN+=("$a")
    fi
done
log "exec $(printf '%q ' "$BROKER" "${SHOWN[@]}")"
exec "$BROKER" "${ARGS[@]}"
