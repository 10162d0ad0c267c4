"""Helpers of the py3 tests (newer clients in the venv of py3/venv.sh): the harness's lib/common.py plus
what the three client files share.

Owns: codec list, broker settings for group tests, compressible values. Must not: start brokers itself
(BrokerTestCase does, or attaches to the run's target).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from common import BrokerTestCase, is_kbroker, kbroker_differs, uniq  # noqa: E402,F401

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
# Short group timings keep the suite fast; Apache Kafka in run.sh runs with the same (kafka_ref.REF_SETTINGS).
GROUP_SETS = ("group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=1000",
              "offsets.topic.num.partitions=10")


def value(i):
    # Compressible: clients skip compression that does not shrink a batch, and each codec must really be used.
    return b"value-%05d-" % i + b"abcdefgh" * 16
