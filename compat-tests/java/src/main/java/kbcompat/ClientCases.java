/*
 * Owns: the kafka-clients cases: producer (keys, headers, codecs, idempotence, acks), consumer (assign,
 * subscribe with the classic and the KIP-848 consumer protocol, commit and resume), admin, and error cases.
 * Must not: depend on another case's topics or groups (each case names its own with Env.name).
 */
package kbcompat;

import static kbcompat.Util.check;
import static kbcompat.Util.eq;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.DeletedRecords;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.NoOffsetForPartitionException;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.consumer.OffsetOutOfRangeException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;

final class ClientCases {
    private ClientCases() {}

    static void register(Main.Env env) {
        Main.add("clients/producer-keys-headers", 60000, () -> keysHeaders(env));
        for (String codec : List.of("gzip", "snappy", "lz4", "zstd")) {
            Main.add("clients/producer-codec-" + codec, 60000, () -> codec(env, codec));
        }
        Main.add("clients/producer-idempotent", 60000, () -> idempotent(env));
        Main.add("clients/producer-acks-1", 60000, () -> acks(env, "1"));
        Main.add("clients/producer-acks-all", 60000, () -> acks(env, "all"));
        Main.add("clients/consumer-assign-seek", 60000, () -> assignSeek(env));
        Main.add("clients/consumer-subscribe-classic", 90000, () -> subscribe(env, "classic"));
        Main.add("clients/consumer-subscribe-consumer", 90000, () -> subscribe(env, "consumer"));
        Main.add("clients/group-two-members-classic", 90000, () -> twoMembers(env, "classic"));
        Main.add("clients/group-two-members-consumer", 90000, () -> twoMembers(env, "consumer"));
        Main.add("clients/commit-resume-classic", 90000, () -> commitResume(env, "classic"));
        Main.add("clients/commit-resume-consumer", 90000, () -> commitResume(env, "consumer"));
        Main.add("clients/admin-topics-partitions", 60000, () -> adminTopics(env));
        Main.add("clients/admin-configs", 60000, () -> adminConfigs(env));
        Main.add("clients/admin-list-offsets", 60000, () -> adminListOffsets(env));
        Main.add("clients/admin-delete-records", 60000, () -> adminDeleteRecords(env));
        Main.add("clients/admin-consumer-groups", 90000, () -> adminGroups(env));
        Main.add("clients/admin-acls-no-authorizer", 60000, () -> adminAcls(env));
        Main.add("clients/error-unknown-topic-no-auto-create", 60000, () -> unknownTopic(env));
        Main.add("clients/error-offset-out-of-range", 60000, () -> outOfRange(env));
        Main.add("clients/error-record-too-large", 60000, () -> tooLarge(env));
    }

    static RecordMetadata send(KafkaProducer<String, String> p, ProducerRecord<String, String> r) throws Exception {
        return p.send(r).get(30, TimeUnit.SECONDS);
    }

    /** Sends and returns the acknowledged metadata of every record, in send order. */
    static List<RecordMetadata> sendAll(KafkaProducer<String, String> p, List<ProducerRecord<String, String>> rs)
            throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (ProducerRecord<String, String> r : rs) {
            fs.add(p.send(r));
        }
        p.flush();
        List<RecordMetadata> out = new ArrayList<>();
        for (Future<RecordMetadata> f : fs) {
            out.add(f.get(30, TimeUnit.SECONDS));
        }
        return out;
    }

    static String key(ConsumerRecord<?, ?> r) {
        return r.partition() + "@" + r.offset();
    }

    static String key(RecordMetadata m) {
        return m.partition() + "@" + m.offset();
    }

    static Map<String, ConsumerRecord<String, String>> byPosition(List<ConsumerRecord<String, String>> rs) {
        Map<String, ConsumerRecord<String, String>> m = new HashMap<>();
        for (ConsumerRecord<String, String> r : rs) {
            check(m.put(key(r), r) == null, "record read twice at " + key(r));
        }
        return m;
    }

    static void keysHeaders(Main.Env env) throws Exception {
        String topic = env.name("keys-headers");
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 3, null);
        }
        List<ProducerRecord<String, String>> rs = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            RecordHeaders h = new RecordHeaders();
            h.add("seq", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
            h.add("dup", "first".getBytes(StandardCharsets.UTF_8));
            h.add("dup", "second".getBytes(StandardCharsets.UTF_8));
            h.add("empty", new byte[0]);
            h.add("null", null);
            String k = i % 7 == 6 ? null : "key-" + (i % 5);
            rs.add(new ProducerRecord<>(topic, null, k, "value-" + i, h));
        }
        List<RecordMetadata> ms;
        try (KafkaProducer<String, String> p = Util.producer(env, "acks", "all")) {
            ms = sendAll(p, rs);
        }
        Map<String, Integer> partOfKey = new HashMap<>();
        for (int i = 0; i < rs.size(); i++) {
            String k = rs.get(i).key();
            if (k != null) {
                Integer prev = partOfKey.putIfAbsent(k, ms.get(i).partition());
                check(prev == null || prev == ms.get(i).partition(), "key " + k + " went to two partitions");
            }
        }
        Map<String, ConsumerRecord<String, String>> got = byPosition(Util.readAll(env, topic, 3, rs.size()));
        eq(rs.size(), got.size(), "records read back");
        for (int i = 0; i < rs.size(); i++) {
            ConsumerRecord<String, String> r = got.get(key(ms.get(i)));
            check(r != null, "no record at acknowledged " + key(ms.get(i)));
            eq(rs.get(i).key(), r.key(), "key at " + key(r));
            eq(rs.get(i).value(), r.value(), "value at " + key(r));
            List<String> hs = new ArrayList<>();
            for (Header h : r.headers()) {
                hs.add(h.key() + "=" + (h.value() == null ? "<null>" : new String(h.value(), StandardCharsets.UTF_8)));
            }
            eq(List.of("seq=" + i, "dup=first", "dup=second", "empty=", "null=<null>"), hs, "headers at " + key(r));
        }
    }

    static void codec(Main.Env env, String codec) throws Exception {
        String topic = env.name("codec-" + codec);
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 1, null);
        }
        List<ProducerRecord<String, String>> rs = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            // Compressible values: each codec really shrinks the batch.
            rs.add(new ProducerRecord<>(topic, "k" + (i % 10), codec + "-" + i + "-" + "abcdefgh".repeat(40)));
        }
        List<RecordMetadata> ms;
        try (KafkaProducer<String, String> p = Util.producer(env, "compression.type", codec, "linger.ms", "20",
                "acks", "all")) {
            ms = sendAll(p, rs);
        }
        List<ConsumerRecord<String, String>> got = Util.readAll(env, topic, 1, rs.size());
        eq(rs.size(), got.size(), "records read back");
        for (int i = 0; i < rs.size(); i++) {
            ConsumerRecord<String, String> r = got.get(i);
            eq((long) i, r.offset(), "offset of record " + i);
            eq((long) i, ms.get(i).offset(), "acknowledged offset of record " + i);
            eq(rs.get(i).key(), r.key(), "key at " + i);
            eq(rs.get(i).value(), r.value(), "value at " + i);
        }
    }

    static void checkDense(List<RecordMetadata> ms, List<ConsumerRecord<String, String>> got,
            List<ProducerRecord<String, String>> rs) {
        Map<String, ConsumerRecord<String, String>> pos = byPosition(got);
        eq(rs.size(), pos.size(), "records read back (duplicates or losses)");
        Map<Integer, Set<Long>> offs = new HashMap<>();
        for (int i = 0; i < rs.size(); i++) {
            RecordMetadata m = ms.get(i);
            check(offs.computeIfAbsent(m.partition(), x -> new HashSet<>()).add(m.offset()),
                    "offset acknowledged twice: " + key(m));
            ConsumerRecord<String, String> r = pos.get(key(m));
            check(r != null, "no record at acknowledged " + key(m));
            eq(rs.get(i).value(), r.value(), "value at " + key(m));
        }
        for (Map.Entry<Integer, Set<Long>> e : offs.entrySet()) {
            for (long o = 0; o < e.getValue().size(); o++) {
                check(e.getValue().contains(o), "partition " + e.getKey() + " has a gap at offset " + o);
            }
        }
    }

    static void idempotent(Main.Env env) throws Exception {
        String topic = env.name("idempotent");
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 4, null);
        }
        List<ProducerRecord<String, String>> rs = new ArrayList<>();
        for (int i = 0; i < 3000; i++) {
            rs.add(new ProducerRecord<>(topic, "key-" + (i % 97), "idem-" + i));
        }
        List<RecordMetadata> ms;
        try (KafkaProducer<String, String> p = Util.producer(env, "enable.idempotence", "true", "acks", "all",
                "max.in.flight.requests.per.connection", "5", "batch.size", "4096", "linger.ms", "5")) {
            ms = sendAll(p, rs);
        }
        checkDense(ms, Util.readAll(env, topic, 4, rs.size()), rs);
        // Per-key order: a key's records are in send order within its partition.
        Map<String, Long> last = new HashMap<>();
        for (int i = 0; i < rs.size(); i++) {
            Long prev = last.put(rs.get(i).key(), ms.get(i).offset());
            check(prev == null || prev < ms.get(i).offset(), "key " + rs.get(i).key() + " out of order");
        }
    }

    static void acks(Main.Env env, String acks) throws Exception {
        String topic = env.name("acks-" + acks);
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 2, null);
        }
        List<ProducerRecord<String, String>> rs = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            rs.add(new ProducerRecord<>(topic, i % 2, null, "acks" + acks + "-" + i));
        }
        List<RecordMetadata> ms;
        try (KafkaProducer<String, String> p = Util.producer(env, "acks", acks, "enable.idempotence", "false")) {
            ms = sendAll(p, rs);
        }
        for (RecordMetadata m : ms) {
            check(m.hasOffset() && m.offset() >= 0, "acks=" + acks + " answered no offset: " + m);
        }
        checkDense(ms, Util.readAll(env, topic, 2, rs.size()), rs);
    }

    static void produceValues(Main.Env env, String topic, int partition, int n, String prefix) throws Exception {
        List<ProducerRecord<String, String>> rs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            rs.add(new ProducerRecord<>(topic, partition, "k" + i, prefix + i));
        }
        try (KafkaProducer<String, String> p = Util.producer(env, "acks", "all")) {
            sendAll(p, rs);
        }
    }

    static void assignSeek(Main.Env env) throws Exception {
        String topic = env.name("assign");
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 2, null);
        }
        long before = System.currentTimeMillis();
        produceValues(env, topic, 0, 20, "p0-");
        produceValues(env, topic, 1, 10, "p1-");
        TopicPartition p0 = new TopicPartition(topic, 0), p1 = new TopicPartition(topic, 1);
        try (KafkaConsumer<String, String> c = Util.consumer(env)) {
            c.assign(List.of(p0, p1));
            eq(Map.of(p0, 0L, p1, 0L), c.beginningOffsets(List.of(p0, p1)), "beginningOffsets");
            eq(Map.of(p0, 20L, p1, 10L), c.endOffsets(List.of(p0, p1)), "endOffsets");
            Map<TopicPartition, OffsetAndTimestamp> ts = c.offsetsForTimes(Map.of(p0, before, p1, Long.MAX_VALUE));
            check(ts.get(p0) != null && ts.get(p0).offset() == 0, "offsetsForTimes(before first) = " + ts.get(p0));
            check(ts.get(p1) == null, "offsetsForTimes(after last) should be null: " + ts.get(p1));
            c.seek(p0, 15);
            c.seek(p1, 7);
            List<String> got = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 20000;
            while (got.size() < 8 && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    got.add(r.partition() + ":" + r.offset() + ":" + r.value());
                }
            }
            got.sort(null);
            eq(List.of("0:15:p0-15", "0:16:p0-16", "0:17:p0-17", "0:18:p0-18", "0:19:p0-19", "1:7:p1-7", "1:8:p1-8",
                    "1:9:p1-9"), got, "records after seek");
            eq(20L, c.position(p0), "position p0");
            eq(10L, c.position(p1), "position p1");
        }
    }

    static final class Recorder implements ConsumerRebalanceListener {
        final Set<TopicPartition> assigned = new HashSet<>();

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> ps) {
            assigned.removeAll(ps);
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> ps) {
            assigned.addAll(ps);
        }
    }

    static void subscribe(Main.Env env, String protocol) throws Exception {
        String topic = env.name("sub-" + protocol);
        String group = env.name("group-sub-" + protocol);
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 3, null);
            for (int p = 0; p < 3; p++) {
                produceValues(env, topic, p, 10, "v" + p + "-");
            }
            try (KafkaConsumer<String, String> c = Util.consumer(env, "group.id", group, "group.protocol", protocol,
                    "enable.auto.commit", "false")) {
                Recorder rec = new Recorder();
                c.subscribe(List.of(topic), rec);
                Set<String> got = new HashSet<>();
                long deadline = System.currentTimeMillis() + 45000;
                while (got.size() < 30 && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                        check(got.add(r.partition() + ":" + r.offset()), "record delivered twice: " + key(r));
                        eq("v" + r.partition() + "-" + r.offset(), r.value(), "value at " + key(r));
                    }
                }
                eq(30, got.size(), "records consumed by the group member");
                eq(Set.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1), new TopicPartition(topic, 2)),
                        rec.assigned, "partitions the rebalance listener saw assigned");
                c.commitSync(Duration.ofSeconds(20));
                Map<TopicPartition, OffsetAndMetadata> com = c.committed(rec.assigned, Duration.ofSeconds(20));
                for (TopicPartition tp : rec.assigned) {
                    eq(10L, com.get(tp) == null ? null : com.get(tp).offset(), "committed offset of " + tp);
                }
                ConsumerGroupDescription d = a.describeConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS)
                        .get(group);
                eq(protocol.equals("classic") ? GroupType.CLASSIC : GroupType.CONSUMER, d.type(), "group type");
                eq(GroupState.STABLE, d.groupState(), "group state while its member polls");
                eq(1, d.members().size(), "members");
                eq(rec.assigned, d.members().iterator().next().assignment().topicPartitions(), "described assignment");
            }
        }
    }

    /** Two members share a topic's partitions (both polled from this thread) and read each record once. */
    static void twoMembers(Main.Env env, String protocol) throws Exception {
        String topic = env.name("two-" + protocol);
        String group = env.name("group-two-" + protocol);
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 4, null);
        }
        Set<TopicPartition> all = new HashSet<>();
        for (int p = 0; p < 4; p++) {
            all.add(new TopicPartition(topic, p));
        }
        try (KafkaConsumer<String, String> c1 = Util.consumer(env, "group.id", group, "group.protocol", protocol);
                KafkaConsumer<String, String> c2 = Util.consumer(env, "group.id", group, "group.protocol", protocol)) {
            c1.subscribe(List.of(topic));
            c2.subscribe(List.of(topic));
            Map<String, String> seen = new HashMap<>();
            long deadline = System.currentTimeMillis() + 60000;
            boolean produced = false;
            while (seen.size() < 40 && System.currentTimeMillis() < deadline) {
                for (KafkaConsumer<String, String> c : List.of(c1, c2)) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) {
                        String who = c == c1 ? "c1" : "c2";
                        String prev = seen.put(key(r), who);
                        check(prev == null, key(r) + " read by " + prev + " and again by " + who);
                    }
                }
                Set<TopicPartition> s1 = c1.assignment(), s2 = c2.assignment();
                if (!produced && !s1.isEmpty() && !s2.isEmpty()) {
                    Set<TopicPartition> both = new HashSet<>(s1);
                    both.retainAll(s2);
                    Set<TopicPartition> union = new HashSet<>(s1);
                    union.addAll(s2);
                    if (both.isEmpty() && union.equals(all)) {
                        for (int p = 0; p < 4; p++) {
                            produceValues(env, topic, p, 10, "t" + p + "-");
                        }
                        produced = true;
                    }
                }
            }
            check(produced, "the two members never split the 4 partitions: " + c1.assignment() + " / "
                    + c2.assignment());
            eq(40, seen.size(), "records read by the two members together");
            check(seen.containsValue("c1") && seen.containsValue("c2"), "one member read everything: " + seen);
        }
    }

    static void commitResume(Main.Env env, String protocol) throws Exception {
        String topic = env.name("resume-" + protocol);
        String group = env.name("group-resume-" + protocol);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 1, null);
        }
        produceValues(env, topic, 0, 20, "r-");
        try (KafkaConsumer<String, String> c = Util.consumer(env, "group.id", group, "group.protocol", protocol,
                "enable.auto.commit", "false", "max.poll.records", "3")) {
            c.subscribe(List.of(topic));
            int n = 0;
            long deadline = System.currentTimeMillis() + 45000;
            while (n < 10 && System.currentTimeMillis() < deadline) {
                n += c.poll(Duration.ofMillis(200)).count();
            }
            check(n >= 10, "first consumer read only " + n + " records");
            c.commitSync(Map.of(tp, new OffsetAndMetadata(10, "resume-here")), Duration.ofSeconds(20));
        }
        try (KafkaConsumer<String, String> c = Util.consumer(env, "group.id", group, "group.protocol", protocol,
                "enable.auto.commit", "false")) {
            OffsetAndMetadata om = c.committed(Set.of(tp), Duration.ofSeconds(20)).get(tp);
            check(om != null, "no committed offset seen by the second consumer");
            eq(10L, om.offset(), "committed offset");
            eq("resume-here", om.metadata(), "committed metadata");
            c.subscribe(List.of(topic));
            List<Long> offs = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 45000;
            while (offs.size() < 10 && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    offs.add(r.offset());
                    eq("r-" + r.offset(), r.value(), "value at " + r.offset());
                }
            }
            eq(List.of(10L, 11L, 12L, 13L, 14L, 15L, 16L, 17L, 18L, 19L), offs, "offsets the second consumer read");
        }
    }

    static void adminTopics(Main.Env env) throws Exception {
        String topic = env.name("admin-topic");
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 3, Map.of("cleanup.policy", "compact"));
            check(a.listTopics().names().get(30, TimeUnit.SECONDS).contains(topic), "listTopics lacks " + topic);
            TopicDescription d = a.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS).get(topic);
            eq(3, d.partitions().size(), "partitions described");
            check(!d.isInternal(), "topic described as internal");
            check(d.topicId() != null && !d.topicId().toString().isEmpty(), "no topic id");
            for (int i = 0; i < 3; i++) {
                eq(i, d.partitions().get(i).partition(), "partition order");
                eq(1, d.partitions().get(i).replicas().size(), "replicas of partition " + i);
                eq(1, d.partitions().get(i).isr().size(), "isr of partition " + i);
            }
            a.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get(30, TimeUnit.SECONDS);
            Util.waitLeaders(a, topic, 5);
            produceValues(env, topic, 4, 1, "new-partition-");
            try {
                a.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all().get(30, TimeUnit.SECONDS);
                throw new AssertionError("decreasing partitions was accepted");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.InvalidPartitionsException,
                        "decreasing partitions: expected InvalidPartitionsException, got " + e.getCause());
            }
            a.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
            long deadline = System.currentTimeMillis() + 20000;
            while (a.listTopics().names().get(30, TimeUnit.SECONDS).contains(topic)) {
                check(System.currentTimeMillis() < deadline, "deleted topic still listed after 20 s");
                Thread.sleep(100);
            }
            try {
                a.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS);
                throw new AssertionError("describe of a deleted topic succeeded");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof UnknownTopicOrPartitionException,
                        "describe deleted topic: expected UnknownTopicOrPartitionException, got " + e.getCause());
            }
        }
    }

    static ConfigEntry entry(Admin a, ConfigResource r, String name) throws Exception {
        Config c = a.describeConfigs(List.of(r)).all().get(30, TimeUnit.SECONDS).get(r);
        return c.get(name);
    }

    static void adminConfigs(Main.Env env) throws Exception {
        String topic = env.name("admin-configs");
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 1, Map.of("segment.ms", "3600000"));
            ConfigEntry seg = entry(a, r, "segment.ms");
            eq("3600000", seg.value(), "segment.ms set at creation");
            eq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, seg.source(), "source of segment.ms");
            ConfigEntry ret = entry(a, r, "retention.ms");
            check(ret != null, "retention.ms not described");
            eq("604800000", ret.value(), "default retention.ms");
            check(ret.isDefault() || ret.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                    "retention.ms described as set on the topic: " + ret);
            a.incrementalAlterConfigs(Map.of(r, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("max.message.bytes", "200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("segment.ms", ""), AlterConfigOp.OpType.DELETE))))
                    .all().get(30, TimeUnit.SECONDS);
            ret = entry(a, r, "retention.ms");
            eq("3600000", ret.value(), "retention.ms after SET");
            eq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, ret.source(), "source of retention.ms after SET");
            eq("200000", entry(a, r, "max.message.bytes").value(), "max.message.bytes after SET");
            seg = entry(a, r, "segment.ms");
            eq("604800000", seg.value(), "segment.ms after DELETE (the default)");
            check(seg.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "segment.ms still set: " + seg);
            // APPEND to a list config.
            a.incrementalAlterConfigs(Map.of(r, List.of(new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"),
                    AlterConfigOp.OpType.APPEND)))).all().get(30, TimeUnit.SECONDS);
            eq("delete,compact", entry(a, r, "cleanup.policy").value(), "cleanup.policy after APPEND");
            try {
                a.incrementalAlterConfigs(Map.of(r, List.of(new AlterConfigOp(new ConfigEntry("retention.ms", "soon"),
                        AlterConfigOp.OpType.SET)))).all().get(30, TimeUnit.SECONDS);
                throw new AssertionError("retention.ms=soon was accepted");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.InvalidConfigurationException,
                        "bad value: expected InvalidConfigurationException, got " + e.getCause());
            }
            ConfigResource b = new ConfigResource(ConfigResource.Type.BROKER, "1");
            Config bc = a.describeConfigs(List.of(b)).all().get(30, TimeUnit.SECONDS).get(b);
            check(bc.get("num.partitions") != null, "broker 1 configs lack num.partitions");
        }
    }

    static void adminListOffsets(Main.Env env) throws Exception {
        String topic = env.name("list-offsets");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 1, null);
            long base = System.currentTimeMillis() - 100_000;
            try (KafkaProducer<String, String> p = Util.producer(env, "acks", "all")) {
                for (int i = 0; i < 10; i++) {
                    // Record 7 carries the largest timestamp.
                    long ts = i == 7 ? base + 50_000 : base + i * 1000;
                    send(p, new ProducerRecord<>(topic, 0, ts, "k", "ts-" + i));
                }
            }
            eq(0L, lo(a, tp, OffsetSpec.earliest()).offset(), "earliest");
            eq(10L, lo(a, tp, OffsetSpec.latest()).offset(), "latest");
            ListOffsetsResultInfo t = lo(a, tp, OffsetSpec.forTimestamp(base + 4500));
            eq(5L, t.offset(), "offset for a timestamp between records 4 and 5");
            eq(base + 5000, t.timestamp(), "timestamp of that offset");
            ListOffsetsResultInfo mx = lo(a, tp, OffsetSpec.maxTimestamp());
            eq(7L, mx.offset(), "offset of the max timestamp");
            eq(base + 50_000, mx.timestamp(), "max timestamp");
            eq(-1L, lo(a, tp, OffsetSpec.forTimestamp(base + 60_000)).offset(), "offset for a later timestamp");
        }
    }

    static ListOffsetsResultInfo lo(Admin a, TopicPartition tp, OffsetSpec s) throws Exception {
        return a.listOffsets(Map.of(tp, s)).partitionResult(tp).get(30, TimeUnit.SECONDS);
    }

    static void adminDeleteRecords(Main.Env env) throws Exception {
        String topic = env.name("delete-records");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 1, null);
            produceValues(env, topic, 0, 10, "d-");
            DeletedRecords dr = a.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp)
                    .get(30, TimeUnit.SECONDS);
            eq(4L, dr.lowWatermark(), "low watermark after deleteRecords(4)");
            eq(4L, lo(a, tp, OffsetSpec.earliest()).offset(), "earliest after deleteRecords");
            try (KafkaConsumer<String, String> c = Util.consumer(env)) {
                c.assign(List.of(tp));
                c.seekToBeginning(List.of(tp));
                eq(4L, c.position(tp, Duration.ofSeconds(20)), "position after seekToBeginning");
                ConsumerRecords<String, String> got = ConsumerRecords.empty();
                long deadline = System.currentTimeMillis() + 20000;
                while (got.isEmpty() && System.currentTimeMillis() < deadline) {
                    got = c.poll(Duration.ofMillis(200));
                }
                ConsumerRecord<String, String> first = got.iterator().next();
                eq(4L, first.offset(), "first readable offset");
                eq("d-4", first.value(), "first readable value");
            }
            try {
                a.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(11))).all().get(30, TimeUnit.SECONDS);
                throw new AssertionError("deleteRecords past the high watermark was accepted");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.OffsetOutOfRangeException,
                        "deleteRecords past the end: expected OffsetOutOfRangeException, got " + e.getCause());
            }
        }
    }

    static void adminGroups(Main.Env env) throws Exception {
        String topic = env.name("admin-groups");
        String group = env.name("group-admin");
        TopicPartition tp0 = new TopicPartition(topic, 0), tp1 = new TopicPartition(topic, 1);
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 2, null);
            produceValues(env, topic, 0, 5, "g-");
            try (KafkaConsumer<String, String> c = Util.consumer(env, "group.id", group, "enable.auto.commit",
                    "false")) {
                c.subscribe(List.of(topic));
                int n = 0;
                long deadline = System.currentTimeMillis() + 45000;
                while (n < 5 && System.currentTimeMillis() < deadline) {
                    n += c.poll(Duration.ofMillis(200)).count();
                }
                eq(5, n, "records consumed");
                c.commitSync(Duration.ofSeconds(20));
            }
            @SuppressWarnings("deprecation")
            Collection<ConsumerGroupListing> ls = a.listConsumerGroups().all().get(30, TimeUnit.SECONDS);
            check(ls.stream().anyMatch(l -> l.groupId().equals(group)), "listConsumerGroups lacks " + group + ": " + ls);
            Set<String> listed = new HashSet<>();
            a.listGroups().all().get(30, TimeUnit.SECONDS).forEach(g -> listed.add(g.groupId()));
            check(listed.contains(group), "listGroups lacks " + group);
            ConsumerGroupDescription d = a.describeConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS)
                    .get(group);
            eq(GroupState.EMPTY, d.groupState(), "state after the member left");
            eq(0, d.members().size(), "members after the member left");
            Map<TopicPartition, OffsetAndMetadata> offs = a.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            eq(5L, offs.get(tp0) == null ? null : offs.get(tp0).offset(), "committed offset of partition 0");
            a.alterConsumerGroupOffsets(group, Map.of(tp0, new OffsetAndMetadata(2), tp1, new OffsetAndMetadata(0)))
                    .all().get(30, TimeUnit.SECONDS);
            offs = a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            eq(2L, offs.get(tp0).offset(), "offset of partition 0 after alter");
            eq(0L, offs.get(tp1).offset(), "offset of partition 1 after alter");
            a.deleteConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS);
            Set<String> after = new HashSet<>();
            a.listGroups().all().get(30, TimeUnit.SECONDS).forEach(g -> after.add(g.groupId()));
            check(!after.contains(group), "deleted group still listed");
            try {
                a.deleteConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS);
                throw new AssertionError("deleting a deleted group succeeded");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.GroupIdNotFoundException,
                        "delete unknown group: expected GroupIdNotFoundException, got " + e.getCause());
            }
        }
    }

    /** Without an authorizer Kafka answers the ACL APIs with SECURITY_DISABLED (tools probe them). */
    static void adminAcls(Main.Env env) throws Exception {
        org.apache.kafka.common.resource.ResourcePattern rp = new org.apache.kafka.common.resource.ResourcePattern(
                org.apache.kafka.common.resource.ResourceType.TOPIC, env.name("acl-topic"),
                org.apache.kafka.common.resource.PatternType.LITERAL);
        org.apache.kafka.common.acl.AclBinding binding = new org.apache.kafka.common.acl.AclBinding(rp,
                new org.apache.kafka.common.acl.AccessControlEntry("User:alice", "*",
                        org.apache.kafka.common.acl.AclOperation.READ,
                        org.apache.kafka.common.acl.AclPermissionType.ALLOW));
        try (Admin a = Util.admin(env)) {
            List<Runnable> calls = List.of(() -> expectSecurityDisabled("describeAcls", "No Authorizer is configured on the broker",
                    a.describeAcls(org.apache.kafka.common.acl.AclBindingFilter.ANY).values()), () ->
                    expectSecurityDisabled("createAcls", "No Authorizer is configured.", a.createAcls(List.of(binding)).all()), () ->
                    expectSecurityDisabled("deleteAcls", "No Authorizer is configured.",
                            a.deleteAcls(List.of(org.apache.kafka.common.acl.AclBindingFilter.ANY)).all()));
            for (Runnable r : calls) {
                r.run();
            }
        }
    }

    static void expectSecurityDisabled(String what, String message, org.apache.kafka.common.KafkaFuture<?> f) {
        try {
            f.get(30, TimeUnit.SECONDS);
            throw new AssertionError(what + " succeeded without an authorizer");
        } catch (ExecutionException e) {
            check(e.getCause() instanceof org.apache.kafka.common.errors.SecurityDisabledException,
                    what + ": expected SecurityDisabledException, got " + e.getCause());
            eq(message, e.getCause().getMessage(), what + " error message");
        } catch (InterruptedException | java.util.concurrent.TimeoutException e) {
            throw new AssertionError(what + ": " + e);
        }
    }

    static void unknownTopic(Main.Env env) throws Exception {
        String topic = env.name("never-created");
        try (Admin a = Util.admin(env)) {
            try (KafkaConsumer<String, String> c = Util.consumer(env, "allow.auto.create.topics", "false")) {
                List<PartitionInfo> ps = c.partitionsFor(topic, Duration.ofSeconds(10));
                check(ps == null || ps.isEmpty(), "partitionsFor an unknown topic returned " + ps);
            }
            try (KafkaConsumer<String, String> c = Util.consumer(env, "allow.auto.create.topics", "false",
                    "group.id", env.name("group-unknown"))) {
                c.subscribe(List.of(topic));
                long deadline = System.currentTimeMillis() + 2000;
                while (System.currentTimeMillis() < deadline) {
                    check(c.poll(Duration.ofMillis(200)).isEmpty(), "records from an unknown topic");
                }
                check(c.assignment().isEmpty(), "assigned partitions of an unknown topic: " + c.assignment());
            }
            check(!a.listTopics().names().get(30, TimeUnit.SECONDS).contains(topic),
                    "the topic was created although the client did not allow it");
            try {
                a.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS);
                throw new AssertionError("describe of an unknown topic succeeded");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof UnknownTopicOrPartitionException,
                        "describe unknown topic: expected UnknownTopicOrPartitionException, got " + e.getCause());
            }
        }
    }

    static void outOfRange(Main.Env env) throws Exception {
        String topic = env.name("out-of-range");
        TopicPartition tp = new TopicPartition(topic, 0);
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 1, null);
        }
        produceValues(env, topic, 0, 5, "o-");
        try (KafkaConsumer<String, String> c = Util.consumer(env, "auto.offset.reset", "none")) {
            c.assign(List.of(tp));
            c.seek(tp, 100);
            long deadline = System.currentTimeMillis() + 20000;
            OffsetOutOfRangeException seen = null;
            while (seen == null && System.currentTimeMillis() < deadline) {
                try {
                    check(c.poll(Duration.ofMillis(200)).isEmpty(), "records past the end");
                } catch (OffsetOutOfRangeException e) {
                    seen = e;
                }
            }
            check(seen != null, "no OffsetOutOfRangeException within 20 s");
            eq(Map.of(tp, 100L), seen.offsetOutOfRangePartitions(), "out-of-range partitions");
        }
        try (KafkaConsumer<String, String> c = Util.consumer(env, "auto.offset.reset", "none", "group.id",
                env.name("group-none"))) {
            c.assign(List.of(tp));
            try {
                c.poll(Duration.ofSeconds(5));
                throw new AssertionError("no NoOffsetForPartitionException without a committed offset");
            } catch (NoOffsetForPartitionException e) {
                eq(Set.of(tp), e.partitions(), "partitions without an offset");
            }
        }
    }

    static void tooLarge(Main.Env env) throws Exception {
        String topic = env.name("too-large");
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 1, Map.of("max.message.bytes", "2048"));
        }
        try (KafkaProducer<String, String> p = Util.producer(env, "acks", "all", "compression.type", "none",
                "retries", "0", "enable.idempotence", "false")) {
            try {
                send(p, new ProducerRecord<>(topic, 0, "big", "x".repeat(8000)));
                throw new AssertionError("a record over max.message.bytes was accepted");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof RecordTooLargeException,
                        "expected RecordTooLargeException, got " + e.getCause());
            }
            RecordMetadata m = send(p, new ProducerRecord<>(topic, 0, "small", "fits"));
            eq(0L, m.offset(), "offset of the next record (the refused one took none)");
        }
    }
}
