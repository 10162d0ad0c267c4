/*
 * Owns: the cases that run Kafka's own tools (the classes behind kafka-topics.sh, kafka-configs.sh,
 * kafka-consumer-groups.sh, kafka-get-offsets.sh, the perf tests, e2e latency, the verifiable producer and
 * consumer, ClientCompatibilityTest) and check their output and exit code.
 * Must not: run a tool that calls System.exit in this JVM (those run as child JVMs).
 */
package kbcompat;

import static kbcompat.Util.check;
import static kbcompat.Util.eq;

import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.KafkaConsumer;

final class ToolCases {
    private ToolCases() {}

    static final String T = "org.apache.kafka.tools.";

    static void register(Main.Env env) {
        Main.add("tools/kafka-topics", 60000, () -> topics(env));
        Main.add("tools/kafka-configs", 60000, () -> configs(env));
        Main.add("tools/kafka-consumer-groups", 90000, () -> groups(env));
        Main.add("tools/kafka-get-offsets", 60000, () -> getOffsets(env));
        Main.add("tools/kafka-producer-perf-test", 90000, () -> producerPerf(env));
        Main.add("tools/kafka-consumer-perf-test", 90000, () -> consumerPerf(env));
        Main.add("tools/kafka-e2e-latency", 90000, () -> e2e(env));
        Main.add("tools/verifiable-producer-consumer", 120000, () -> verifiable(env));
        Main.add("tools/client-compatibility-test", 120000, () -> compatibility(env));
    }

    static Util.ToolRun ok(String cls, String... args) throws Exception {
        Util.ToolRun r = Util.runTool(T + cls, args);
        check(r.code() == 0, cls + " " + String.join(" ", args) + " exited " + r.code() + ": " + Util.tail(r.out(), 3000));
        return r;
    }

    static void topics(Main.Env env) throws Exception {
        String topic = env.name("tool-topics");
        String b = env.bootstrap();
        String created = ok("TopicCommand", "--bootstrap-server", b, "--create", "--topic", topic, "--partitions", "3",
                "--replication-factor", "1", "--config", "retention.ms=7200000").out();
        check(created.contains("Created topic " + topic + "."), "create output: " + created);
        check(ok("TopicCommand", "--bootstrap-server", b, "--list").out().lines().anyMatch(l -> l.equals(topic)),
                "--list lacks " + topic);
        try (Admin a = Util.admin(env)) {
            Util.waitLeaders(a, topic, 3);
        }
        String desc = ok("TopicCommand", "--bootstrap-server", b, "--describe", "--topic", topic).out();
        check(desc.contains("PartitionCount: 3") && desc.contains("ReplicationFactor: 1"), "describe: " + desc);
        check(desc.contains("retention.ms=7200000"), "describe lacks the topic config: " + desc);
        for (int p = 0; p < 3; p++) {
            check(Pattern.compile("Partition: " + p + "\\s+Leader: 1\\s+Replicas: 1\\s+Isr: 1").matcher(desc).find(),
                    "describe lacks partition " + p + " led by broker 1: " + desc);
        }
        ok("TopicCommand", "--bootstrap-server", b, "--alter", "--topic", topic, "--partitions", "4");
        try (Admin a = Util.admin(env)) {
            Util.waitLeaders(a, topic, 4);
        }
        desc = ok("TopicCommand", "--bootstrap-server", b, "--describe", "--topic", topic).out();
        check(desc.contains("PartitionCount: 4"), "describe after --alter: " + desc);
        Util.ToolRun dup = Util.runTool(T + "TopicCommand", "--bootstrap-server", b, "--create", "--topic", topic,
                "--partitions", "1");
        check(dup.code() != 0 && dup.out().contains("already exists"), "creating it again: exit " + dup.code() + ": "
                + dup.out());
        ok("TopicCommand", "--bootstrap-server", b, "--delete", "--topic", topic);
        long deadline = System.currentTimeMillis() + 20000;
        while (ok("TopicCommand", "--bootstrap-server", b, "--list").out().lines().anyMatch(l -> l.equals(topic))) {
            check(System.currentTimeMillis() < deadline, "deleted topic still listed after 20 s");
            Thread.sleep(200);
        }
    }

    static void configs(Main.Env env) throws Exception {
        String topic = env.name("tool-configs");
        String b = env.bootstrap();
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 1, null);
        }
        ok("ConfigCommand", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", topic, "--alter",
                "--add-config", "retention.ms=12345,max.message.bytes=65536");
        String d = ok("ConfigCommand", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", topic,
                "--describe").out();
        check(d.contains("retention.ms=12345") && d.contains("max.message.bytes=65536"), "describe: " + d);
        ok("ConfigCommand", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", topic, "--alter",
                "--delete-config", "retention.ms");
        d = ok("ConfigCommand", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", topic,
                "--describe").out();
        check(!d.contains("retention.ms=12345") && d.contains("max.message.bytes=65536"),
                "describe after --delete-config: " + d);
        String all = ok("ConfigCommand", "--bootstrap-server", b, "--entity-type", "topics", "--entity-name", topic,
                "--describe", "--all").out();
        check(all.contains("retention.ms=604800000"), "--describe --all lacks the default retention.ms: " + all);
        String broker = ok("ConfigCommand", "--bootstrap-server", b, "--entity-type", "brokers", "--entity-name", "1",
                "--describe", "--all").out();
        check(broker.contains("num.partitions="), "broker --describe --all lacks num.partitions: " + broker);
    }

    static void groups(Main.Env env) throws Exception {
        String topic = env.name("tool-groups");
        String group = env.name("tool-group");
        String b = env.bootstrap();
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 2, null);
        }
        ClientCases.produceValues(env, topic, 0, 6, "a-");
        ClientCases.produceValues(env, topic, 1, 4, "b-");
        try (KafkaConsumer<String, String> c = Util.consumer(env, "group.id", group, "enable.auto.commit", "false")) {
            c.subscribe(List.of(topic));
            int n = 0;
            long deadline = System.currentTimeMillis() + 45000;
            while (n < 10 && System.currentTimeMillis() < deadline) {
                n += c.poll(Duration.ofMillis(200)).count();
            }
            eq(10, n, "records consumed");
            c.commitSync(Duration.ofSeconds(20));
        }
        ClientCases.produceValues(env, topic, 0, 3, "late-");
        String cmd = "consumer.group.ConsumerGroupCommand";
        check(ok(cmd, "--bootstrap-server", b, "--list").out().lines().anyMatch(l -> l.trim().equals(group)),
                "--list lacks " + group);
        String d = ok(cmd, "--bootstrap-server", b, "--describe", "--group", group).out();
        // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
        check(Pattern.compile(Pattern.quote(group) + "\\s+" + Pattern.quote(topic) + "\\s+0\\s+6\\s+9\\s+3\\b")
                .matcher(d).find(), "describe lacks partition 0 at 6 of 9, lag 3: " + d);
        check(Pattern.compile(Pattern.quote(group) + "\\s+" + Pattern.quote(topic) + "\\s+1\\s+4\\s+4\\s+0\\b")
                .matcher(d).find(), "describe lacks partition 1 at 4 of 4, lag 0: " + d);
        String st = ok(cmd, "--bootstrap-server", b, "--describe", "--group", group, "--state").out();
        check(st.contains("Empty"), "--state does not show Empty: " + st);
        String reset = ok(cmd, "--bootstrap-server", b, "--reset-offsets", "--group", group, "--topic", topic,
                "--to-earliest", "--execute").out();
        check(Pattern.compile(Pattern.quote(topic) + "\\s+0\\s+0\\b").matcher(reset).find(), "reset output: " + reset);
        try (Admin a = Util.admin(env)) {
            var offs = a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            eq(0L, offs.get(new org.apache.kafka.common.TopicPartition(topic, 0)).offset(), "offset 0 after reset");
        }
        String del = ok(cmd, "--bootstrap-server", b, "--delete", "--group", group).out();
        check(del.contains("Deletion of requested consumer groups ('" + group + "') was successful."),
                "delete output: " + del);
    }

    static void getOffsets(Main.Env env) throws Exception {
        String topic = env.name("tool-offsets");
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 2, null);
        }
        ClientCases.produceValues(env, topic, 0, 7, "x-");
        ClientCases.produceValues(env, topic, 1, 2, "y-");
        String out = ok("GetOffsetShell", "--bootstrap-server", env.bootstrap(), "--topic", topic).out();
        Set<String> lines = new HashSet<>(out.lines().toList());
        check(lines.containsAll(Set.of(topic + ":0:7", topic + ":1:2")), "latest offsets: " + out);
        out = ok("GetOffsetShell", "--bootstrap-server", env.bootstrap(), "--topic", topic, "--time", "-2").out();
        lines = new HashSet<>(out.lines().toList());
        check(lines.containsAll(Set.of(topic + ":0:0", topic + ":1:0")), "earliest offsets: " + out);
    }

    static void producerPerf(Main.Env env) throws Exception {
        String topic = env.name("tool-pperf");
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 2, null);
        }
        String out = ok("ProducerPerformance", "--bootstrap-server", env.bootstrap(), "--topic", topic,
                "--num-records", "20000", "--record-size", "200", "--throughput", "-1", "--producer-props", "acks=all",
                "linger.ms=5").out();
        check(Pattern.compile("^20000 records sent, ", Pattern.MULTILINE).matcher(out).find(), "output: " + out);
        try (Admin a = Util.admin(env)) {
            long end = 0;
            for (int p = 0; p < 2; p++) {
                end += ClientCases.lo(a, new org.apache.kafka.common.TopicPartition(topic, p),
                        org.apache.kafka.clients.admin.OffsetSpec.latest()).offset();
            }
            eq(20000L, end, "records in the topic after the perf test");
        }
    }

    static void consumerPerf(Main.Env env) throws Exception {
        String topic = env.name("tool-cperf");
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 2, null);
        }
        ok("ProducerPerformance", "--bootstrap-server", env.bootstrap(), "--topic", topic, "--num-records", "10000",
                "--record-size", "100", "--throughput", "-1");
        String out = ok("ConsumerPerformance", "--bootstrap-server", env.bootstrap(), "--topic", topic,
                "--num-records", "10000", "--timeout", "30000", "--group", env.name("cperf-group")).out();
        // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...
        String data = out.lines().filter(l -> l.matches("^\\d{4}-.*")).findFirst().orElse("");
        String[] f = data.split(",\\s*");
        check(f.length >= 6, "no data line: " + out);
        eq("10000", f[4].trim(), "data.consumed.in.nMsg");
    }

    static void e2e(Main.Env env) throws Exception {
        String topic = env.name("tool-e2e");
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 1, null);
        }
        String out = ok("EndToEndLatency", env.bootstrap(), topic, "300", "all", "100").out();
        Matcher m = Pattern.compile("Avg latency: ([0-9.]+) ms").matcher(out);
        check(m.find(), "no average latency: " + out);
        check(Pattern.compile("Percentiles: 50th = \\d+, 99th = \\d+, 99.9th = \\d+").matcher(out).find(),
                "no percentiles: " + out);
    }

    static final Pattern ACK = Pattern.compile("\"name\":\"producer_send_success\"");
    static final Pattern FIELD = Pattern.compile("\"(partition|offset|value)\":(\"[^\"]*\"|-?\\d+)");

    static Map<String, String> fields(String line) {
        Map<String, String> m = new HashMap<>();
        Matcher fm = FIELD.matcher(line);
        while (fm.find()) {
            m.put(fm.group(1), fm.group(2).replace("\"", ""));
        }
        return m;
    }

    static void verifiable(Main.Env env) throws Exception {
        String topic = env.name("tool-verifiable");
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 3, null);
        }
        Util.ToolRun p = Util.runChild(60000, T + "VerifiableProducer", List.of("--bootstrap-server", env.bootstrap(),
                "--topic", topic, "--max-messages", "1000", "--acks", "-1"));
        eq(0, p.code(), "VerifiableProducer exit code; output: " + Util.tail(p.out(), 2000));
        Map<String, String> acked = new HashMap<>();
        for (String l : p.out().lines().toList()) {
            if (ACK.matcher(l).find()) {
                Map<String, String> f = fields(l);
                check(acked.put(f.get("partition") + "@" + f.get("offset"), f.get("value")) == null,
                        "offset acknowledged twice: " + l);
            }
        }
        eq(1000, acked.size(), "records the producer saw acknowledged");
        check(p.out().contains("\"name\":\"tool_data\"") || p.out().contains("\"sent\":1000"),
                "no final summary from the producer: " + Util.tail(p.out(), 1000));
        Util.ToolRun c = Util.runChild(90000, T + "VerifiableConsumer", List.of("--bootstrap-server", env.bootstrap(),
                "--topic", topic, "--group-id", env.name("verifiable-group"), "--max-messages", "1000",
                "--reset-policy", "earliest", "--verbose"));
        eq(0, c.code(), "VerifiableConsumer exit code; output: " + Util.tail(c.out(), 2000));
        Map<String, String> consumed = new HashMap<>();
        for (String l : c.out().lines().toList()) {
            if (l.contains("\"name\":\"record_data\"")) {
                Map<String, String> f = fields(l);
                consumed.put(f.get("partition") + "@" + f.get("offset"), f.get("value"));
            }
        }
        for (Map.Entry<String, String> e : acked.entrySet()) {
            check(consumed.containsKey(e.getKey()), "acknowledged record at " + e.getKey() + " was not consumed");
            eq(e.getValue(), consumed.get(e.getKey()), "value at " + e.getKey());
        }
        check(c.out().contains("\"name\":\"offsets_committed\"") && c.out().contains("\"success\":true"),
                "the consumer committed no offsets: " + Util.tail(c.out(), 1000));
    }

    static void compatibility(Main.Env env) throws Exception {
        String topic = env.name("tool-compat");
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, topic, 1, null);
        }
        ok("ClientCompatibilityTest", "--bootstrap-server", env.bootstrap(), "--topic", topic,
                "--offsets-for-times-supported", "true", "--cluster-id-supported", "true",
                "--expect-record-too-large-exception", "false", "--num-cluster-nodes", "1",
                "--create-topics-supported", "true", "--describe-acls-supported", "true",
                "--describe-configs-supported", "true", "--idempotent-producer-supported", "true");
    }
}
