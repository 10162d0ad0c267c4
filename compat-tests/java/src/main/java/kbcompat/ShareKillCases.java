/*
 * Owns: the KIP-932 share group cases (issue 18) with kafka-clients' KafkaShareConsumer that ShareCases leaves
 * out: implicit acknowledgement (records of a poll ACCEPTed by the next poll and by commitSync: a second consumer
 * of the group never gets them; close releases the last poll's records, as Kafka 4.4 does) and a share consumer in
 * a JVM of its own killed with SIGKILL while it holds records acquired (the other consumer gets exactly those,
 * delivery count 2, released with the dead connection or at the latest when their lock expires).
 * Also the killed process itself: run as `java -cp ... kbcompat.ShareKillCases BOOTSTRAP TOPIC GROUP`, it
 * accepts "warm-" records, holds the first poll's "k-" records unacknowledged, prints their offsets and sleeps.
 * Must not: rely on share.auto.offset.reset (share-partitions start at the latest offset: every case warms its
 * group up first), leave its child process running, or wait without a deadline.
 * Expects group.share.record.lock.duration.ms as in kafka_ref.REF_SETTINGS (5 s) on every target.
 */
package kbcompat;

import static kbcompat.Util.check;
import static kbcompat.Util.eq;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

public final class ShareKillCases {
    private ShareKillCases() {}

    static final long LOCK_MS = ShareCases.LOCK_MS;
    static final String HELD = "SHARE-KILL-HOLDER held ";
    static final String WARM = "SHARE-KILL-HOLDER warm";

    static void register(Main.Env env) {
        Main.add("share-kill/implicit-ack", 60000, () -> implicitAck(env));
        Main.add("share-kill/consumer-kill9-redelivered", 60000, () -> killedConsumer(env));
    }

    static KafkaShareConsumer<String, String> consumer(String bootstrap, String group, String topic, String mode) {
        java.util.Properties p = new java.util.Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("group.id", group);
        if (mode != null) {
            p.put("share.acknowledgement.mode", mode);
        }
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        KafkaShareConsumer<String, String> c = new KafkaShareConsumer<>(p);
        c.subscribe(List.of(topic));
        return c;
    }

    static void checkCommit(Map<TopicIdPartition, Optional<KafkaException>> res) {
        for (Map.Entry<TopicIdPartition, Optional<KafkaException>> e : res.entrySet()) {
            check(e.getValue().isEmpty(), "acknowledgement of " + e.getKey() + " failed: " + e.getValue());
        }
    }

    /**
     * Implicit mode (the default; not set here, so the default is what is tested): warms up, then records taken by
     * polls are accepted by the next poll and the last ones by commitSync; one more record is taken by a poll and
     * the consumer closed right after. A second consumer joining afterwards, polling past a lock duration, gets
     * none of the accepted ones; the record left by the close comes at once with delivery count 2 (Kafka 4.4's
     * close releases the last poll's records instead of accepting them), a new one with count 1.
     */
    static void implicitAck(Main.Env env) throws Exception {
        String topic = ShareCases.setUp(env, "share-implicit", 1), group = env.name("sg-implicit");
        int n = 6;
        TreeSet<String> taken = new TreeSet<>();
        try (KafkaProducer<String, String> p = Util.producer(env)) {
            try (KafkaShareConsumer<String, String> a = consumer(env.bootstrap(), group, topic, null)) {
                boolean warm = false;
                long deadline = System.currentTimeMillis() + 30000;
                int w = 0;
                while (!warm) {
                    check(System.currentTimeMillis() < deadline, "warm-up: no record came in 30 s");
                    ShareCases.send(p, topic, 0, "warm-" + w++);
                    for (ConsumerRecord<String, String> r : a.poll(Duration.ofMillis(300))) {
                        check(r.value().startsWith("warm-"), "unexpected record during warm-up: " + r.value());
                        taken.add(r.value());
                        warm = true;
                    }
                }
                // One record at a time, each poll that brings one accepts the one before.
                deadline = System.currentTimeMillis() + 30000;
                for (int i = 0; i < n; i++) {
                    ShareCases.send(p, topic, 0, "i-" + i);
                    boolean got = false;
                    while (!got) {
                        check(System.currentTimeMillis() < deadline, "i-" + i + " not delivered in time");
                        for (ConsumerRecord<String, String> r : a.poll(Duration.ofMillis(300))) {
                            if (r.value().startsWith("warm-")) {
                                taken.add(r.value()); // a warm-up record sent after the first one came
                                continue;
                            }
                            eq("i-" + i, r.value(), "record delivered");
                            eq((short) 1, r.deliveryCount().orElse((short) -1), "delivery count of " + r.value());
                            check(taken.add(r.value()), "record " + r.value() + " delivered twice");
                            got = true;
                        }
                    }
                }
                checkCommit(a.commitSync(Duration.ofSeconds(20)));
            }
            // Taken by a poll, then close without another poll or a commit: Kafka's close does not accept it
            // but releases it (its connection's acquired records too), so the next consumer gets it at once.
            long acquired;
            try (KafkaShareConsumer<String, String> a2 = consumer(env.bootstrap(), group, topic, null)) {
                ShareCases.send(p, topic, 0, "c-0");
                long deadline = System.currentTimeMillis() + 30000;
                boolean got = false;
                while (!got) {
                    check(System.currentTimeMillis() < deadline, "c-0 not delivered in time");
                    for (ConsumerRecord<String, String> r : a2.poll(Duration.ofMillis(300))) {
                        check(!taken.contains(r.value()), "accepted record delivered again: " + r.value());
                        if (r.value().equals("c-0")) {
                            eq((short) 1, r.deliveryCount().orElse((short) -1), "delivery count of c-0");
                            got = true;
                        }
                    }
                }
                acquired = System.currentTimeMillis();
            }
            try (KafkaShareConsumer<String, String> b = consumer(env.bootstrap(), group, topic, null)) {
                ShareCases.send(p, topic, 0, "f-0");
                long released = -1;
                boolean fresh = false;
                // Past a lock duration: a record accepted by a poll or commitSync would have come again by then.
                long until = System.currentTimeMillis() + LOCK_MS + 2000, deadline = until + 20000;
                while (System.currentTimeMillis() < until
                        || ((!fresh || released < 0) && System.currentTimeMillis() < deadline)) {
                    for (ConsumerRecord<String, String> r : b.poll(Duration.ofMillis(300))) {
                        check(!taken.contains(r.value()), "record accepted implicitly delivered again: "
                                + r.value() + " (delivery count " + r.deliveryCount() + ")");
                        if (r.value().equals("f-0")) {
                            eq((short) 1, r.deliveryCount().orElse((short) -1), "delivery count of f-0");
                            fresh = true;
                        } else {
                            eq("c-0", r.value(), "record delivered to the second consumer");
                            check(released < 0, "c-0 delivered twice to the second consumer");
                            eq((short) 2, r.deliveryCount().orElse((short) -1), "delivery count of c-0 after a close");
                            released = System.currentTimeMillis() - acquired;
                        }
                    }
                }
                check(fresh, "f-0 not delivered to the second consumer");
                check(released >= 0, "c-0, left by a close after its poll, not delivered again");
                check(released < LOCK_MS - 1000, "c-0 delivered again " + released + " ms after it was taken:"
                        + " its lock expired, the close did not release it");
                checkCommit(b.commitSync(Duration.ofSeconds(20)));
            }
        }
    }

    /**
     * A share consumer in a JVM of its own takes a batch of records and holds them (explicit mode, never
     * acknowledged, no further poll); it is killed with SIGKILL. Its member stays in the group until its session
     * times out (45 s). Kafka 4.4 releases a share session's acquired records when the session's connection closes
     * (the kernel closes the killed process's), unless the broker took the session for stale: then their lock
     * expires. Either way the other consumer gets exactly those records, each with delivery count 2, within a
     * lock duration (and a margin) of their acquisition, and nothing else comes again.
     */
    static void killedConsumer(Main.Env env) throws Exception {
        String topic = ShareCases.setUp(env, "share-kill9", 1), group = env.name("sg-kill9");
        int n = 4;
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx192m",
                "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp",
                System.getProperty("java.class.path"), ShareKillCases.class.getName(), env.bootstrap(), topic, group);
        Process child = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        LinkedBlockingQueue<String> lines = new LinkedBlockingQueue<>();
        StringBuilder out = new StringBuilder();
        Thread reader = new Thread(() -> {
            try (BufferedReader br = new BufferedReader(
                    new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
                for (String l; (l = br.readLine()) != null;) {
                    synchronized (out) {
                        out.append(l).append('\n');
                    }
                    lines.add(l);
                }
            } catch (java.io.IOException e) {
                // The child's end of the pipe goes with the child: nothing more to read.
            }
        }, "share-kill-reader");
        reader.setDaemon(true);
        reader.start();
        try (KafkaProducer<String, String> p = Util.producer(env, "linger.ms", "200")) {
            // Warm-up through the child only: a second member polling now could take the records meant for it.
            long deadline = System.currentTimeMillis() + 40000;
            int w = 0;
            boolean warm = false;
            while (!warm) {
                check(System.currentTimeMillis() < deadline && child.isAlive(),
                        "child consumer not warmed up; its output: " + Util.tail(out.toString(), 3000));
                ShareCases.send(p, topic, 0, "warm-" + w++);
                for (String l; (l = lines.poll(300, TimeUnit.MILLISECONDS)) != null;) {
                    warm |= l.startsWith(WARM);
                }
            }
            // One batch (linger), so that the child's one poll takes all of them.
            for (int i = 0; i < n; i++) {
                p.send(new ProducerRecord<>(topic, 0, null, "k-" + i));
            }
            p.flush();
            TreeMap<Long, String> held = new TreeMap<>();
            String line = null;
            while (line == null) {
                check(System.currentTimeMillis() < deadline && child.isAlive(),
                        "child consumer held nothing; its output: " + Util.tail(out.toString(), 3000));
                String l = lines.poll(300, TimeUnit.MILLISECONDS);
                if (l != null && l.startsWith(HELD)) {
                    line = l;
                }
            }
            long acquired = System.currentTimeMillis();
            for (String kv : line.substring(HELD.length()).trim().split(" ")) {
                String[] f = kv.split("=", 2);
                held.put(Long.parseLong(f[0]), f[1]);
            }
            check(!held.isEmpty(), "child consumer printed no held record: " + line);
            child.destroyForcibly(); // SIGKILL on Linux: no LeaveGroup, no acknowledgement, no close
            check(child.waitFor(20, TimeUnit.SECONDS), "child consumer did not die on SIGKILL");
            eq(137, child.exitValue(), "child consumer's exit status (128 + SIGKILL)");

            try (KafkaShareConsumer<String, String> b = consumer(env.bootstrap(), group, topic, "explicit")) {
                TreeMap<Long, Long> again = new TreeMap<>(); // offset -> ms after the child had taken it
                deadline = System.currentTimeMillis() + 30000;
                long until = Long.MAX_VALUE;
                while (System.currentTimeMillis() < until) {
                    check(System.currentTimeMillis() < deadline, "held records " + held + " redelivered: "
                            + again.keySet());
                    List<ConsumerRecord<String, String>> got = new ArrayList<>();
                    b.poll(Duration.ofMillis(300)).forEach(got::add);
                    for (ConsumerRecord<String, String> r : got) {
                        String v = held.get(r.offset());
                        if (v == null && r.value().startsWith("k-")) {
                            // A k- record the child's poll did not bring: never acquired before.
                            eq((short) 1, r.deliveryCount().orElse((short) -1), "delivery count of " + r.value());
                        } else {
                            check(v != null, "record not held by the killed consumer delivered: " + r.value()
                                    + " at " + r.offset() + " (delivery count " + r.deliveryCount() + ")");
                            eq(v, r.value(), "value at offset " + r.offset());
                            eq((short) 2, r.deliveryCount().orElse((short) -1), "delivery count of " + v);
                            check(again.put(r.offset(), System.currentTimeMillis() - acquired) == null,
                                    v + " delivered twice to the second consumer");
                        }
                        b.acknowledge(r, AcknowledgeType.ACCEPT);
                    }
                    if (!got.isEmpty()) {
                        checkCommit(b.commitSync(Duration.ofSeconds(20)));
                    }
                    if (again.size() == held.size() && until == Long.MAX_VALUE) {
                        until = System.currentTimeMillis() + 1500; // nothing else may come after them
                    }
                }
                // Released when the dead connection is noticed or, at the latest, when the lock expires (Kafka 4.4.0
                // did both in different runs); never left for the member's session timeout.
                for (Map.Entry<Long, Long> e : again.entrySet()) {
                    check(e.getValue() < LOCK_MS + 2500, "offset " + e.getKey() + " redelivered " + e.getValue()
                            + " ms after it was taken, later than its lock expired");
                }
                System.out.println("share-kill: records of the killed consumer delivered again " + again.values()
                        + " ms after they were taken (lock " + LOCK_MS + " ms)");
            }
        } finally {
            if (child.isAlive()) {
                child.destroyForcibly();
                child.waitFor(20, TimeUnit.SECONDS);
            }
        }
    }

    /** The consumer the kill case kills: see the file's header. */
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.out.println("usage: ShareKillCases BOOTSTRAP TOPIC GROUP");
            System.exit(2);
        }
        KafkaShareConsumer<String, String> c = consumer(args[0], args[2], args[1], "explicit");
        boolean warm = false;
        while (true) {
            List<ConsumerRecord<String, String>> kept = new ArrayList<>();
            int got = 0;
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                got++;
                if (r.value().startsWith("warm-")) {
                    c.acknowledge(r, AcknowledgeType.ACCEPT);
                } else {
                    kept.add(r);
                }
            }
            if (got > 0) {
                checkCommit(c.commitSync(Duration.ofSeconds(20)));
            }
            if (!warm && got > kept.size()) {
                warm = true;
                System.out.println(WARM);
                System.out.flush();
            }
            if (!kept.isEmpty()) {
                StringBuilder sb = new StringBuilder(HELD);
                for (ConsumerRecord<String, String> r : kept) {
                    sb.append(r.offset()).append('=').append(r.value()).append(' ');
                }
                System.out.println(sb.toString().trim());
                System.out.flush();
                // Held until the driver kills this process: no further poll (it would need them acknowledged).
                Thread.sleep(Long.MAX_VALUE);
            }
        }
    }
}
