"""kafka-clients, kafka-streams and Kafka tools 4.4.0 (Java): the suite's runner.

Runs the Java compat suite (one JVM, every case) against a fresh kbroker or the run's target.

Owns: the broker the Java suite talks to (kbroker started with the reference settings of
lib/kafka_ref.py so both targets behave alike; on another target it attaches) and the JVM's command line.
Must not: build anything (build.sh does) or judge results (the JVM prints them).

Usage: run.py   (env: KB_SHARDS, KB_TARGET..., KB_JAVA_ONLY / KB_JAVA_SKIP substrings of case names)
Prints the JVM's CASE lines and its "RESULT passed= failed= skipped=" summary; exit code non-zero on failure.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from broker import Broker, shards_from_env  # noqa: E402
from kafka_ref import REF_SETTINGS  # noqa: E402


def main():
    with open(os.path.join(HERE, "target", "classpath.txt")) as f:
        cp = os.path.join(HERE, "target", "classes") + os.pathsep + f.read().strip()
    # kbroker's initial rebalance delay (3 s) differs from the reference run's 0: start it like Kafka runs.
    # Share groups (ShareCases) and transactions are served without unstable.api.versions.enable, as Kafka does.
    b = Broker(shards=shards_from_env(), extra_sets=["%s=%s" % kv for kv in REF_SETTINGS.items()])
    rc = 1
    try:
        b.start()
        env = dict(os.environ, KB_BOOTSTRAP=b.bootstrap)
        cmd = ["java", "-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", cp, "kbcompat.Main"]
        rc = subprocess.call(cmd, env=env)
        try:
            b.stop(check=True)
        except AssertionError as e:
            print("BROKER STOP FAILED: %s" % e, flush=True)
            rc = rc or 1
    finally:
        if rc != 0 and b.target == "kbroker":
            print("---- broker log tail ----\n%s\n----" % b.log_tail(60), flush=True)
        b.cleanup()
    sys.exit(rc)


if __name__ == "__main__":
    main()
