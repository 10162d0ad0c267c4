#!/usr/bin/env bash
# check_layers.sh — every arrow in server/ points down: handlers -> group ->
# core (server/*.[ch]) -> storage -> kafka-proto.
#
# Owns: the rule that core never includes a handler or group header and never
# links to a function that handlers/ or group/ define, and that group/ never
# links to a handler. Must not: pass on a tree it could not read (no sources,
# no objects: fail). One exception, on purpose: main.c wires everything (it
# is no core file; it hands handlers/dispatch.c to the connections).
#
# Usage: check_layers.sh SERVER_SOURCE_DIR KBROKER_CORE_OBJECT...
set -euo pipefail
src=$1
shift
bad=0

[ -d "$src/handlers" ] && [ -d "$src/group" ] || { echo "no server sources at $src"; exit 2; }

# Includes: a path into handlers/ or group/, or the bare name of one of their headers.
upper=$(cd "$src" && find handlers group -name '*.h' -printf '%f\n')
pattern='"(handlers/|group/)'
for h in $upper; do pattern="$pattern|\"$h\"|/$h\""; done
core_files=$(find "$src" -maxdepth 1 -name '*.[ch]' ! -name main.c | sort)
if hits=$(grep -HnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*($pattern)" $core_files); then
    printf 'core includes an upper layer: %s\n' "$hits"
    bad=1
fi

# Links: a lower object that needs a symbol only an upper one defines.
core=() group=() handlers=()
for o in "$@"; do
    case "$o" in
    */handlers/*) handlers+=("$o") ;;
    */group/*) group+=("$o") ;;
    *) core+=("$o") ;;
    esac
done
[ ${#core[@]} -gt 0 ] && [ ${#group[@]} -gt 0 ] && [ ${#handlers[@]} -gt 0 ] || {
    echo "objects missing: ${#core[@]} core, ${#group[@]} group, ${#handlers[@]} handlers"
    exit 2
}
defined() { nm --defined-only -g "$@" | awk 'NF == 3 { print $3 }' | sort -u; }
handler_syms=$(defined "${handlers[@]}")
group_syms=$(defined "${group[@]}")

check() { # object, forbidden symbols, where they are defined
    local o=$1 forbid=$2 what=$3 name sym
    name=$(basename "$o" .o)
    for sym in $(comm -12 <(nm -u "$o" | awk '{ print $NF }' | sort -u) <(printf '%s\n' "$forbid")); do
        echo "$name uses $sym, defined in $what"
        bad=1
    done
}
for o in "${core[@]}"; do
    check "$o" "$handler_syms" handlers/
    check "$o" "$group_syms" group/
done
for o in "${group[@]}"; do
    check "$o" "$handler_syms" handlers/
done

[ $bad -eq 0 ] && echo "layers: ok"
exit $bad
