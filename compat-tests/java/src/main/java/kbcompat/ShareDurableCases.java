/*
 * Owns: the durable share-group state case (issue 18) with kafka-clients' KafkaShareConsumer: part of a topic
 * acknowledged, the rest acquired and left unacknowledged, the broker killed -9 and restarted on its data dir,
 * then a new consumer of the group: no acknowledged record is delivered again, every other one is (with its
 * delivery count kept), and records produced after the restart too (the share-partition start offset kept).
 * On kbroker the case runs a kbroker process of its own (KB_BROKER_BIN, KB_SHARDS, the reference settings);
 * on another target it cannot kill the shared broker, so it closes the first consumer instead of the restart
 * and checks the same expectations (said in its output).
 * Must not: kill a broker it did not start, or wait without a deadline.
 */
package kbcompat;

import static kbcompat.Util.check;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;

final class ShareDurableCases {
    private ShareDurableCases() {}

    static void register(Main.Env env) {
        Main.add("share-durable/kill9-restart", 240000, () -> killRestart(env));
    }

    /** A kbroker process of the case's own, on a data dir that outlives it. */
    static final class OwnBroker implements AutoCloseable {
        static final Pattern READY = Pattern.compile("kbroker ready: listening on PLAINTEXT://[^:]+:(\\d+)");
        final Path data;
        Process proc;
        String bootstrap;

        OwnBroker(Path data) {
            this.data = data;
        }

        void start() throws Exception {
            String bin = System.getenv("KB_BROKER_BIN");
            check(bin != null && !bin.isEmpty(), "KB_BROKER_BIN is not set");
            List<String> argv = new ArrayList<>(List.of(bin, "--set", "listeners=PLAINTEXT://127.0.0.1:0",
                    "--set", "log.dirs=" + data, "--set",
                    "shards=" + System.getenv().getOrDefault("KB_SHARDS", "1"), "--set",
                    "group.initial.rebalance.delay.ms=0", "--set",
                    "group.min.session.timeout.ms=1000", "--set", "offsets.topic.num.partitions=10", "--set",
                    "group.share.min.record.lock.duration.ms=1000", "--set",
                    "group.share.record.lock.duration.ms=5000"));
            ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true);
            Path log = data.resolveSibling(data.getFileName() + ".log");
            pb.redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
            long from = Files.exists(log) ? Files.size(log) : 0;
            proc = pb.start();
            long deadline = System.currentTimeMillis() + 30000;
            while (true) {
                check(System.currentTimeMillis() < deadline, "own kbroker not ready in 30 s: " + tail(log, from));
                if (!proc.isAlive()) {
                    throw new AssertionError("own kbroker exited " + proc.exitValue() + ": " + tail(log, from));
                }
                Matcher m = READY.matcher(tail(log, from));
                if (m.find()) {
                    bootstrap = "127.0.0.1:" + m.group(1);
                    return;
                }
                Thread.sleep(50);
            }
        }

        static String tail(Path log, long from) throws IOException {
            byte[] all = Files.readAllBytes(log);
            return new String(all, (int) Math.min(from, all.length), (int) (all.length - Math.min(from, all.length)),
                    StandardCharsets.UTF_8);
        }

        /** SIGKILL: Process.destroyForcibly on Linux. */
        void kill9() throws Exception {
            proc.destroyForcibly();
            check(proc.waitFor(20, TimeUnit.SECONDS), "own kbroker did not die on SIGKILL");
        }

        @Override
        public void close() throws Exception {
            if (proc != null && proc.isAlive()) {
                proc.destroy(); // SIGTERM
                if (!proc.waitFor(20, TimeUnit.SECONDS)) {
                    proc.destroyForcibly();
                    proc.waitFor(20, TimeUnit.SECONDS);
                }
            }
        }
    }

    static void killRestart(Main.Env shared) throws Exception {
        OwnBroker own = null;
        Main.Env env = shared;
        try {
            if (shared.isKbroker()) {
                own = new OwnBroker(Files.createTempDirectory(shared.tmp(), "share-durable-").resolve("data"));
                Files.createDirectories(own.data);
                own.start();
                env = new Main.Env(own.bootstrap, shared.tmp(), true);
            }
            run(env, own);
        } finally {
            if (own != null) {
                own.close();
            }
        }
    }

    static void run(Main.Env env, OwnBroker own) throws Exception {
        String topic = ShareCases.setUp(env, "share-durable", 2), group = env.name("sg-durable");
        int n = 30;
        Set<String> accepted = new HashSet<>(), left = new HashSet<>();
        KafkaShareConsumer<String, String> c1 = ShareCases.consumer(env, group, topic);
        try (KafkaProducer<String, String> p = Util.producer(env)) {
            ShareCases.warmUp(p, topic, 2, List.of(c1));
            for (int i = 0; i < n; i++) {
                ShareCases.send(p, topic, i % 2, "v-" + i);
            }
            // Every third record stays acquired and unacknowledged; a redelivery of it (its lock is 5 s) too.
            long deadline = System.currentTimeMillis() + 60000;
            while (accepted.size() + left.size() < n) {
                check(System.currentTimeMillis() < deadline, "phase 1: " + accepted.size() + " accepted, "
                        + left.size() + " left of " + n);
                ShareCases.poll(c1, 300, r -> {
                    if (r.value().startsWith("warm-")) {
                        return AcknowledgeType.ACCEPT;
                    }
                    int i = Integer.parseInt(r.value().substring(2));
                    if (i % 3 == 0 || left.contains(r.value())) {
                        left.add(r.value());
                        return null;
                    }
                    check(accepted.add(r.value()), "record " + r.value() + " delivered again after ACCEPT");
                    return AcknowledgeType.ACCEPT;
                });
            }
        }
        // poll's commitSync returned: every ACCEPT above was answered, so it is durable on the broker.
        if (own != null) {
            own.kill9();
            c1.close(Duration.ofSeconds(1));
            own.start();
            env = new Main.Env(own.bootstrap, env.tmp(), true);
        } else {
            Main.OUT.println("NOTE share-durable/kill9-restart: the shared " + System.getenv("KB_TARGET")
                    + " broker cannot be restarted from here; the first consumer is closed instead");
            c1.close(Duration.ofSeconds(20));
        }
        int m = 5;
        Map<String, Short> later = new HashMap<>();
        try (KafkaProducer<String, String> p = Util.producer(env);
                KafkaShareConsumer<String, String> c2 = ShareCases.consumer(env, group, topic)) {
            for (int i = 0; i < m; i++) {
                ShareCases.send(p, topic, i % 2, "after-" + i);
            }
            Set<String> want = new HashSet<>(left);
            for (int i = 0; i < m; i++) {
                want.add("after-" + i);
            }
            long deadline = System.currentTimeMillis() + 90000, quietUntil = Long.MAX_VALUE;
            // Then a few more seconds of polling: a redelivered accepted record would show up there.
            while (System.currentTimeMillis() < quietUntil) {
                check(System.currentTimeMillis() < deadline, "phase 2: still missing " + missing(want, later));
                ShareCases.poll(c2, 300, r -> {
                    check(!accepted.contains(r.value()), "record " + r.value() + " accepted before the restart"
                            + " delivered again (delivery count " + r.deliveryCount().orElse((short) -1) + ")");
                    check(!r.value().startsWith("warm-"), "warm-up record " + r.value() + " delivered again");
                    check(later.put(r.value(), r.deliveryCount().orElse((short) -1)) == null,
                            "record " + r.value() + " delivered twice after the restart");
                    return AcknowledgeType.ACCEPT;
                });
                if (quietUntil == Long.MAX_VALUE && later.keySet().containsAll(want)) {
                    quietUntil = System.currentTimeMillis() + 3000;
                }
            }
            check(later.keySet().equals(want), "after the restart: got " + later.keySet() + ", want " + want);
            for (String v : left) {
                check(later.get(v) >= 2, "record " + v + " acquired before the restart came back with delivery count "
                        + later.get(v) + " (want >= 2)");
            }
            for (int i = 0; i < m; i++) {
                check(later.get("after-" + i) == 1, "after-" + i + " delivery count " + later.get("after-" + i));
            }
        }
    }

    static Set<String> missing(Set<String> want, Map<String, Short> got) {
        Set<String> s = new HashSet<>(want);
        s.removeAll(got.keySet());
        return s;
    }
}
