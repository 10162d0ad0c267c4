/*
 * Owns: helpers the Java compat cases share: clients with the suite's settings, topics that are ready to
 * use, bounded reads, assertions that say what broke, and running a Kafka tool in-process or as a child JVM.
 * Must not: hide a client error (every failure surfaces as an exception naming what was expected).
 */
package kbcompat;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.internals.Exit;

final class Util {
    private Util() {}

    static void check(boolean cond, String what) {
        if (!cond) {
            throw new AssertionError(what);
        }
    }

    static void eq(Object expected, Object actual, String what) {
        if (expected == null ? actual != null : !expected.equals(actual)) {
            throw new AssertionError(what + ": expected <" + expected + "> but was <" + actual + ">");
        }
    }

    static Properties props(Main.Env env, Object... kv) {
        Properties p = new Properties();
        p.put("bootstrap.servers", env.bootstrap());
        for (int i = 0; i + 1 < kv.length; i += 2) {
            p.put(kv[i].toString(), kv[i + 1].toString());
        }
        return p;
    }

    static Admin admin(Main.Env env) {
        return Admin.create(props(env, AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000));
    }

    static KafkaProducer<String, String> producer(Main.Env env, Object... kv) {
        Properties p = props(env, kv);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.putIfAbsent(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        p.putIfAbsent(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        p.putIfAbsent(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "20000");
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<String, String> consumer(Main.Env env, Object... kv) {
        Properties p = props(env, kv);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.putIfAbsent(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        return new KafkaConsumer<>(p);
    }

    /**
     * Creates a topic and waits until every partition has a leader: Kafka answers CreateTopics before that,
     * and a produce in between can fail on a fresh topic.
     */
    static void createTopic(Admin admin, String name, int partitions, Map<String, String> configs) throws Exception {
        NewTopic nt = new NewTopic(name, partitions, (short) 1);
        if (configs != null) {
            nt.configs(configs);
        }
        admin.createTopics(List.of(nt)).all().get(30, TimeUnit.SECONDS);
        waitLeaders(admin, name, partitions);
    }

    static void waitLeaders(Admin admin, String name, int partitions) throws Exception {
        long deadline = System.currentTimeMillis() + 20000;
        String last = "";
        while (System.currentTimeMillis() < deadline) {
            try {
                TopicDescription d = admin.describeTopics(List.of(name)).allTopicNames().get(10, TimeUnit.SECONDS)
                        .get(name);
                boolean ok = d.partitions().size() == partitions;
                for (TopicPartitionInfo pi : d.partitions()) {
                    ok &= pi.leader() != null && pi.leader().id() >= 0;
                }
                if (ok) {
                    // Metadata can name a leader before that broker serves the partition: Kafka then answers
                    // a produce with NOT_LEADER_OR_FOLLOWER, and an idempotent producer's in-flight batches
                    // behind it come back OUT_OF_ORDER_SEQUENCE_NUMBER until they expire (seen with 4.4.0).
                    // ListOffsets goes to the leader and succeeds only once it serves every partition.
                    Map<TopicPartition, OffsetSpec> q = new HashMap<>();
                    for (TopicPartitionInfo pi : d.partitions()) {
                        q.put(new TopicPartition(name, pi.partition()), OffsetSpec.latest());
                    }
                    admin.listOffsets(q).all().get(10, TimeUnit.SECONDS);
                    return;
                }
                last = d.toString();
            } catch (Exception e) {
                last = e.toString();
            }
            Thread.sleep(100);
        }
        throw new AssertionError("topic " + name + " has no leader for all " + partitions + " partitions: " + last);
    }

    /** Reads every partition of a topic from the beginning until `expected` records came (bounded). */
    static List<ConsumerRecord<String, String>> readAll(Main.Env env, String topic, int partitions, int expected)
            throws Exception {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(env)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) {
                tps.add(new TopicPartition(topic, i));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + 30000;
            while (out.size() < expected && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    out.add(r);
                }
            }
            // One more short poll: a duplicate past the expected count must be seen, not missed.
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(300))) {
                out.add(r);
            }
        }
        check(out.size() >= expected, "read " + out.size() + " records of " + expected + " from " + topic);
        return out;
    }

    static String repeat(String s, int n) {
        return s.repeat(n);
    }

    static void deleteTree(Path p) {
        if (p == null || !Files.exists(p)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            s.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
        } catch (IOException e) {
            // A temp dir left behind is harmless; the result of the run is not affected.
        }
    }

    // ---- Kafka's tools ----

    static final class ExitCalled extends RuntimeException {
        final int code;

        ExitCalled(int code, String msg) {
            super("exit " + code + (msg == null ? "" : ": " + msg));
            this.code = code;
        }
    }

    record ToolRun(int code, String out) {}

    private static final PrintStream ORIG_OUT = System.out;
    private static final PrintStream ORIG_ERR = System.err;

    static void restoreStdio() {
        System.setOut(ORIG_OUT);
        System.setErr(ORIG_ERR);
    }

    /**
     * Runs a tool's main in this JVM with its output captured. The tools end through Kafka's Exit class,
     * whose procedure we replace so their exit code comes back as a value instead of ending the suite.
     */
    static synchronized ToolRun runTool(String mainClass, String... args) throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8);
        // The first exit is the one a real run would end with; a tool may catch our exception and exit again.
        int[] first = {Integer.MIN_VALUE};
        Exit.setExitProcedure((code, msg) -> {
            if (first[0] == Integer.MIN_VALUE) {
                first[0] = code;
            }
            throw new ExitCalled(code, msg);
        });
        Exit.setShutdownHookAdder((name, r) -> {});
        int code = 0;
        System.setOut(ps);
        System.setErr(ps);
        try {
            Class.forName(mainClass).getMethod("main", String[].class).invoke(null, (Object) args);
        } catch (java.lang.reflect.InvocationTargetException e) {
            Throwable c = e.getCause();
            if (!(c instanceof ExitCalled)) {
                c.printStackTrace(ps);
                code = -1;
            }
        } finally {
            ps.flush();
            if (first[0] != Integer.MIN_VALUE) {
                code = first[0];
            }
            restoreStdio();
            Exit.resetExitProcedure();
            Exit.resetShutdownHookAdder();
        }
        return new ToolRun(code, buf.toString(StandardCharsets.UTF_8));
    }

    /** Runs a tool as a child JVM on our classpath: for tools that call System.exit themselves. */
    static ToolRun runChild(long timeoutMs, String mainClass, Collection<String> args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xmx256m");
        cmd.add("-XX:TieredStopAtLevel=1");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(mainClass);
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        File outFile = File.createTempFile("kb-java-tool", ".out");
        pb.redirectOutput(outFile);
        Process p = pb.start();
        try {
            if (!p.waitFor(timeoutMs, TimeUnit.MILLISECONDS)) {
                p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                throw new AssertionError(mainClass + " did not end within " + timeoutMs + " ms; output: "
                        + tail(Files.readString(outFile.toPath()), 3000));
            }
            return new ToolRun(p.exitValue(), Files.readString(outFile.toPath()));
        } finally {
            if (p.isAlive()) {
                p.destroyForcibly();
            }
            outFile.delete();
        }
    }

    static String tail(String s, int n) {
        return s.length() <= n ? s : "..." + s.substring(s.length() - n);
    }
}
