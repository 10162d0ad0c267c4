"""Captures __transaction_state records from Apache Kafka for server/tests/txn_fixtures.h.

Owns nothing that stays: starts Kafka (compat-tests/lib/kafka_ref.py) in a temp dir, runs a librdkafka and
a Java transactional producer against it, lets the ids expire, then dumps the partition's segment as JSON.
Must not: be needed by the build or the tests (they carry the bytes).

    $(compat-tests/py3/venv.sh) tools/txn_fixtures/capture.py OUT.json
"""
import sys, os, time, subprocess
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "compat-tests", "lib"))
from kafka_ref import KafkaRef, resolve_classpath
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

settings = {
    "transaction.state.log.num.partitions": "1",
    "transactional.id.expiration.ms": "20000",
    "transaction.remove.expired.transaction.cleanup.interval.ms": "1000",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
}
out_json = sys.argv[1]
k = KafkaRef(settings=settings)
k.start()
try:
    bs = k.bootstrap
    ad = AdminClient({"bootstrap.servers": bs})
    for f in ad.create_topics([NewTopic("t", 2, 1)]).values():
        f.result()
    p = Producer({"bootstrap.servers": bs, "transactional.id": "tx-rdk", "transaction.timeout.ms": 60000})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce("t", b"v", b"k", partition=0)
    p.produce("t", b"v", b"k", partition=1)
    p.commit_transaction(30)
    p.begin_transaction()
    p.produce("t", b"v", b"k", partition=0)
    p.flush(10)
    p.abort_transaction(30)
    del p
    cp = resolve_classpath()
    subprocess.run(["java", "-cp", cp, os.path.join(HERE, "TxnFix.java"), bs], check=True, timeout=180)
    time.sleep(28)  # expiration (20 s) + cleanup interval
    k.stop()
    seg = os.path.join(k.data_dir, "__transaction_state-0", "00000000000000000000.log")
    subprocess.run([sys.executable, os.path.join(HERE, "dump.py"), seg, out_json], check=True)
finally:
    k.stop()
    k.cleanup()
