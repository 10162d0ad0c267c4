/*
 * Owns: the exactly-once consume-transform-produce case of issue 16 with kafka-clients 4.4.0: a read_committed
 * consumer in a group and a transactional producer that sends the consumed offsets with each transaction
 * (sendOffsetsToTransaction with the consumer's group metadata), one transaction aborted in the middle.
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
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

final class EosCases {
    private EosCases() {}

    static final int N = 40;

    static void register(Main.Env env) {
        Main.add("eos/consume-transform-produce", 180000, () -> consumeTransformProduce(env));
    }

    static Map<TopicPartition, Long> committed(KafkaConsumer<String, String> c, Set<TopicPartition> tps) {
        Map<TopicPartition, Long> out = new HashMap<>();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : c.committed(tps, Duration.ofSeconds(20)).entrySet()) {
            out.put(e.getKey(), e.getValue() == null ? -1L : e.getValue().offset());
        }
        return out;
    }

    static void consumeTransformProduce(Main.Env env) throws Exception {
        String in = env.name("eos-in"), out = env.name("eos-out"), group = env.name("eos-group");
        try (Admin admin = Util.admin(env)) {
            Util.createTopic(admin, in, 2, null);
            Util.createTopic(admin, out, 2, null);
        }
        List<String> expected = new ArrayList<>();
        try (KafkaProducer<String, String> p = Util.producer(env, "acks", "all")) {
            for (int i = 0; i < N; i++) {
                p.send(new ProducerRecord<>(in, i % 2, "k" + i, "v" + i)).get();
                expected.add("T(v" + i + ")");
            }
        }
        Set<TopicPartition> inTps = Set.of(new TopicPartition(in, 0), new TopicPartition(in, 1));
        int txns = 0, aborted = 0, abortedRecords = 0;
        try (KafkaConsumer<String, String> c = Util.consumer(env, "group.id", group, "isolation.level",
                     "read_committed", "enable.auto.commit", "false", "max.poll.records", 7);
             KafkaProducer<String, String> p = TxnCases.txnProducer(env, env.name("eos-txn"))) {
            c.subscribe(List.of(in));
            Map<TopicPartition, Long> done = new HashMap<>(); // what the committed transactions consumed
            long deadline = System.currentTimeMillis() + 90000;
            while (done.values().stream().mapToLong(Long::longValue).sum() < N) {
                check(System.currentTimeMillis() < deadline, "consumed " + done + " of " + N + " before the deadline");
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
                if (txns == 3) {
                    // The middle one is aborted: its output must stay invisible, the group's offsets where
                    // they were, and its records are consumed again.
                    p.flush();
                    p.abortTransaction();
                    aborted++;
                    abortedRecords += rs.count();
                    Map<TopicPartition, Long> want = new HashMap<>();
                    for (TopicPartition tp : inTps) {
                        want.put(tp, done.containsKey(tp) ? done.get(tp) : -1L);
                    }
                    eq(want, committed(c, inTps), "the group's offsets after the abort");
                    for (Map.Entry<TopicPartition, Long> e : first.entrySet()) {
                        c.seek(e.getKey(), e.getValue());
                    }
                    continue;
                }
                p.commitTransaction();
                for (Map.Entry<TopicPartition, OffsetAndMetadata> e : next.entrySet()) {
                    done.put(e.getKey(), e.getValue().offset());
                }
            }
            check(txns >= 4, "several transactions (" + txns + ")");
            eq(1, aborted, "aborted transactions");
            Map<TopicPartition, Long> end = new HashMap<>();
            for (TopicPartition tp : inTps) {
                end.put(tp, (long) (N / 2));
            }
            eq(end, committed(c, inTps), "the group's offsets at the end of the input");
        }
        Collections.sort(expected);
        eq(expected, TxnCases.read(env, out, "read_committed", N),
                "read_committed output: one transformed copy of each input");
        eq(N + abortedRecords, TxnCases.read(env, out, "read_uncommitted", N + abortedRecords).size(),
                "read_uncommitted output: the aborted copies too");
    }
}
