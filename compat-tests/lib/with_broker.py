"""Run a command against a fresh kbroker: KB_BOOTSTRAP=127.0.0.1:<port> in its environment.

Usage: with_broker.py [--shards N] [--unstable] -- cmd args...
--unstable: kbroker also serves the APIs still being built (unstable.api.versions.enable=true), as Apache Kafka
serves them anyway (share groups; the transaction coordinator's APIs no longer need it).
Exit code: the command's, or 1 if the broker did not stop cleanly (exit 0 after SIGTERM).
The broker log tail is printed when anything failed.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker import Broker, shards_from_env, target  # noqa: E402


def main():
    argv = sys.argv[1:]
    shards = shards_from_env()
    if argv[:1] == ["--shards"]:
        shards = int(argv[1])
        argv = argv[2:]
    sets = []
    if argv[:1] == ["--unstable"]:
        argv = argv[1:]
        sets = ["unstable.api.versions.enable=true"] if target() == "kbroker" else []
    if argv[:1] == ["--"]:
        argv = argv[1:]
    b = Broker(shards=shards, extra_sets=sets)
    rc = 1
    try:
        b.start()
        env = dict(os.environ, KB_BOOTSTRAP=b.bootstrap, KB_BROKER_PORT=str(b.port))
        rc = subprocess.call(argv, env=env)
        try:
            b.stop(check=True)
        except AssertionError as e:
            print("BROKER STOP FAILED: %s" % e, flush=True)
            print("RESULT passed=0 failed=1 skipped=0 (broker stop)", flush=True)
            rc = rc or 1
    finally:
        if rc != 0:
            print("---- broker log tail ----\n%s\n----" % b.log_tail(60), flush=True)
        b.cleanup()
    sys.exit(rc)


if __name__ == "__main__":
    main()
