#!/usr/bin/env bash
# Owns: building the Java compat suite (compat-tests/java) and its cached classpath, with Maven offline
# first (no network once ~/.m2 holds everything), online only when the cache lacks something.
# Must not: rebuild when target/ is newer than the sources and the pom (run.sh calls it on every run).
# Env: KB_JAVA_OFFLINE=1 forbids going online.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
stamp=target/classpath.txt
if [ -f "$stamp" ] && [ -f target/classes/kbcompat/Main.class ] &&
    [ -z "$(find pom.xml src -newer "$stamp" -print -quit)" ]; then
    exit 0
fi
goals=(-q -B compile dependency:build-classpath -Dmdep.outputFile="$HERE/$stamp")
if ! mvn -o "${goals[@]}" >target-build.log 2>&1; then
    if [ "${KB_JAVA_OFFLINE:-0}" = 1 ]; then
        cat target-build.log >&2
        exit 1
    fi
    mvn "${goals[@]}" >target-build.log 2>&1 || { cat target-build.log >&2; exit 1; }
fi
rm -f target-build.log
touch "$stamp"
