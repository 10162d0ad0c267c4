"""The request sequences the differential test sends to Apache Kafka and to kbroker, as data.

Owns: the scenarios (steps: API key, version, request fields), nothing about sending or comparing.
Must not: depend on a target's own values (ids, ports): those come from earlier responses through Ref/Fn.

A scenario runs once per version level ("low", "mid", "high": the lowest version both brokers serve, the
middle one, the highest; a level that yields the same versions as an earlier one is not repeated). In
strings, {R} is a token unique to the run (normalised away in the comparison) and {L} the level's name.
A step's "v" is "L" (its API's version at the scenario's level), "low"/"mid"/"high", or a number (the step
is skipped when a broker does not serve it). "wait" runs a bounded poll after the step (Kafka creates and
deletes topics, applies config changes and loads group coordinators asynchronously; kbroker answers
when done): "leaders", "gone", "configs" or "group". "retry" repeats a step while its answer carries
one of the given error codes (a coordinator still loading); only the last answer is compared.
"""

import kwire

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 8, 9, 10, 11, 12, 13, 14
DESCRIBE_GROUPS, LIST_GROUPS, API_VERSIONS, CREATE_TOPICS, DELETE_TOPICS, DELETE_RECORDS = 15, 16, 18, 19, 20, 21
INIT_PRODUCER_ID, OFFSET_FOR_LEADER_EPOCH, DESCRIBE_CONFIGS, ALTER_CONFIGS, DESCRIBE_LOG_DIRS = 22, 23, 32, 33, 35
CREATE_PARTITIONS, DELETE_GROUPS, INCREMENTAL_ALTER_CONFIGS, OFFSET_DELETE, DESCRIBE_CLUSTER = 37, 42, 44, 47, 60
DESCRIBE_PRODUCERS, CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE = 61, 68, 69
WRITE_TXN_MARKERS, TXN_OFFSET_COMMIT = 27, 28
SHARE_GROUP_HEARTBEAT, SHARE_GROUP_DESCRIBE, SHARE_FETCH, SHARE_ACKNOWLEDGE = 76, 77, 78, 79
DESCRIBE_SHARE_GROUP_OFFSETS, ALTER_SHARE_GROUP_OFFSETS, DELETE_SHARE_GROUP_OFFSETS = 90, 91, 92
ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 24, 25, 26, 65, 66
CONCURRENT_TRANSACTIONS = 51
DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS = 29, 30, 31
DESCRIBE_CLIENT_QUOTAS, ALTER_CLIENT_QUOTAS = 48, 49
DESCRIBE_USER_SCRAM_CREDENTIALS, ALTER_USER_SCRAM_CREDENTIALS = 50, 51
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36

# COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR: a fresh Kafka's coordinators
# load after FindCoordinator already names them; the first request to a group retries them (not compared).
COORDINATOR_LOADING = (14, 15, 16)
UNKNOWN_ID = "5a1e0c7e-0000-4000-8000-00000000d1ff"


class Ref:
    """A value from an earlier step's response: Ref("create", "Topics", 0, "TopicId")."""

    def __init__(self, step, *path):
        self.step, self.path = step, path

    def resolve(self, ctx):
        v = ctx[self.step]
        for p in self.path:
            v = v[p]
        return v


class Fn:
    """A value computed from the earlier responses (ctx: step id -> decoded response)."""

    def __init__(self, fn):
        self.fn = fn

    def resolve(self, ctx):
        return self.fn(ctx)


def batch(n, size=8, **kw):
    return kwire.record_batch([(b"k%d" % i, (b"v%d-" % i) * size) for i in range(n)], **kw)


def topic(name, parts, configs=(), rf=1):
    return {"Name": name, "NumPartitions": parts, "ReplicationFactor": rf, "Assignments": [],
            "Configs": [{"Name": k, "Value": v} for k, v in configs]}


# Set-up creates use v4 (no config list in the answer: the topics scenario compares that at every level);
# v7 where a later step needs the topic id.
def create(step, topics, v=4, validate=False, wait="leaders"):
    s = {"id": step, "api": CREATE_TOPICS, "v": v, "req": {"Topics": topics, "timeoutMs": 30000,
                                                           "validateOnly": validate}}
    if wait:
        s["wait"] = wait
    return s


def produce(step, name, parts, v="L", acks=-1):
    return {"id": step, "api": PRODUCE, "v": v,
            "req": {"TransactionalId": None, "Acks": acks, "TimeoutMs": 30000,
                    "TopicData": [{"Name": name, "PartitionData": [{"Index": i, "Records": r} for i, r in parts]}]}}


def fetch_topic(name, tid, parts):
    return {"Topic": name, "TopicId": tid,
            "Partitions": [{"Partition": p, "CurrentLeaderEpoch": -1, "FetchOffset": off, "LastFetchedEpoch": -1,
                            "LogStartOffset": -1, "PartitionMaxBytes": 1 << 20} for p, off in parts]}


def fetch(step, topics, v="L", isolation=0):
    return {"id": step, "api": FETCH, "v": v,
            "req": {"ReplicaId": -1, "MaxWaitMs": 0, "MinBytes": 1, "MaxBytes": 1 << 22, "IsolationLevel": isolation,
                    "SessionId": 0, "SessionEpoch": -1, "Topics": topics, "ForgottenTopicsData": [], "RackId": ""}}


def list_offsets(step, name, parts, v="L"):
    return {"id": step, "api": LIST_OFFSETS, "v": v,
            "req": {"ReplicaId": -1, "IsolationLevel": 0, "TimeoutMs": 30000,
                    "Topics": [{"Name": name, "Partitions": [{"PartitionIndex": p, "CurrentLeaderEpoch": -1,
                                                              "Timestamp": ts, "MaxNumOffsets": 1}
                                                             for p, ts in parts]}]}}


def metadata(step, names, v="L", auto=False):
    return {"id": step, "api": METADATA, "v": v,
            "req": {"Topics": [{"Name": n} for n in names], "AllowAutoTopicCreation": auto,
                    "IncludeTopicAuthorizedOperations": False}}


def resource(name, keys, rtype=2):
    return {"ResourceType": rtype, "ResourceName": name, "ConfigurationKeys": keys}


UNSTABLE_OFFSET = 88


def txn_offset_commit(step_id, txn_id, epoch_delta=0):
    """A TxnOffsetCommit of scenario txn-offset-commit: a known partition and an unknown topic."""
    return {"id": step_id, "api": TXN_OFFSET_COMMIT, "v": "L",
            "req": {"TransactionalId": txn_id, "GroupId": "diff-{R}-{L}-txo",
                    "ProducerId": Ref("init", "ProducerId"),
                    "ProducerEpoch": Fn(lambda c: c["init"]["ProducerEpoch"] + epoch_delta), "GenerationId": -1,
                    "MemberId": "", "GroupInstanceId": None,
                    "Topics": [{"Name": "diff-{R}-{L}-to", "Partitions": [
                        {"PartitionIndex": 0, "CommittedOffset": 5, "CommittedLeaderEpoch": -1,
                         "CommittedMetadata": "m"}]},
                               {"Name": "diff-{R}-{L}-nope", "Partitions": [
                        {"PartitionIndex": 0, "CommittedOffset": 5, "CommittedLeaderEpoch": -1,
                         "CommittedMetadata": None}]}]}}


SCENARIOS = [
    {
        "name": "api-versions",
        "steps": [{"id": "api-versions", "api": API_VERSIONS, "v": "L",
                   "req": {"ClientSoftwareName": "kb-diff", "ClientSoftwareVersion": "1.0"}}],
    },
    {
        "name": "removed-versions",
        "levels": None,
        "steps": [
            create("create", [topic("diff-{R}-{L}-old", 1)]),
            dict(produce("produce-v0", "diff-{R}-{L}-old", [(0, batch(1))], v=0), any_version=True),
        ],
    },
    {
        "name": "topics",
        "steps": [
            create("create", [topic("diff-{R}-{L}-t1", 3, [("retention.ms", "3600000")])], v="L"),
            create("create-errors", [
                topic("diff-{R}-{L}-t1", 1),
                topic("diff-{R}-{L}-bad/name", 1),
                topic("diff-{R}-{L}-zero", 0),
                topic("diff-{R}-{L}-rf3", 1, rf=3),
                topic("diff-{R}-{L}-badcfg", 1, [("cleanup.policy", "nope")]),
                topic("diff-{R}-{L}-unknowncfg", 1, [("no.such.config", "1")]),
                topic("diff-{R}-{L}-badmax", 1, [("max.message.bytes", "-5")]),
            ], v="L", wait=None),
            create("create-dup", [topic("diff-{R}-{L}-dup", 1), topic("diff-{R}-{L}-dup", 2)], v="L", wait=None),
            create("validate-only", [topic("diff-{R}-{L}-vo", 2)], v="L", validate=True, wait=None),
            # Metadata v0-3 always auto-creates: the error cases run at v4+ ("high").
            metadata("metadata", ["diff-{R}-{L}-t1", "diff-{R}-{L}-vo", "diff-{R}-{L}-nope"], v="high"),
            {"id": "partitions", "api": CREATE_PARTITIONS, "v": "L", "wait": "leaders",
             "req": {"Topics": [{"Name": "diff-{R}-{L}-t1", "Count": 5, "Assignments": None}],
                     "TimeoutMs": 30000, "ValidateOnly": False}},
            {"id": "partitions-errors", "api": CREATE_PARTITIONS, "v": "L",
             "req": {"Topics": [{"Name": "diff-{R}-{L}-t1", "Count": 5, "Assignments": None},
                                {"Name": "diff-{R}-{L}-nope", "Count": 2, "Assignments": None}],
                     "TimeoutMs": 30000, "ValidateOnly": False}},
            {"id": "partitions-decrease", "api": CREATE_PARTITIONS, "v": "L",
             "req": {"Topics": [{"Name": "diff-{R}-{L}-t1", "Count": 2, "Assignments": None}],
                     "TimeoutMs": 30000, "ValidateOnly": False}},
            {"id": "partitions-dup", "api": CREATE_PARTITIONS, "v": "L",
             "req": {"Topics": [{"Name": "diff-{R}-{L}-t1", "Count": 7, "Assignments": None},
                                {"Name": "diff-{R}-{L}-t1", "Count": 8, "Assignments": None}],
                     "TimeoutMs": 30000, "ValidateOnly": False}},
            metadata("metadata-after", ["diff-{R}-{L}-t1"]),
            {"id": "delete", "api": DELETE_TOPICS, "v": "L", "wait": "gone",
             "req": {"TopicNames": ["diff-{R}-{L}-t1", "diff-{R}-{L}-nope"], "TimeoutMs": 30000,
                     "Topics": [{"Name": "diff-{R}-{L}-t1", "TopicId": bytes(16)},
                                {"Name": "diff-{R}-{L}-nope", "TopicId": bytes(16)}]}},
            {"id": "delete-unknown-id", "api": DELETE_TOPICS, "v": 6,
             "req": {"Topics": [{"Name": None, "TopicId": UNKNOWN_ID}], "TimeoutMs": 30000}},
            metadata("metadata-deleted", ["diff-{R}-{L}-t1"], v="high"),
            # Last: kbroker creates this topic (and its id) where Kafka does not yet.
            metadata("metadata-autocreate", ["diff-{R}-{L}-auto"], auto=True),
        ],
    },
    {
        "name": "produce-fetch",
        "steps": [
            create("create", [topic("diff-{R}-{L}-p", 2)], v="high"),
            produce("produce", "diff-{R}-{L}-p", [(0, batch(3)), (1, batch(1)), (7, batch(1))]),
            produce("produce-again", "diff-{R}-{L}-p", [(0, batch(2))]),
            produce("produce-unknown-topic", "diff-{R}-{L}-nope", [(0, batch(1))]),
            produce("produce-too-large", "diff-{R}-{L}-p", [(1, kwire.record_batch([(None, b"x" * 1100000)]))]),
            fetch("fetch", [fetch_topic("diff-{R}-{L}-p", Ref("create", "Topics", 0, "TopicId"),
                                        [(0, 0), (1, 0)])]),
            fetch("fetch-read-committed", [fetch_topic("diff-{R}-{L}-p", Ref("create", "Topics", 0, "TopicId"),
                                                       [(1, 0), (0, 50)])], isolation=1),
            fetch("fetch-same-partition-twice", [fetch_topic("diff-{R}-{L}-p", Ref("create", "Topics", 0, "TopicId"),
                                                             [(0, 0), (0, 3)])]),
            fetch("fetch-out-of-range", [fetch_topic("diff-{R}-{L}-p", Ref("create", "Topics", 0, "TopicId"),
                                                     [(0, 100), (9, 0)])]),
            fetch("fetch-unknown", [fetch_topic("diff-{R}-{L}-nope", UNKNOWN_ID, [(0, 0)])]),
            list_offsets("list-offsets", "diff-{R}-{L}-p", [(0, -2), (1, -1)]),
            list_offsets("list-offsets-ts", "diff-{R}-{L}-p", [(0, 1700000000001), (1, 1800000000000)]),
            list_offsets("list-offsets-max", "diff-{R}-{L}-p", [(0, -3)], v="high"),
            list_offsets("list-offsets-unknown", "diff-{R}-{L}-p", [(5, -1)]),
            {"id": "delete-records", "api": DELETE_RECORDS, "v": "L",
             "req": {"TimeoutMs": 30000, "Topics": [{"Name": "diff-{R}-{L}-p", "Partitions": [
                 {"PartitionIndex": 0, "Offset": 2}, {"PartitionIndex": 1, "Offset": 10},
                 {"PartitionIndex": 4, "Offset": 0}]}]}},
            list_offsets("list-offsets-after-delete", "diff-{R}-{L}-p", [(0, -2), (1, -2)]),
            fetch("fetch-below-start", [fetch_topic("diff-{R}-{L}-p", Ref("create", "Topics", 0, "TopicId"),
                                                    [(0, 0)])]),
            {"id": "epochs", "api": OFFSET_FOR_LEADER_EPOCH, "v": "L",
             "req": {"ReplicaId": -1, "Topics": [{"Topic": "diff-{R}-{L}-p", "Partitions": [
                 {"Partition": 0, "CurrentLeaderEpoch": -1, "LeaderEpoch": 0},
                 {"Partition": 1, "CurrentLeaderEpoch": -1, "LeaderEpoch": 3},
                 {"Partition": 6, "CurrentLeaderEpoch": -1, "LeaderEpoch": 0}]}]}},
            {"id": "log-dirs", "api": DESCRIBE_LOG_DIRS, "v": "L",
             "req": {"Topics": [{"Topic": "diff-{R}-{L}-p", "Partitions": [0, 1]}]}},
        ],
    },
    {
        "name": "idempotent",
        "steps": [
            create("create", [topic("diff-{R}-{L}-idem", 1)]),
            {"id": "init", "api": INIT_PRODUCER_ID, "v": "L", "retry": COORDINATOR_LOADING,
             "req": {"TransactionalId": None, "TransactionTimeoutMs": 60000, "ProducerId": -1,
                     "ProducerEpoch": -1}},
            produce("produce", "diff-{R}-{L}-idem", [
                (0, Fn(lambda c: batch(2, producer_id=c["init"]["ProducerId"], producer_epoch=0,
                                       base_sequence=0)))], v="high"),
            produce("produce-duplicate", "diff-{R}-{L}-idem", [
                (0, Fn(lambda c: batch(2, producer_id=c["init"]["ProducerId"], producer_epoch=0,
                                       base_sequence=0)))], v="high"),
            produce("produce-gap", "diff-{R}-{L}-idem", [
                (0, Fn(lambda c: batch(1, producer_id=c["init"]["ProducerId"], producer_epoch=0,
                                       base_sequence=5)))], v="high"),
            {"id": "producers", "api": DESCRIBE_PRODUCERS, "v": "L",
             "req": {"Topics": [{"Name": "diff-{R}-{L}-idem", "PartitionIndexes": [0, 3]},
                                {"Name": "diff-{R}-{L}-nope", "PartitionIndexes": [0]}]}},
        ],
    },
    {
        # The broker's default (transaction.partition.verification.enable=true) takes no transactional batch
        # from a client here: markers end no open transaction, are written all the same and set the
        # producer's coordinator epoch; read_committed sees the markers' partition as stable. (DescribeProducers
        # after a marker is not compared: LastTimestamp is the marker's, the broker's clock.)
        "name": "txn-markers",
        "steps": [
            create("create", [topic("diff-{R}-{L}-txm", 2)], v=7),
            {"id": "init", "api": INIT_PRODUCER_ID, "v": "L", "retry": COORDINATOR_LOADING,
             "req": {"TransactionalId": None, "TransactionTimeoutMs": 60000, "ProducerId": -1,
                     "ProducerEpoch": -1}},
            produce("produce", "diff-{R}-{L}-txm", [
                (0, Fn(lambda c: batch(2, producer_id=c["init"]["ProducerId"], producer_epoch=0,
                                       base_sequence=0)))], v="high"),
            {"id": "markers", "api": WRITE_TXN_MARKERS, "v": "L",
             "req": {"Markers": [
                 {"ProducerId": Ref("init", "ProducerId"), "ProducerEpoch": 0, "TransactionResult": True,
                  "CoordinatorEpoch": 3, "TransactionVersion": 0,
                  "Topics": [{"Name": "diff-{R}-{L}-txm", "PartitionIndexes": [0, 1, 9]},
                             {"Name": "diff-{R}-{L}-nope", "PartitionIndexes": [0]}]}]}},
            # An older coordinator epoch is fenced. (A producer's markers go in separate requests: Kafka
            # answers one entry per producer id, the last marker's errors winning.)
            {"id": "markers-fenced", "api": WRITE_TXN_MARKERS, "v": "L",
             "req": {"Markers": [
                 {"ProducerId": Ref("init", "ProducerId"), "ProducerEpoch": 0, "TransactionResult": False,
                  "CoordinatorEpoch": 2, "TransactionVersion": 0,
                  "Topics": [{"Name": "diff-{R}-{L}-txm", "PartitionIndexes": [0]}]}]}},
            fetch("fetch-committed", [fetch_topic("diff-{R}-{L}-txm", Ref("create", "Topics", 0, "TopicId"),
                                                  [(0, 0)])], isolation=1),
        ],
    },
    {
        # TxnOffsetCommit. kbroker serves it only with unstable.api.versions.enable=true (KB_DIFF_UNSTABLE=1 starts
        # it so; otherwise the steps are skipped, as for any API kbroker does not advertise). The run's brokers
        # verify transactions (transaction.partition.verification.enable=true, the default): the transaction
        # coordinator must vouch that the group's __consumer_offsets partition is in the producer's transaction.
        # Before AddOffsetsToTxn INVALID_TXN_STATE (TRANSACTION_ABORTABLE from v4), an unknown transactional id
        # INVALID_PRODUCER_ID_MAPPING, another epoch INVALID_PRODUCER_EPOCH (after the topic checks: an unknown
        # topic UNKNOWN_TOPIC_OR_PARTITION); after it NONE, pending (UNSTABLE_OFFSET_COMMIT) until EndTxn's
        # markers, then committed.
        "name": "txn-offset-commit",
        "steps": [
            create("create", [topic("diff-{R}-{L}-to", 1)]),
            {"id": "coordinator", "api": FIND_COORDINATOR, "v": 3, "retry": COORDINATOR_LOADING, "wait": "group",
             "req": {"Key": "diff-{R}-{L}-txo", "KeyType": 0}},
            {"id": "find-txn", "api": FIND_COORDINATOR, "v": 3, "retry": COORDINATOR_LOADING,
             "req": {"Key": "diff-{R}-{L}-tid", "KeyType": 1}},
            {"id": "init", "api": INIT_PRODUCER_ID, "v": "L", "retry": COORDINATOR_LOADING,
             "req": {"TransactionalId": "diff-{R}-{L}-tid", "TransactionTimeoutMs": 60000, "ProducerId": -1,
                     "ProducerEpoch": -1}},
            txn_offset_commit("txn-commit-not-added", "diff-{R}-{L}-tid"),
            txn_offset_commit("txn-commit-unknown-id", "diff-{R}-{L}-none"),
            {"id": "add-offsets", "api": ADD_OFFSETS_TO_TXN, "v": "L", "retry": COORDINATOR_LOADING,
             "req": {"TransactionalId": "diff-{R}-{L}-tid", "ProducerId": Ref("init", "ProducerId"),
                     "ProducerEpoch": Ref("init", "ProducerEpoch"), "GroupId": "diff-{R}-{L}-txo"}},
            txn_offset_commit("txn-commit-old-epoch", "diff-{R}-{L}-tid", epoch_delta=-1),
            txn_offset_commit("txn-commit", "diff-{R}-{L}-tid"),
            {"id": "fetch-stable", "api": OFFSET_FETCH, "v": 8, "retry": COORDINATOR_LOADING,
             "req": {"Groups": [{"GroupId": "diff-{R}-{L}-txo", "MemberId": None, "MemberEpoch": -1,
                                 "Topics": [{"Name": "diff-{R}-{L}-to", "PartitionIndexes": [0]}]}],
                     "RequireStable": True}},
            {"id": "commit", "api": END_TXN, "v": "L",
             "req": {"TransactionalId": "diff-{R}-{L}-tid", "ProducerId": Ref("init", "ProducerId"),
                     "ProducerEpoch": Ref("init", "ProducerEpoch"), "Committed": True}},
            # Once the markers are written (pending until then on both brokers): committed.
            {"id": "fetch-committed", "api": OFFSET_FETCH, "v": 8, "retry": COORDINATOR_LOADING + (UNSTABLE_OFFSET,),
             "req": {"Groups": [{"GroupId": "diff-{R}-{L}-txo", "MemberId": None, "MemberEpoch": -1,
                                 "Topics": [{"Name": "diff-{R}-{L}-to", "PartitionIndexes": [0]}]}],
                     "RequireStable": True}},
        ],
    },
    {
        # The transaction coordinator (issue 16): a transactional id's lookup, producer id, partitions and
        # commit, the errors around them. No data: the markers go to the partitions all the same.
        "name": "txn-coordinator",
        "steps": [
            create("create", [topic("diff-{R}-{L}-txc", 2)], v=7),
            {"id": "find", "api": FIND_COORDINATOR, "v": 4, "retry": COORDINATOR_LOADING,
             "req": {"KeyType": 1, "CoordinatorKeys": ["diff-{R}-{L}-tx", "diff-{R}-{L}-tx2"]}},
            {"id": "find-v1", "api": FIND_COORDINATOR, "v": 1, "req": {"Key": "diff-{R}-{L}-tx", "KeyType": 1}},
            {"id": "init", "api": INIT_PRODUCER_ID, "v": "L", "retry": COORDINATOR_LOADING,
             "req": {"TransactionalId": "diff-{R}-{L}-tx", "TransactionTimeoutMs": 60000, "ProducerId": -1,
                     "ProducerEpoch": -1}},
            {"id": "init-bad-timeout", "api": INIT_PRODUCER_ID, "v": "L",
             "req": {"TransactionalId": "diff-{R}-{L}-tx2", "TransactionTimeoutMs": 0, "ProducerId": -1,
                     "ProducerEpoch": -1}},
            {"id": "describe-empty", "api": DESCRIBE_TRANSACTIONS, "v": "L",
             "req": {"TransactionalIds": ["diff-{R}-{L}-tx", "diff-{R}-{L}-none"]}},
            {"id": "add-unknown", "api": ADD_PARTITIONS_TO_TXN, "v": 3,
             "req": {"V3AndBelowTransactionalId": "diff-{R}-{L}-tx", "V3AndBelowProducerId": Ref("init", "ProducerId"),
                     "V3AndBelowProducerEpoch": Ref("init", "ProducerEpoch"),
                     "V3AndBelowTopics": [{"Name": "diff-{R}-{L}-txc", "Partitions": [0]},
                                          {"Name": "diff-{R}-{L}-nope", "Partitions": [0]}]}},
            {"id": "add", "api": ADD_PARTITIONS_TO_TXN, "v": "L",
             "req": {"V3AndBelowTransactionalId": "diff-{R}-{L}-tx", "V3AndBelowProducerId": Ref("init", "ProducerId"),
                     "V3AndBelowProducerEpoch": Ref("init", "ProducerEpoch"),
                     "V3AndBelowTopics": [{"Name": "diff-{R}-{L}-txc", "Partitions": [0, 1]}],
                     "Transactions": [{"TransactionalId": "diff-{R}-{L}-tx", "ProducerId": Ref("init", "ProducerId"),
                                       "ProducerEpoch": Ref("init", "ProducerEpoch"), "VerifyOnly": False,
                                       "Topics": [{"Name": "diff-{R}-{L}-txc", "Partitions": [0, 1]}]}]}},
            {"id": "add-offsets", "api": ADD_OFFSETS_TO_TXN, "v": "L", "retry": COORDINATOR_LOADING,
             "req": {"TransactionalId": "diff-{R}-{L}-tx", "ProducerId": Ref("init", "ProducerId"),
                     "ProducerEpoch": Ref("init", "ProducerEpoch"), "GroupId": "diff-{R}-{L}-txg"}},
            {"id": "end-fenced", "api": END_TXN, "v": "L",
             "req": {"TransactionalId": "diff-{R}-{L}-tx", "ProducerId": Ref("init", "ProducerId"),
                     "ProducerEpoch": Fn(lambda c: c["init"]["ProducerEpoch"] + 1), "Committed": True}},
            {"id": "end-unknown", "api": END_TXN, "v": "L",
             "req": {"TransactionalId": "diff-{R}-{L}-none", "ProducerId": Ref("init", "ProducerId"),
                     "ProducerEpoch": Ref("init", "ProducerEpoch"), "Committed": True}},
            {"id": "commit", "api": END_TXN, "v": "L",
             "req": {"TransactionalId": "diff-{R}-{L}-tx", "ProducerId": Ref("init", "ProducerId"),
                     "ProducerEpoch": Ref("init", "ProducerEpoch"), "Committed": True}},
            # Once the markers are written: an abort of the committed transaction.
            {"id": "abort-after", "api": END_TXN, "v": 3, "retry": (CONCURRENT_TRANSACTIONS,),
             "req": {"TransactionalId": "diff-{R}-{L}-tx", "ProducerId": Ref("init", "ProducerId"),
                     "ProducerEpoch": Ref("init", "ProducerEpoch"), "Committed": False}},
            # A new instance waits (CONCURRENT_TRANSACTIONS) until the commit is complete: then the state
            # listed is the same on both brokers.
            {"id": "init-again", "api": INIT_PRODUCER_ID, "v": "L",
             "retry": COORDINATOR_LOADING + (CONCURRENT_TRANSACTIONS,),
             "req": {"TransactionalId": "diff-{R}-{L}-tx", "TransactionTimeoutMs": 60000, "ProducerId": -1,
                     "ProducerEpoch": -1}},
            {"id": "list", "api": LIST_TRANSACTIONS, "v": "L",
             "req": {"StateFilters": ["Empty", "Bogus"], "ProducerIdFilters": [Ref("init", "ProducerId")],
                     "DurationFilter": -1}},
        ],
    },
    {
        "name": "configs",
        "steps": [
            create("create", [topic("diff-{R}-{L}-c", 1, [("cleanup.policy", "compact")])]),
            {"id": "describe", "api": DESCRIBE_CONFIGS, "v": "L",
             "req": {"Resources": [resource("diff-{R}-{L}-c", ["cleanup.policy", "retention.ms",
                                                               "max.message.bytes", "no.such.config"]),
                                   resource("diff-{R}-{L}-nope", ["retention.ms"])],
                     "IncludeSynonyms": True, "IncludeDocumentation": False}},
            {"id": "alter", "api": ALTER_CONFIGS, "v": "L", "wait": "configs",
             "req": {"ValidateOnly": False, "Resources": [
                 {"ResourceType": 2, "ResourceName": "diff-{R}-{L}-c",
                  "Configs": [{"Name": "retention.ms", "Value": "1000"}]},
                 {"ResourceType": 2, "ResourceName": "diff-{R}-{L}-nope",
                  "Configs": [{"Name": "retention.ms", "Value": "1000"}]}]}},
            {"id": "alter-invalid", "api": ALTER_CONFIGS, "v": "L",
             "req": {"ValidateOnly": False, "Resources": [
                 {"ResourceType": 2, "ResourceName": "diff-{R}-{L}-c",
                  "Configs": [{"Name": "retention.ms", "Value": "abc"}]}]}},
            {"id": "alter-unknown-key", "api": ALTER_CONFIGS, "v": "L",
             "req": {"ValidateOnly": False, "Resources": [
                 {"ResourceType": 2, "ResourceName": "diff-{R}-{L}-c",
                  "Configs": [{"Name": "no.such.config", "Value": "1"}]}]}},
            {"id": "incremental", "api": INCREMENTAL_ALTER_CONFIGS, "v": "L", "wait": "configs",
             "req": {"ValidateOnly": False, "Resources": [
                 {"ResourceType": 2, "ResourceName": "diff-{R}-{L}-c",
                  "Configs": [{"Name": "segment.ms", "ConfigOperation": 0, "Value": "600000"},
                              {"Name": "cleanup.policy", "ConfigOperation": 2, "Value": "delete"}]}]}},
            {"id": "incremental-errors", "api": INCREMENTAL_ALTER_CONFIGS, "v": "L",
             "req": {"ValidateOnly": False, "Resources": [
                 {"ResourceType": 2, "ResourceName": "diff-{R}-{L}-c",
                  "Configs": [{"Name": "retention.ms", "ConfigOperation": 2, "Value": "5"}]},
                 {"ResourceType": 2, "ResourceName": "diff-{R}-{L}-nope",
                  "Configs": [{"Name": "retention.ms", "ConfigOperation": 0, "Value": "5"}]}]}},
            {"id": "describe-all", "api": DESCRIBE_CONFIGS, "v": "L",
             "req": {"Resources": [resource("diff-{R}-{L}-c", None)],
                     "IncludeSynonyms": False, "IncludeDocumentation": False}},
            {"id": "describe-after", "api": DESCRIBE_CONFIGS, "v": "L",
             "req": {"Resources": [resource("diff-{R}-{L}-c", ["cleanup.policy", "retention.ms", "segment.ms"])],
                     "IncludeSynonyms": False, "IncludeDocumentation": False}},
        ],
    },
    {
        "name": "classic-group",
        "steps": [
            create("create", [topic("diff-{R}-{L}-g", 2)]),
            {"id": "coordinator", "api": FIND_COORDINATOR, "v": "L", "retry": COORDINATOR_LOADING, "wait": "group",
             "req": {"Key": "diff-{R}-{L}-group", "KeyType": 0, "CoordinatorKeys": ["diff-{R}-{L}-group"]}},
            {"id": "join1", "api": JOIN_GROUP, "v": "L", "retry": COORDINATOR_LOADING,
             "req": {"GroupId": "diff-{R}-{L}-group", "SessionTimeoutMs": 10000, "RebalanceTimeoutMs": 10000,
                     "MemberId": "", "GroupInstanceId": None, "ProtocolType": "consumer", "Reason": None,
                     "Protocols": [{"Name": "range", "Metadata": b"\x00\x01meta"}]}},
            {"id": "join2", "api": JOIN_GROUP, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-group", "SessionTimeoutMs": 10000, "RebalanceTimeoutMs": 10000,
                     "MemberId": Ref("join1", "MemberId"), "GroupInstanceId": None, "ProtocolType": "consumer",
                     "Reason": None, "Protocols": [{"Name": "range", "Metadata": b"\x00\x01meta"}]}},
            {"id": "sync", "api": SYNC_GROUP, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-group", "GenerationId": Ref("join2", "GenerationId"),
                     "MemberId": Ref("join1", "MemberId"), "GroupInstanceId": None, "ProtocolType": "consumer",
                     "ProtocolName": "range",
                     "Assignments": [{"MemberId": Ref("join1", "MemberId"), "Assignment": b"\x00\x01assigned"}]}},
            {"id": "heartbeat", "api": HEARTBEAT, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-group", "GenerationId": Ref("join2", "GenerationId"),
                     "MemberId": Ref("join1", "MemberId"), "GroupInstanceId": None}},
            {"id": "heartbeat-bad-generation", "api": HEARTBEAT, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-group", "GenerationId": Fn(lambda c: c["join2"]["GenerationId"] + 7),
                     "MemberId": Ref("join1", "MemberId"), "GroupInstanceId": None}},
            {"id": "heartbeat-unknown-member", "api": HEARTBEAT, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-group", "GenerationId": Ref("join2", "GenerationId"),
                     "MemberId": "not-a-member", "GroupInstanceId": None}},
            {"id": "heartbeat-unknown-group", "api": HEARTBEAT, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-nogroup", "GenerationId": 1, "MemberId": "x",
                     "GroupInstanceId": None}},
            {"id": "commit", "api": OFFSET_COMMIT, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-group", "GenerationIdOrMemberEpoch": Ref("join2", "GenerationId"),
                     "MemberId": Ref("join1", "MemberId"), "GroupInstanceId": None, "RetentionTimeMs": -1,
                     "Topics": [{"Name": "diff-{R}-{L}-g", "Partitions": [
                         {"PartitionIndex": 0, "CommittedOffset": 5, "CommittedLeaderEpoch": -1,
                          "CommitTimestamp": -1, "CommittedMetadata": "m0"}]}]}},
            {"id": "commit-bad-generation", "api": OFFSET_COMMIT, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-group",
                     "GenerationIdOrMemberEpoch": Fn(lambda c: c["join2"]["GenerationId"] + 7),
                     "MemberId": Ref("join1", "MemberId"), "GroupInstanceId": None, "RetentionTimeMs": -1,
                     "Topics": [{"Name": "diff-{R}-{L}-g", "Partitions": [
                         {"PartitionIndex": 1, "CommittedOffset": 1, "CommittedLeaderEpoch": -1,
                          "CommitTimestamp": -1, "CommittedMetadata": None}]}]}},
            {"id": "commit-unknown-member", "api": OFFSET_COMMIT, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-group", "GenerationIdOrMemberEpoch": Ref("join2", "GenerationId"),
                     "MemberId": "not-a-member", "GroupInstanceId": None, "RetentionTimeMs": -1,
                     "Topics": [{"Name": "diff-{R}-{L}-g", "Partitions": [
                         {"PartitionIndex": 1, "CommittedOffset": 1, "CommittedLeaderEpoch": -1,
                          "CommitTimestamp": -1, "CommittedMetadata": None}]}]}},
            {"id": "fetch-offsets", "api": OFFSET_FETCH, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-group", "RequireStable": False,
                     "Topics": [{"Name": "diff-{R}-{L}-g", "PartitionIndexes": [0, 1]}],
                     "Groups": [{"GroupId": "diff-{R}-{L}-group", "MemberId": None, "MemberEpoch": -1,
                                 "Topics": [{"Name": "diff-{R}-{L}-g", "PartitionIndexes": [0, 1]}]}]}},
            {"id": "describe", "api": DESCRIBE_GROUPS, "v": "L",
             "req": {"Groups": ["diff-{R}-{L}-group", "diff-{R}-{L}-nogroup"],
                     "IncludeAuthorizedOperations": False}},
            {"id": "list", "api": LIST_GROUPS, "v": "L", "keep_run_groups": True, "req": {"StatesFilter": [], "TypesFilter": []}},
            {"id": "delete-busy", "api": DELETE_GROUPS, "v": "L",
             "req": {"GroupsNames": ["diff-{R}-{L}-group", "diff-{R}-{L}-nogroup"]}},
            {"id": "offset-delete-busy", "api": OFFSET_DELETE, "v": 0,
             "req": {"GroupId": "diff-{R}-{L}-group",
                     "Topics": [{"Name": "diff-{R}-{L}-g", "Partitions": [{"PartitionIndex": 0}]}]}},
            {"id": "leave", "api": LEAVE_GROUP, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-group", "MemberId": Ref("join1", "MemberId"),
                     "Members": [{"MemberId": Ref("join1", "MemberId"), "GroupInstanceId": None,
                                  "Reason": None}]}},
            {"id": "leave-again", "api": LEAVE_GROUP, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-group", "MemberId": Ref("join1", "MemberId"),
                     "Members": [{"MemberId": Ref("join1", "MemberId"), "GroupInstanceId": None,
                                  "Reason": None}]}},
            {"id": "describe-empty", "api": DESCRIBE_GROUPS, "v": "L",
             "req": {"Groups": ["diff-{R}-{L}-group"], "IncludeAuthorizedOperations": False}},
            {"id": "offset-delete", "api": OFFSET_DELETE, "v": 0,
             "req": {"GroupId": "diff-{R}-{L}-group",
                     "Topics": [{"Name": "diff-{R}-{L}-g", "Partitions": [{"PartitionIndex": 0},
                                                                          {"PartitionIndex": 1}]}]}},
            {"id": "delete", "api": DELETE_GROUPS, "v": "L",
             "req": {"GroupsNames": ["diff-{R}-{L}-group"]}},
        ],
    },
    {
        "name": "standalone-commit",
        "steps": [
            create("create", [topic("diff-{R}-{L}-s", 1)]),
            {"id": "coordinator", "api": FIND_COORDINATOR, "v": "L", "retry": COORDINATOR_LOADING, "wait": "group",
             "req": {"Key": "diff-{R}-{L}-solo", "KeyType": 0, "CoordinatorKeys": ["diff-{R}-{L}-solo"]}},
            {"id": "commit", "api": OFFSET_COMMIT, "v": "L", "retry": COORDINATOR_LOADING,
             "req": {"GroupId": "diff-{R}-{L}-solo", "GenerationIdOrMemberEpoch": -1, "MemberId": "",
                     "GroupInstanceId": None, "RetentionTimeMs": -1,
                     "Topics": [{"Name": "diff-{R}-{L}-s", "Partitions": [
                         {"PartitionIndex": 0, "CommittedOffset": 3, "CommittedLeaderEpoch": -1,
                          "CommitTimestamp": -1, "CommittedMetadata": ""}]},
                                {"Name": "diff-{R}-{L}-nope", "Partitions": [
                         {"PartitionIndex": 0, "CommittedOffset": 3, "CommittedLeaderEpoch": -1,
                          "CommitTimestamp": -1, "CommittedMetadata": ""}]}]}},
            {"id": "fetch-offsets", "api": OFFSET_FETCH, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-solo", "RequireStable": False,
                     "Topics": [{"Name": "diff-{R}-{L}-s", "PartitionIndexes": [0, 3]}],
                     "Groups": [{"GroupId": "diff-{R}-{L}-solo", "MemberId": None, "MemberEpoch": -1,
                                 "Topics": [{"Name": "diff-{R}-{L}-s", "PartitionIndexes": [0, 3]}]}]}},
            {"id": "describe", "api": DESCRIBE_GROUPS, "v": "L",
             "req": {"Groups": ["diff-{R}-{L}-solo"], "IncludeAuthorizedOperations": False}},
            {"id": "delete", "api": DELETE_GROUPS, "v": "L", "req": {"GroupsNames": ["diff-{R}-{L}-solo"]}},
        ],
    },
    {
        "name": "consumer-group",
        "steps": [
            create("create", [topic("diff-{R}-{L}-cg", 2)]),
            {"id": "coordinator", "api": FIND_COORDINATOR, "v": "high", "retry": COORDINATOR_LOADING, "wait": "group",
             "req": {"KeyType": 0, "CoordinatorKeys": ["diff-{R}-{L}-cgroup"]}},
            {"id": "join", "api": CONSUMER_GROUP_HEARTBEAT, "v": 0, "retry": COORDINATOR_LOADING,
             "req": {"GroupId": "diff-{R}-{L}-cgroup", "MemberId": "", "MemberEpoch": 0, "InstanceId": None,
                     "RackId": None, "RebalanceTimeoutMs": 10000, "SubscribedTopicNames": ["diff-{R}-{L}-cg"],
                     "ServerAssignor": "uniform", "TopicPartitions": []}},
            {"id": "heartbeat-bad-epoch", "api": CONSUMER_GROUP_HEARTBEAT, "v": 0,
             "req": {"GroupId": "diff-{R}-{L}-cgroup", "MemberId": Ref("join", "MemberId"),
                     "MemberEpoch": Fn(lambda c: c["join"]["MemberEpoch"] + 5), "InstanceId": None,
                     "RackId": None, "RebalanceTimeoutMs": -1, "SubscribedTopicNames": None,
                     "ServerAssignor": None, "TopicPartitions": None}},
            {"id": "describe", "api": CONSUMER_GROUP_DESCRIBE, "v": 0,
             "req": {"GroupIds": ["diff-{R}-{L}-cgroup", "diff-{R}-{L}-nogroup"],
                     "IncludeAuthorizedOperations": False}},
            {"id": "leave", "api": CONSUMER_GROUP_HEARTBEAT, "v": 0,
             "req": {"GroupId": "diff-{R}-{L}-cgroup", "MemberId": Ref("join", "MemberId"), "MemberEpoch": -1,
                     "InstanceId": None, "RackId": None, "RebalanceTimeoutMs": -1, "SubscribedTopicNames": None,
                     "ServerAssignor": None, "TopicPartitions": None}},
        ],
    },
    {
        # KIP-932 (served by both whatever the flag). The member id is the client's (v1); the
        # share-partition is only fetched, never read from: Kafka initialises it asynchronously.
        "name": "share-group",
        "steps": [
            create("create", [topic("diff-{R}-{L}-sh", 1)]),
            metadata("meta", ["diff-{R}-{L}-sh"], v=12),
            {"id": "coordinator", "api": FIND_COORDINATOR, "v": "high", "retry": COORDINATOR_LOADING, "wait": "group",
             "req": {"KeyType": 0, "CoordinatorKeys": ["diff-{R}-{L}-sgroup"]}},
            {"id": "join", "api": SHARE_GROUP_HEARTBEAT, "v": 1, "retry": COORDINATOR_LOADING,
             "req": {"GroupId": "diff-{R}-{L}-sgroup", "MemberId": "diff-{R}-{L}-member-1", "MemberEpoch": 0,
                     "RackId": None, "SubscribedTopicNames": ["diff-{R}-{L}-sh"]}},
            {"id": "join-no-topics", "api": SHARE_GROUP_HEARTBEAT, "v": 1,
             "req": {"GroupId": "diff-{R}-{L}-sgroup", "MemberId": "diff-{R}-{L}-member-2", "MemberEpoch": 0,
                     "RackId": None, "SubscribedTopicNames": None}},
            {"id": "heartbeat-bad-epoch", "api": SHARE_GROUP_HEARTBEAT, "v": 1,
             "req": {"GroupId": "diff-{R}-{L}-sgroup", "MemberId": "diff-{R}-{L}-member-1",
                     "MemberEpoch": Fn(lambda c: c["join"]["MemberEpoch"] + 5), "RackId": None,
                     "SubscribedTopicNames": None}},
            {"id": "heartbeat-unknown-member", "api": SHARE_GROUP_HEARTBEAT, "v": 1,
             "req": {"GroupId": "diff-{R}-{L}-sgroup", "MemberId": "diff-{R}-{L}-nobody", "MemberEpoch": 3,
                     "RackId": None, "SubscribedTopicNames": None}},
            {"id": "describe", "api": SHARE_GROUP_DESCRIBE, "v": 1,
             "req": {"GroupIds": ["diff-{R}-{L}-sgroup", "diff-{R}-{L}-nogroup"], "IncludeAuthorizedOperations": False}},
            {"id": "fetch-no-session", "api": SHARE_FETCH, "v": 1,
             "req": {"GroupId": "diff-{R}-{L}-sgroup", "MemberId": "diff-{R}-{L}-member-1", "ShareSessionEpoch": 1,
                     "MaxWaitMs": 0, "MinBytes": 1, "MaxBytes": 1 << 20, "MaxRecords": 10, "BatchSize": 10,
                     "Topics": [{"TopicId": Ref("meta", "Topics", 0, "TopicId"),
                                 "Partitions": [{"PartitionIndex": 0, "AcknowledgementBatches": []}]}],
                     "ForgottenTopicsData": []}},
            {"id": "fetch-acks-on-open", "api": SHARE_FETCH, "v": 1,
             "req": {"GroupId": "diff-{R}-{L}-sgroup", "MemberId": "diff-{R}-{L}-member-1", "ShareSessionEpoch": 0,
                     "MaxWaitMs": 0, "MinBytes": 1, "MaxBytes": 1 << 20, "MaxRecords": 10, "BatchSize": 10,
                     "Topics": [{"TopicId": Ref("meta", "Topics", 0, "TopicId"),
                                 "Partitions": [{"PartitionIndex": 0, "AcknowledgementBatches": [
                                     {"FirstOffset": 0, "LastOffset": 0, "AcknowledgeTypes": [1]}]}]}],
                     "ForgottenTopicsData": []}},
            # One unknown thing per request: Kafka orders a response's topics by its own map, not the request's.
            {"id": "fetch-unknown-topic", "api": SHARE_FETCH, "v": 1,
             "req": {"GroupId": "diff-{R}-{L}-sgroup", "MemberId": "diff-{R}-{L}-member-1", "ShareSessionEpoch": 0,
                     "MaxWaitMs": 0, "MinBytes": 1, "MaxBytes": 1 << 20, "MaxRecords": 10, "BatchSize": 10,
                     "Topics": [{"TopicId": UNKNOWN_ID,
                                 "Partitions": [{"PartitionIndex": 0, "AcknowledgementBatches": []}]}],
                     "ForgottenTopicsData": []}},
            {"id": "fetch-unknown-partition", "api": SHARE_FETCH, "v": 1,
             "req": {"GroupId": "diff-{R}-{L}-sgroup", "MemberId": "diff-{R}-{L}-member-1", "ShareSessionEpoch": 0,
                     "MaxWaitMs": 0, "MinBytes": 1, "MaxBytes": 1 << 20, "MaxRecords": 10, "BatchSize": 10,
                     "Topics": [{"TopicId": Ref("meta", "Topics", 0, "TopicId"),
                                 "Partitions": [{"PartitionIndex": 7, "AcknowledgementBatches": []}]}],
                     "ForgottenTopicsData": []}},
            {"id": "fetch-wrong-epoch", "api": SHARE_FETCH, "v": 1,
             "req": {"GroupId": "diff-{R}-{L}-sgroup", "MemberId": "diff-{R}-{L}-member-1", "ShareSessionEpoch": 5,
                     "MaxWaitMs": 0, "MinBytes": 1, "MaxBytes": 1 << 20, "MaxRecords": 10, "BatchSize": 10,
                     "Topics": [], "ForgottenTopicsData": []}},
            {"id": "fetch-close", "api": SHARE_FETCH, "v": 1,
             "req": {"GroupId": "diff-{R}-{L}-sgroup", "MemberId": "diff-{R}-{L}-member-1", "ShareSessionEpoch": -1,
                     "MaxWaitMs": 0, "MinBytes": 1, "MaxBytes": 1 << 20, "MaxRecords": 10, "BatchSize": 10,
                     "Topics": [], "ForgottenTopicsData": []}},
            {"id": "ack-epoch-0", "api": SHARE_ACKNOWLEDGE, "v": 1,
             "req": {"GroupId": "diff-{R}-{L}-sgroup", "MemberId": "diff-{R}-{L}-member-1", "ShareSessionEpoch": 0,
                     "Topics": []}},
            {"id": "leave", "api": SHARE_GROUP_HEARTBEAT, "v": 1,
             "req": {"GroupId": "diff-{R}-{L}-sgroup", "MemberId": "diff-{R}-{L}-member-1", "MemberEpoch": -1,
                     "RackId": None, "SubscribedTopicNames": None}},
            {"id": "describe-empty", "api": SHARE_GROUP_DESCRIBE, "v": 1,
             "req": {"GroupIds": ["diff-{R}-{L}-sgroup"], "IncludeAuthorizedOperations": False}},
        ],
    },
    {
        # KIP-932 admin: the share-group offset APIs, DeleteGroups
        # of a share group and share.* group configs. One unknown thing per request (Kafka orders a response's
        # topics by its own map); configs are described only where never set (Kafka publishes a change later).
        "name": "share-admin",
        "steps": [
            create("create", [topic("diff-{R}-{L}-sa", 2)]),
            produce("produce", "diff-{R}-{L}-sa", [(0, batch(3))]),
            {"id": "coordinator", "api": FIND_COORDINATOR, "v": "high", "retry": COORDINATOR_LOADING, "wait": "group",
             "req": {"KeyType": 0, "CoordinatorKeys": ["diff-{R}-{L}-sagroup"]}},
            {"id": "describe-unknown", "api": DESCRIBE_SHARE_GROUP_OFFSETS, "v": "L", "retry": COORDINATOR_LOADING,
             "req": {"Groups": [{"GroupId": "diff-{R}-{L}-sagroup", "Topics": None}]}},
            {"id": "describe-unknown-named", "api": DESCRIBE_SHARE_GROUP_OFFSETS, "v": "L",
             "req": {"Groups": [{"GroupId": "diff-{R}-{L}-sagroup",
                                 "Topics": [{"TopicName": "diff-{R}-{L}-sa", "Partitions": [0, 1]}]}]}},
            {"id": "delete-offsets-unknown", "api": DELETE_SHARE_GROUP_OFFSETS, "v": 0, "retry": COORDINATOR_LOADING,
             "req": {"GroupId": "diff-{R}-{L}-sagroup", "Topics": [{"TopicName": "diff-{R}-{L}-sa"}]}},
            {"id": "delete-group-unknown", "api": DELETE_GROUPS, "v": "L",
             "req": {"GroupsNames": ["diff-{R}-{L}-sagroup"]}},
            {"id": "alter-new-group", "api": ALTER_SHARE_GROUP_OFFSETS, "v": 0, "retry": COORDINATOR_LOADING,
             "req": {"GroupId": "diff-{R}-{L}-sagroup", "Topics": [
                 {"TopicName": "diff-{R}-{L}-sa", "Partitions": [{"PartitionIndex": 0, "StartOffset": 1}]}]}},
            {"id": "alter-unknown-partition", "api": ALTER_SHARE_GROUP_OFFSETS, "v": 0,
             "req": {"GroupId": "diff-{R}-{L}-sagroup", "Topics": [
                 {"TopicName": "diff-{R}-{L}-sa", "Partitions": [{"PartitionIndex": 9, "StartOffset": 0}]}]}},
            {"id": "alter-unknown-topic", "api": ALTER_SHARE_GROUP_OFFSETS, "v": 0,
             "req": {"GroupId": "diff-{R}-{L}-sagroup", "Topics": [
                 {"TopicName": "diff-{R}-{L}-nope", "Partitions": [{"PartitionIndex": 0, "StartOffset": 0}]}]}},
            {"id": "describe-altered", "api": DESCRIBE_SHARE_GROUP_OFFSETS, "v": "L",
             "req": {"Groups": [{"GroupId": "diff-{R}-{L}-sagroup", "Topics": None}]}},
            {"id": "join", "api": SHARE_GROUP_HEARTBEAT, "v": 1, "retry": COORDINATOR_LOADING,
             "req": {"GroupId": "diff-{R}-{L}-sagroup", "MemberId": "diff-{R}-{L}-member-1", "MemberEpoch": 0,
                     "RackId": None, "SubscribedTopicNames": ["diff-{R}-{L}-sa"]}},
            {"id": "alter-member-present", "api": ALTER_SHARE_GROUP_OFFSETS, "v": 0,
             "req": {"GroupId": "diff-{R}-{L}-sagroup", "Topics": [
                 {"TopicName": "diff-{R}-{L}-sa", "Partitions": [{"PartitionIndex": 0, "StartOffset": 0}]}]}},
            {"id": "delete-offsets-member-present", "api": DELETE_SHARE_GROUP_OFFSETS, "v": 0,
             "req": {"GroupId": "diff-{R}-{L}-sagroup", "Topics": [{"TopicName": "diff-{R}-{L}-sa"}]}},
            {"id": "delete-group-member-present", "api": DELETE_GROUPS, "v": "L",
             "req": {"GroupsNames": ["diff-{R}-{L}-sagroup"]}},
            {"id": "leave", "api": SHARE_GROUP_HEARTBEAT, "v": 1,
             "req": {"GroupId": "diff-{R}-{L}-sagroup", "MemberId": "diff-{R}-{L}-member-1", "MemberEpoch": -1,
                     "RackId": None, "SubscribedTopicNames": None}},
            {"id": "delete-offsets-unknown-topic", "api": DELETE_SHARE_GROUP_OFFSETS, "v": 0,
             "req": {"GroupId": "diff-{R}-{L}-sagroup", "Topics": [{"TopicName": "diff-{R}-{L}-nope"}]}},
            {"id": "delete-offsets", "api": DELETE_SHARE_GROUP_OFFSETS, "v": 0,
             "req": {"GroupId": "diff-{R}-{L}-sagroup", "Topics": [{"TopicName": "diff-{R}-{L}-sa"}]}},
            {"id": "describe-deleted-offsets", "api": DESCRIBE_SHARE_GROUP_OFFSETS, "v": "L",
             "req": {"Groups": [{"GroupId": "diff-{R}-{L}-sagroup", "Topics": None}]}},
            {"id": "delete-group", "api": DELETE_GROUPS, "v": "L", "req": {"GroupsNames": ["diff-{R}-{L}-sagroup"]}},
            {"id": "config-set", "api": INCREMENTAL_ALTER_CONFIGS, "v": "L",
             "req": {"Resources": [{"ResourceType": 32, "ResourceName": "diff-{R}-{L}-sacfg", "Configs": [
                 {"Name": "share.auto.offset.reset", "ConfigOperation": 0, "Value": "earliest"}]}],
                 "ValidateOnly": False}},
            {"id": "config-bad-value", "api": INCREMENTAL_ALTER_CONFIGS, "v": "L",
             "req": {"Resources": [{"ResourceType": 32, "ResourceName": "diff-{R}-{L}-sacfg", "Configs": [
                 {"Name": "share.record.lock.duration.ms", "ConfigOperation": 0, "Value": "999"}]}],
                 "ValidateOnly": False}},
            {"id": "config-unknown-name", "api": INCREMENTAL_ALTER_CONFIGS, "v": "L",
             "req": {"Resources": [{"ResourceType": 32, "ResourceName": "diff-{R}-{L}-sacfg", "Configs": [
                 {"Name": "share.nosuch", "ConfigOperation": 0, "Value": "1"}]}], "ValidateOnly": False}},
            {"id": "config-describe-unset", "api": DESCRIBE_CONFIGS, "v": "L",
             "req": {"Resources": [resource("diff-{R}-{L}-sanever", ["share.auto.offset.reset",
                                                                   "share.delivery.count.limit"], rtype=32)],
                     "IncludeSynonyms": False, "IncludeDocumentation": False}},
        ],
    },
    {
        "name": "more-errors",
        "steps": [
            create("create", [topic("diff-{R}-{L}-e", 1)]),
            create("create-names", [topic(".", 1), topic("..", 1), topic("diff-{R}-{L}-" + "x" * 240, 1),
                                    topic("__consumer_offsets", 1), topic("diff-{R}-{L}-e", 1),
                                    topic("diff-{R}-{L}-default", -1, rf=-1)], v="L"),
            produce("produce-acks-2", "diff-{R}-{L}-e", [(0, batch(1))], acks=2),
            list_offsets("list-offsets-unknown-topic", "diff-{R}-{L}-nope", [(0, -1)]),
            {"id": "delete-records-hw", "api": DELETE_RECORDS, "v": "L",
             "req": {"TimeoutMs": 30000, "Topics": [
                 {"Name": "diff-{R}-{L}-e", "Partitions": [{"PartitionIndex": 0, "Offset": -1}]},
                 {"Name": "diff-{R}-{L}-nope", "Partitions": [{"PartitionIndex": 0, "Offset": 0}]}]}},
            {"id": "offsets-unknown-group", "api": OFFSET_FETCH, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-nogroup", "RequireStable": False,
                     "Topics": [{"Name": "diff-{R}-{L}-e", "PartitionIndexes": [0]}],
                     "Groups": [{"GroupId": "diff-{R}-{L}-nogroup", "MemberId": None, "MemberEpoch": -1,
                                 "Topics": [{"Name": "diff-{R}-{L}-e", "PartitionIndexes": [0]}]}]}},
            {"id": "join-bad-session", "api": JOIN_GROUP, "v": "L", "retry": COORDINATOR_LOADING,
             "req": {"GroupId": "diff-{R}-{L}-eg", "SessionTimeoutMs": 10, "RebalanceTimeoutMs": 10000,
                     "MemberId": "", "GroupInstanceId": None, "ProtocolType": "consumer", "Reason": None,
                     "Protocols": [{"Name": "range", "Metadata": b""}]}},
            {"id": "join-no-protocols", "api": JOIN_GROUP, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-eg", "SessionTimeoutMs": 10000, "RebalanceTimeoutMs": 10000,
                     "MemberId": "", "GroupInstanceId": None, "ProtocolType": "", "Reason": None,
                     "Protocols": []}},
            {"id": "sync-unknown-group", "api": SYNC_GROUP, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-nogroup", "GenerationId": 1, "MemberId": "m",
                     "GroupInstanceId": None, "ProtocolType": "consumer", "ProtocolName": "range",
                     "Assignments": []}},
            {"id": "leave-unknown-group", "api": LEAVE_GROUP, "v": "L",
             "req": {"GroupId": "diff-{R}-{L}-nogroup", "MemberId": "m",
                     "Members": [{"MemberId": "m", "GroupInstanceId": None, "Reason": None}]}},
            {"id": "describe-broker", "api": DESCRIBE_CONFIGS, "v": "L",
             "req": {"Resources": [resource("1", ["num.partitions", "auto.create.topics.enable",
                                                  "message.max.bytes", "log.retention.hours"], rtype=4)],
                     "IncludeSynonyms": False, "IncludeDocumentation": False}},
            {"id": "alter-validate-only", "api": ALTER_CONFIGS, "v": "L",
             "req": {"ValidateOnly": True, "Resources": [
                 {"ResourceType": 2, "ResourceName": "diff-{R}-{L}-e",
                  "Configs": [{"Name": "retention.ms", "Value": "1234"}]}]}},
            {"id": "describe-after-validate", "api": DESCRIBE_CONFIGS, "v": "L",
             "req": {"Resources": [resource("diff-{R}-{L}-e", ["retention.ms"])],
                     "IncludeSynonyms": False, "IncludeDocumentation": False}},
            {"id": "cg-unknown-member", "api": CONSUMER_GROUP_HEARTBEAT, "v": 0, "retry": COORDINATOR_LOADING,
             "req": {"GroupId": "diff-{R}-{L}-ecg", "MemberId": "no-such-member", "MemberEpoch": 3,
                     "InstanceId": None, "RackId": None, "RebalanceTimeoutMs": -1, "SubscribedTopicNames": None,
                     "ServerAssignor": None, "TopicPartitions": None}},
            {"id": "cg-empty-group-id", "api": CONSUMER_GROUP_HEARTBEAT, "v": 0,
             "req": {"GroupId": "", "MemberId": "", "MemberEpoch": 0, "InstanceId": None, "RackId": None,
                     "RebalanceTimeoutMs": 10000, "SubscribedTopicNames": ["diff-{R}-{L}-e"],
                     "ServerAssignor": None, "TopicPartitions": []}},
        ],
    },
    {
        # Neither broker has an authorizer here: every ACL API answers SECURITY_DISABLED.
        "name": "acls",
        "steps": [
            {"id": "describe-acls", "api": DESCRIBE_ACLS, "v": "L",
             "req": {"ResourceTypeFilter": 1, "ResourceNameFilter": None, "PatternTypeFilter": 1,
                     "PrincipalFilter": None, "HostFilter": None, "Operation": 1, "PermissionType": 1}},
            {"id": "create-acls", "api": CREATE_ACLS, "v": "L",
             "req": {"Creations": [{"ResourceType": 2, "ResourceName": "diff-{R}-{L}-acl", "ResourcePatternType": 3,
                                    "Principal": "User:alice", "Host": "*", "Operation": 3, "PermissionType": 3}]}},
            {"id": "delete-acls", "api": DELETE_ACLS, "v": "L",
             "req": {"Filters": [{"ResourceTypeFilter": 2, "ResourceNameFilter": "diff-{R}-{L}-acl",
                                  "PatternTypeFilter": 3, "PrincipalFilter": None, "HostFilter": None,
                                  "Operation": 1, "PermissionType": 1}]}},
        ],
    },
    {
        # The shared targets listen on PLAINTEXT: both SASL APIs answer ILLEGAL_SASL_STATE there.
        "name": "sasl-on-plaintext",
        "steps": [
            {"id": "sasl-handshake", "api": SASL_HANDSHAKE, "v": "L", "req": {"Mechanism": "PLAIN"}},
            {"id": "sasl-authenticate", "api": SASL_AUTHENTICATE, "v": "L", "req": {"AuthBytes": b"\0u\0p"}},
        ],
    },
    {
        "name": "cluster",
        "steps": [
            {"id": "describe-cluster", "api": DESCRIBE_CLUSTER, "v": "L",
             "req": {"IncludeClusterAuthorizedOperations": False, "EndpointType": 1}},
            # No topics (v0's empty list means all of them, the shared Kafka's too).
            metadata("metadata-brokers", [], v="high"),
        ],
    },
    {
        # Client quotas (KIP-546): a run-unique user, described before it has any (no race with Kafka's
        # asynchronous propagation to its broker), set, refused, removed; Kafka's refusals of a filter.
        "name": "client-quotas",
        "steps": [
            {"id": "describe-none", "api": DESCRIBE_CLIENT_QUOTAS, "v": "L",
             "req": {"Components": [{"EntityType": "user", "MatchType": 0, "Match": "q-{R}-{L}"}], "Strict": False}},
            {"id": "describe-bad", "api": DESCRIBE_CLIENT_QUOTAS, "v": "L",
             "req": {"Components": [{"EntityType": "user", "MatchType": 1, "Match": "x"}], "Strict": False}},
            {"id": "describe-strict-empty", "api": DESCRIBE_CLIENT_QUOTAS, "v": "L",
             "req": {"Components": [], "Strict": True}},
            # One entry per request: Kafka answers several in its HashMap's order of the entities.
            {"id": "alter-set", "api": ALTER_CLIENT_QUOTAS, "v": "L",
             "req": {"Entries": [
                 {"Entity": [{"EntityType": "user", "EntityName": "q-{R}-{L}"},
                             {"EntityType": "client-id", "EntityName": None}],
                  "Ops": [{"Key": "producer_byte_rate", "Value": 1048576.0, "Remove": False}]}],
                 "ValidateOnly": False}},
            {"id": "alter-refused", "api": ALTER_CLIENT_QUOTAS, "v": "L",
             "req": {"Entries": [
                 {"Entity": [{"EntityType": "user", "EntityName": "q2-{R}-{L}"}],
                  "Ops": [{"Key": "producer_byte_rate", "Value": 1.5, "Remove": False}]}],
                 "ValidateOnly": False}},
            {"id": "alter-remove", "api": ALTER_CLIENT_QUOTAS, "v": "L",
             "req": {"Entries": [
                 {"Entity": [{"EntityType": "user", "EntityName": "q-{R}-{L}"},
                             {"EntityType": "client-id", "EntityName": None}],
                  "Ops": [{"Key": "producer_byte_rate", "Value": 0.0, "Remove": True}]}],
                 "ValidateOnly": False}},
        ],
    },
    {
        # SCRAM credentials: only answers that do not wait for Kafka to apply a change to its credential cache
        # (a describe right after an upsert would race it): an unknown user, refused upserts (one per request:
        # Kafka answers several in its hash order), a duplicate, an accepted upsert, the deletion of what does
        # not exist.
        "name": "scram-credentials",
        "steps": [
            {"id": "describe-unknown", "api": DESCRIBE_USER_SCRAM_CREDENTIALS, "v": "L",
             "req": {"Users": [{"Name": "s-{R}-{L}"}]}},
            {"id": "alter-too-few-iterations", "api": ALTER_USER_SCRAM_CREDENTIALS, "v": "L",
             "req": {"Deletions": [], "Upsertions": [
                 {"Name": "s1-{R}-{L}", "Mechanism": 1, "Iterations": 100, "Salt": b"salt" * 4,
                  "SaltedPassword": b"p" * 32}]}},
            {"id": "alter-unknown-mechanism", "api": ALTER_USER_SCRAM_CREDENTIALS, "v": "L",
             "req": {"Deletions": [], "Upsertions": [
                 {"Name": "s2-{R}-{L}", "Mechanism": 9, "Iterations": 4096, "Salt": b"salt" * 4,
                  "SaltedPassword": b"p" * 32}]}},
            {"id": "alter-empty-name", "api": ALTER_USER_SCRAM_CREDENTIALS, "v": "L",
             "req": {"Deletions": [], "Upsertions": [
                 {"Name": "", "Mechanism": 1, "Iterations": 4096, "Salt": b"salt" * 4,
                  "SaltedPassword": b"p" * 32}]}},
            {"id": "alter-twice", "api": ALTER_USER_SCRAM_CREDENTIALS, "v": "L",
             "req": {"Deletions": [{"Name": "s3-{R}-{L}", "Mechanism": 1}], "Upsertions": [
                 {"Name": "s3-{R}-{L}", "Mechanism": 2, "Iterations": 4096, "Salt": b"salt" * 4,
                  "SaltedPassword": b"p" * 64}]}},
            {"id": "alter-set", "api": ALTER_USER_SCRAM_CREDENTIALS, "v": "L",
             "req": {"Deletions": [], "Upsertions": [
                 {"Name": "s4-{R}-{L}", "Mechanism": 2, "Iterations": 8192, "Salt": b"salt" * 4,
                  "SaltedPassword": b"p" * 64}]}},
            {"id": "delete-absent", "api": ALTER_USER_SCRAM_CREDENTIALS, "v": "L",
             "req": {"Deletions": [{"Name": "s5-{R}-{L}", "Mechanism": 1}], "Upsertions": []}},
        ],
    },
]
