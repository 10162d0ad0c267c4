/*
 * Owns: the KIP-932 share group cases with kafka-clients' KafkaShareConsumer (explicit acknowledgement):
 * two consumers splitting a 2-partition topic, ACCEPT, RELEASE redelivery, REJECT never redelivered, a record
 * left unacknowledged by a closed consumer or past its acquisition lock redelivered with a higher delivery count.
 * Must not: rely on share.auto.offset.reset (a group config): share-partitions start at the latest offset, so
 * every case first warms its group up until a record of each partition came through; or wait without a deadline.
 * Expects group.share.record.lock.duration.ms as in kafka_ref.REF_SETTINGS (5 s) and Kafka's default
 * group.share.delivery.count.limit (5) on every target.
 */
package kbcompat;

import static kbcompat.Util.check;
import static kbcompat.Util.eq;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;

final class ShareCases {
    private ShareCases() {}

    static final long LOCK_MS = 5000;
    static final int DELIVERY_LIMIT = 5;

    static void register(Main.Env env) {
        Main.add("share/two-consumers-split", 150000, () -> split(env));
        Main.add("share/release-redelivered", 120000, () -> release(env));
        Main.add("share/reject-never-again", 120000, () -> reject(env));
        Main.add("share/closed-unacked-redelivered", 120000, () -> closedUnacked(env));
        Main.add("share/lock-timeout-redelivered", 120000, () -> lockTimeout(env));
        Main.add("share/delivery-limit-archives", 120000, () -> deliveryLimit(env));
    }

    static KafkaShareConsumer<String, String> consumer(Main.Env env, String group, String topic) {
        KafkaShareConsumer<String, String> c = new KafkaShareConsumer<>(Util.props(env,
                "group.id", group,
                "share.acknowledgement.mode", "explicit",
                "key.deserializer", StringDeserializer.class.getName(),
                "value.deserializer", StringDeserializer.class.getName()));
        c.subscribe(List.of(topic));
        return c;
    }

    /** One poll; every record is acknowledged with what `decide` says (null: left unacknowledged). */
    interface Decide {
        AcknowledgeType of(ConsumerRecord<String, String> r);
    }

    static List<ConsumerRecord<String, String>> poll(KafkaShareConsumer<String, String> c, long ms, Decide d) {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(ms))) {
            got.add(r);
            AcknowledgeType t = d.of(r);
            if (t != null) {
                c.acknowledge(r, t);
            }
        }
        if (!got.isEmpty()) {
            c.commitSync(Duration.ofSeconds(20));
        }
        return got;
    }

    static void send(KafkaProducer<String, String> p, String topic, int partition, String value) throws Exception {
        p.send(new ProducerRecord<>(topic, partition, null, value)).get();
    }

    /**
     * Until a record of every partition reached one of the consumers (all accepted): only then do the
     * share-partitions exist, starting at the latest offset of the moment they were made.
     */
    static void warmUp(KafkaProducer<String, String> p, String topic, int partitions,
            List<KafkaShareConsumer<String, String>> cs) throws Exception {
        Set<Integer> seen = new HashSet<>();
        long deadline = System.currentTimeMillis() + 60000;
        int i = 0;
        while (seen.size() < partitions) {
            check(System.currentTimeMillis() < deadline, "warm-up: records of partitions " + seen + " only");
            for (int part = 0; part < partitions; part++) {
                if (!seen.contains(part)) {
                    send(p, topic, part, "warm-" + i++);
                }
            }
            for (KafkaShareConsumer<String, String> c : cs) {
                for (ConsumerRecord<String, String> r : poll(c, 300, x -> AcknowledgeType.ACCEPT)) {
                    check(r.value().startsWith("warm-"), "unexpected record during warm-up: " + r.value());
                    seen.add(r.partition());
                }
            }
        }
    }

    static String setUp(Main.Env env, String base, int partitions) throws Exception {
        String topic = env.name(base);
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, partitions, null);
        }
        return topic;
    }

    static void split(Main.Env env) throws Exception {
        String topic = setUp(env, "share-split", 2), group = env.name("sg-split");
        int n = 40;
        try (KafkaProducer<String, String> p = Util.producer(env);
                KafkaShareConsumer<String, String> c1 = consumer(env, group, topic);
                KafkaShareConsumer<String, String> c2 = consumer(env, group, topic)) {
            warmUp(p, topic, 2, List.of(c1, c2));
            for (int i = 0; i < n; i++) {
                send(p, topic, i % 2, "v-" + i);
            }
            Map<String, Integer> by = new HashMap<>();
            long deadline = System.currentTimeMillis() + 60000;
            while (by.size() < n && System.currentTimeMillis() < deadline) {
                int k = 0;
                for (KafkaShareConsumer<String, String> c : List.of(c1, c2)) {
                    k++;
                    for (ConsumerRecord<String, String> r : poll(c, 300, x -> AcknowledgeType.ACCEPT)) {
                        if (r.value().startsWith("warm-")) {
                            continue; // a warm-up record sent after the partition's first one came
                        }
                        Integer before = by.put(r.value(), k);
                        // Accepted at once: a second delivery of the same record (to either) is a double.
                        check(before == null, "record " + r.value() + " delivered twice (consumers " + before
                                + " and " + k + ")");
                        eq((short) 1, r.deliveryCount().orElse((short) -1), "delivery count of " + r.value());
                    }
                }
            }
            eq(n, by.size(), "records received by the two consumers together");
            // Nothing more comes: every record was accepted.
            for (int i = 0; i < 3; i++) {
                for (KafkaShareConsumer<String, String> c : List.of(c1, c2)) {
                    for (ConsumerRecord<String, String> r : poll(c, 300, x -> AcknowledgeType.ACCEPT)) {
                        check(r.value().startsWith("warm-"), "accepted record delivered again: " + r.value());
                    }
                }
            }
        }
    }

    /** Polls c until the record with value v arrives; other records are accepted. */
    static ConsumerRecord<String, String> await(KafkaShareConsumer<String, String> c, String v, AcknowledgeType t,
            long ms) {
        long deadline = System.currentTimeMillis() + ms;
        while (System.currentTimeMillis() < deadline) {
            ConsumerRecord<String, String>[] hit = new ConsumerRecord[1];
            poll(c, 300, r -> {
                if (r.value().equals(v)) {
                    hit[0] = r;
                    return t;
                }
                return AcknowledgeType.ACCEPT;
            });
            if (hit[0] != null) {
                return hit[0];
            }
        }
        throw new AssertionError("record " + v + " not delivered within " + ms + " ms");
    }

    static void release(Main.Env env) throws Exception {
        String topic = setUp(env, "share-release", 1), group = env.name("sg-release");
        try (KafkaProducer<String, String> p = Util.producer(env);
                KafkaShareConsumer<String, String> c = consumer(env, group, topic)) {
            warmUp(p, topic, 1, List.of(c));
            send(p, topic, 0, "r-1");
            ConsumerRecord<String, String> first = await(c, "r-1", AcknowledgeType.RELEASE, 30000);
            eq((short) 1, first.deliveryCount().orElse((short) -1), "first delivery count");
            ConsumerRecord<String, String> again = await(c, "r-1", AcknowledgeType.ACCEPT, 30000);
            eq(first.offset(), again.offset(), "offset of the released record delivered again");
            eq((short) 2, again.deliveryCount().orElse((short) -1), "delivery count after a RELEASE");
        }
    }

    static void reject(Main.Env env) throws Exception {
        String topic = setUp(env, "share-reject", 1), group = env.name("sg-reject");
        try (KafkaProducer<String, String> p = Util.producer(env);
                KafkaShareConsumer<String, String> c = consumer(env, group, topic)) {
            warmUp(p, topic, 1, List.of(c));
            send(p, topic, 0, "x-1");
            await(c, "x-1", AcknowledgeType.REJECT, 30000);
            send(p, topic, 0, "x-2");
            await(c, "x-2", AcknowledgeType.ACCEPT, 30000);
            // Longer than a lock: a rejected record is archived, never offered again.
            long until = System.currentTimeMillis() + LOCK_MS + 2000;
            while (System.currentTimeMillis() < until) {
                for (ConsumerRecord<String, String> r : poll(c, 300, x -> AcknowledgeType.ACCEPT)) {
                    check(!r.value().equals("x-1"), "rejected record delivered again");
                }
            }
        }
    }

    static void closedUnacked(Main.Env env) throws Exception {
        String topic = setUp(env, "share-closed", 1), group = env.name("sg-closed");
        try (KafkaProducer<String, String> p = Util.producer(env);
                KafkaShareConsumer<String, String> b = consumer(env, group, topic)) {
            KafkaShareConsumer<String, String> a = consumer(env, group, topic);
            ConsumerRecord<String, String> held;
            try {
                warmUp(p, topic, 1, List.of(a));
                send(p, topic, 0, "u-1");
                held = await(a, "u-1", null, 30000);
                eq((short) 1, held.deliveryCount().orElse((short) -1), "first delivery count");
            } finally {
                a.close(Duration.ofSeconds(20)); // u-1 never acknowledged
            }
            ConsumerRecord<String, String> again = await(b, "u-1", AcknowledgeType.ACCEPT, 60000);
            eq(held.offset(), again.offset(), "offset of the redelivered record");
            check(again.deliveryCount().orElse((short) -1) > 1,
                    "delivery count of the redelivered record: " + again.deliveryCount());
        }
    }

    static void lockTimeout(Main.Env env) throws Exception {
        String topic = setUp(env, "share-lock", 1), group = env.name("sg-lock");
        try (KafkaProducer<String, String> p = Util.producer(env);
                KafkaShareConsumer<String, String> a = consumer(env, group, topic);
                KafkaShareConsumer<String, String> b = consumer(env, group, topic)) {
            warmUp(p, topic, 1, List.of(a, b));
            send(p, topic, 0, "l-1");
            // a takes it and stalls (no acknowledgement, no poll) past the lock; b gets it then.
            long t0 = System.currentTimeMillis();
            ConsumerRecord<String, String> held = null;
            while (held == null && System.currentTimeMillis() - t0 < 30000) {
                for (ConsumerRecord<String, String> r : poll(a, 300, x -> x.value().equals("l-1") ? null
                        : AcknowledgeType.ACCEPT)) {
                    if (r.value().equals("l-1")) {
                        held = r;
                    }
                }
                if (held == null) {
                    // b polls too (the record may reach it first): it must then not be l-1's first delivery
                    // to a, so b releases everything it sees until a has it.
                    poll(b, 100, x -> x.value().equals("l-1") ? AcknowledgeType.RELEASE : AcknowledgeType.ACCEPT);
                }
            }
            check(held != null, "l-1 never reached consumer a");
            long acquired = System.currentTimeMillis();
            ConsumerRecord<String, String> again = await(b, "l-1", AcknowledgeType.ACCEPT, 60000);
            long waited = System.currentTimeMillis() - acquired;
            eq(held.offset(), again.offset(), "offset of the record whose lock expired");
            check(again.deliveryCount().orElse((short) -1) > held.deliveryCount().orElse((short) 99),
                    "delivery count after the lock timeout: " + again.deliveryCount() + " after "
                            + held.deliveryCount());
            check(waited >= LOCK_MS - 1500, "redelivered after " + waited + " ms, before the lock could expire");
        }
    }

    static void deliveryLimit(Main.Env env) throws Exception {
        String topic = setUp(env, "share-limit", 1), group = env.name("sg-limit");
        try (KafkaProducer<String, String> p = Util.producer(env);
                KafkaShareConsumer<String, String> c = consumer(env, group, topic)) {
            warmUp(p, topic, 1, List.of(c));
            send(p, topic, 0, "d-1");
            for (int i = 1; i <= DELIVERY_LIMIT; i++) {
                ConsumerRecord<String, String> r = await(c, "d-1", AcknowledgeType.RELEASE, 30000);
                eq((short) i, r.deliveryCount().orElse((short) -1), "delivery count of delivery " + i);
            }
            // Released at the limit: archived, never offered again; the next record still comes.
            send(p, topic, 0, "d-2");
            boolean gotNext = false;
            long until = System.currentTimeMillis() + 30000;
            while (System.currentTimeMillis() < until && !gotNext) {
                for (ConsumerRecord<String, String> r : poll(c, 300, x -> AcknowledgeType.ACCEPT)) {
                    check(!r.value().equals("d-1"), "record delivered past the delivery limit: "
                            + r.deliveryCount());
                    gotNext |= r.value().equals("d-2");
                }
            }
            check(gotNext, "d-2 not delivered after d-1 was archived");
            until = System.currentTimeMillis() + 2000;
            while (System.currentTimeMillis() < until) {
                for (ConsumerRecord<String, String> r : poll(c, 300, x -> AcknowledgeType.ACCEPT)) {
                    check(!r.value().equals("d-1"), "record delivered past the delivery limit");
                }
            }
        }
    }
}
