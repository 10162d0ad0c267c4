/*
 * Owns: the transactions v2 (KIP-890 part 2) cases of issue 16 with kafka-clients 4.4.0: the broker finalizes
 * transaction.version 2 (Admin.describeFeatures and kafka-features.sh describe show it), so the producer adds
 * partitions and offsets implicitly through Produce v12 / TxnOffsetCommit v5 and every EndTxn bumps its epoch
 * (seen through DescribeTransactions); commit and abort, read_committed sees exactly the committed records,
 * sendOffsetsToTransaction in a consume-transform-produce loop, a zombie fenced, and transactions of many
 * pipelined batches.
 * Must not: depend on another case's topics, groups or ids, or wait without a deadline.
 */
package kbcompat;

import static kbcompat.Util.check;
import static kbcompat.Util.eq;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;

final class Txn2Cases {
    private Txn2Cases() {}

    static void register(Main.Env env) {
        Main.add("txn2/features", 120000, () -> features(env));
        Main.add("txn2/commit-abort-epoch-bump", 120000, () -> commitAbort(env));
        Main.add("txn2/consume-transform-produce", 180000, () -> consumeTransformProduce(env));
        Main.add("txn2/zombie-fenced", 120000, () -> zombie(env));
        Main.add("txn2/many-in-flight", 180000, () -> manyInFlight(env));
    }

    /**
     * ProducerPerformance's transactional shape (100-byte records as fast as they go, a commit every 100 ms,
     * default batching, several requests in flight): every implicit add meets the previous one's record still
     * being written. Before the coordinator queued those adds, the producer never got to EndTxn on kbroker.
     */
    static void manyInFlight(Main.Env env) throws Exception {
        final int total = 60000, parts = 4;
        String topic = env.name("txn2-mif");
        String id = env.name("txn2-mif-id");
        String pad = Util.repeat("x", 90);
        int txns = 0;
        try (Admin admin = Util.admin(env)) {
            Util.createTopic(admin, topic, parts, null);
            try (KafkaProducer<String, String> p = Util.producer(env, "transactional.id", id, "acks", "all")) {
                p.initTransactions();
                int e0 = epoch(admin, id);
                long begun = System.currentTimeMillis();
                p.beginTransaction();
                for (int i = 0; i < total; i++) {
                    p.send(new ProducerRecord<>(topic, i % parts, null, String.format("%08d", i) + pad));
                    if (System.currentTimeMillis() - begun >= 100 || i == total - 1) {
                        p.commitTransaction();
                        txns++;
                        if (i < total - 1) {
                            begun = System.currentTimeMillis();
                            p.beginTransaction();
                        }
                    }
                }
                eq(e0 + txns, epoch(admin, id), "the producer epoch after the transactions");
            }
        }
        final int txnsDone = txns;
        check(txnsDone >= 2, "several transactions (" + txnsDone + ")");
        Set<String> seen = new java.util.HashSet<>();
        int n = 0;
        try (KafkaConsumer<String, String> c = Util.consumer(env, "isolation.level", "read_committed")) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < parts; i++) {
                tps.add(new TopicPartition(topic, i));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + 60000;
            while (n < total && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    seen.add(r.value());
                    n++;
                }
            }
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(300))) {
                seen.add(r.value());
                n++;
            }
        }
        eq(total, n, "read_committed records");
        eq(total, seen.size(), "distinct read_committed values");
    }

    /** The epoch the coordinator holds for id (DescribeTransactions). */
    static int epoch(Admin admin, String id) throws Exception {
        return admin.describeTransactions(List.of(id)).description(id).get().producerEpoch();
    }

    static void features(Main.Env env) throws Exception {
        try (Admin admin = Util.admin(env)) {
            FeatureMetadata fm = admin.describeFeatures().featureMetadata().get();
            FinalizedVersionRange tv = fm.finalizedFeatures().get("transaction.version");
            check(tv != null, "transaction.version finalized: " + fm);
            eq((short) 2, tv.maxVersionLevel(), "finalized transaction.version");
            check(fm.finalizedFeaturesEpoch().isPresent() && fm.finalizedFeaturesEpoch().get() >= 0,
                    "a finalized features epoch: " + fm);
            check(fm.supportedFeatures().get("transaction.version") != null
                    && fm.supportedFeatures().get("transaction.version").maxVersion() == 2,
                    "transaction.version supported up to 2: " + fm);
        }
        Util.ToolRun run = Util.runTool("org.apache.kafka.tools.FeatureCommand", "--bootstrap-server",
                env.bootstrap(), "describe");
        eq(0, run.code(), "kafka-features describe exit code; output:\n" + run.out());
        boolean line = false;
        for (String l : run.out().split("\n")) {
            line |= l.contains("Feature: transaction.version") && l.contains("SupportedMaxVersion: 2")
                    && l.contains("FinalizedVersionLevel: 2");
        }
        check(line, "kafka-features describe shows transaction.version at level 2:\n" + run.out());
    }

    static void commitAbort(Main.Env env) throws Exception {
        String topic = env.name("txn2-ca");
        String id = env.name("txn2-ca-id");
        List<String> committed = new ArrayList<>(), all = new ArrayList<>();
        try (Admin admin = Util.admin(env)) {
            Util.createTopic(admin, topic, 2, null);
            try (KafkaProducer<String, String> p = TxnCases.txnProducer(env, id)) {
                int e0 = epoch(admin, id);
                // Three transactions: commit, abort, commit. Under v2 every EndTxn bumps the epoch (under v1
                // it stays where InitProducerId put it).
                for (int t = 0; t < 3; t++) {
                    boolean commit = t != 1;
                    p.beginTransaction();
                    for (int i = 0; i < 6; i++) {
                        String v = (commit ? "commit-" : "abort-") + t + "-" + i;
                        p.send(new ProducerRecord<>(topic, i % 2, null, v));
                        all.add(v);
                        if (commit) {
                            committed.add(v);
                        }
                    }
                    if (commit) {
                        p.commitTransaction();
                    } else {
                        p.flush();
                        p.abortTransaction();
                    }
                    eq(e0 + t + 1, epoch(admin, id), "the producer epoch after transaction " + t);
                }
            }
        }
        Collections.sort(committed);
        Collections.sort(all);
        eq(committed, TxnCases.read(env, topic, "read_committed", committed.size()), "read_committed values");
        eq(all, TxnCases.read(env, topic, "read_uncommitted", all.size()), "read_uncommitted values");
    }

    static Map<TopicPartition, Long> committedOffsets(KafkaConsumer<String, String> c, Set<TopicPartition> tps) {
        Map<TopicPartition, Long> out = new HashMap<>();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : c.committed(tps, Duration.ofSeconds(20)).entrySet()) {
            out.put(e.getKey(), e.getValue() == null ? -1L : e.getValue().offset());
        }
        return out;
    }

    static void consumeTransformProduce(Main.Env env) throws Exception {
        final int n = 30;
        String in = env.name("txn2-in"), out = env.name("txn2-out"), group = env.name("txn2-group");
        String id = env.name("txn2-ctp-id");
        try (Admin admin = Util.admin(env)) {
            Util.createTopic(admin, in, 2, null);
            Util.createTopic(admin, out, 2, null);
            List<String> expected = new ArrayList<>();
            try (KafkaProducer<String, String> p = Util.producer(env, "acks", "all")) {
                for (int i = 0; i < n; i++) {
                    p.send(new ProducerRecord<>(in, i % 2, "k" + i, "v" + i)).get();
                    expected.add("T(v" + i + ")");
                }
            }
            Set<TopicPartition> inTps = Set.of(new TopicPartition(in, 0), new TopicPartition(in, 1));
            int txns = 0, abortedRecords = 0;
            try (KafkaConsumer<String, String> c = Util.consumer(env, "group.id", group, "isolation.level",
                         "read_committed", "enable.auto.commit", "false", "max.poll.records", 6);
                 KafkaProducer<String, String> p = TxnCases.txnProducer(env, id)) {
                int e0 = epoch(admin, id);
                c.subscribe(List.of(in));
                Map<TopicPartition, Long> done = new HashMap<>();
                long deadline = System.currentTimeMillis() + 90000;
                while (done.values().stream().mapToLong(Long::longValue).sum() < n) {
                    check(System.currentTimeMillis() < deadline, "consumed " + done + " before the deadline");
                    ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(200));
                    if (rs.isEmpty()) {
                        continue;
                    }
                    Map<TopicPartition, Long> first = new HashMap<>();
                    Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
                    p.beginTransaction();
                    for (ConsumerRecord<String, String> r : rs) {
                        TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                        first.putIfAbsent(tp, r.offset());
                        next.put(tp, new OffsetAndMetadata(r.offset() + 1));
                        p.send(new ProducerRecord<>(out, r.partition(), r.key(), "T(" + r.value() + ")"));
                    }
                    p.sendOffsetsToTransaction(next, c.groupMetadata());
                    txns++;
                    if (txns == 2) {
                        // Aborted: its output stays invisible, the offsets where they were, input read again.
                        p.flush();
                        p.abortTransaction();
                        abortedRecords += rs.count();
                        Map<TopicPartition, Long> want = new HashMap<>();
                        for (TopicPartition tp : inTps) {
                            want.put(tp, done.getOrDefault(tp, -1L));
                        }
                        eq(want, committedOffsets(c, inTps), "the group's offsets after the abort");
                        for (Map.Entry<TopicPartition, Long> e : first.entrySet()) {
                            c.seek(e.getKey(), e.getValue());
                        }
                    } else {
                        p.commitTransaction();
                        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : next.entrySet()) {
                            done.put(e.getKey(), e.getValue().offset());
                        }
                    }
                    eq(e0 + txns, epoch(admin, id), "the producer epoch after transaction " + txns);
                }
                check(txns >= 3, "several transactions (" + txns + ")");
                Map<TopicPartition, Long> end = new HashMap<>();
                for (TopicPartition tp : inTps) {
                    end.put(tp, (long) (n / 2));
                }
                eq(end, committedOffsets(c, inTps), "the group's offsets at the end of the input");
            }
            Collections.sort(expected);
            eq(expected, TxnCases.read(env, out, "read_committed", n), "read_committed output: one copy of each");
            eq(n + abortedRecords, TxnCases.read(env, out, "read_uncommitted", n + abortedRecords).size(),
                    "read_uncommitted output: the aborted copies too");
        }
    }

    static void zombie(Main.Env env) throws Exception {
        String topic = env.name("txn2-z");
        String id = env.name("txn2-z-id");
        Admin admin = Util.admin(env);
        Util.createTopic(admin, topic, 2, null);
        KafkaProducer<String, String> old = TxnCases.txnProducer(env, id);
        try {
            old.beginTransaction();
            old.send(new ProducerRecord<>(topic, 0, null, "zombie")).get();
            try (KafkaProducer<String, String> fresh = TxnCases.txnProducer(env, id)) {
                // The new instance is on v2 too: its commit bumps the epoch its InitProducerId got.
                int e = epoch(admin, id);
                fresh.beginTransaction();
                fresh.send(new ProducerRecord<>(topic, 1, null, "fresh"));
                fresh.commitTransaction();
                eq(e + 1, epoch(admin, id), "the new instance's epoch after its commit");
            }
            Throwable seen = null;
            try {
                old.send(new ProducerRecord<>(topic, 0, null, "zombie-2")).get();
                old.commitTransaction();
            } catch (Exception e) {
                seen = e.getCause() instanceof KafkaException ? e.getCause() : e;
            }
            check(seen instanceof ProducerFencedException || seen instanceof InvalidProducerEpochException,
                    "the zombie must be fenced, got " + seen);
        } finally {
            old.close(Duration.ofSeconds(5));
            admin.close();
        }
        eq(List.of("fresh"), TxnCases.read(env, topic, "read_committed", 1), "read_committed after the fence");
    }
}
