/*
 * Owns: the kafka-streams exactly_once_v2 case of issue 16: an in-process word count (repartition topic,
 * changelogged store) run twice over one application id, the second run after more input; every count update
 * read with read_committed must appear exactly once, in order, and the last ones equal the exact counts.
 * Must not: leave its KafkaStreams instances running or their state dirs behind.
 */
package kbcompat;

import static kbcompat.Util.check;
import static kbcompat.Util.eq;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;

final class StreamsEosCases {
    private StreamsEosCases() {}

    static final String[] WORDS = {"kafka", "broker", "stream", "count", "word", "log"};

    static void register(Main.Env env) {
        Main.add("streams/word-count-exactly-once-v2", 170000, () -> wordCountEos(env));
    }

    static List<String> lines(int from, int to) {
        List<String> out = new ArrayList<>();
        for (int i = from; i < to; i++) {
            out.add(WORDS[i % 6] + " " + WORDS[(i * 5 + 1) % 6] + " " + WORDS[(i / 6) % 6]);
        }
        return out;
    }

    static void produce(Main.Env env, String topic, List<String> lines, int first) throws Exception {
        try (KafkaProducer<String, String> p = Util.producer(env, "acks", "all")) {
            for (int i = 0; i < lines.size(); i++) {
                p.send(new ProducerRecord<>(topic, "line-" + (first + i), lines.get(i)));
            }
            p.flush();
        }
    }

    /** Runs the app until the updates read with read_committed (added to `updates`) reach `expected`. */
    static void runUntil(Main.Env env, String in, String out, String app, Path stateDir,
            Map<String, List<Long>> updates, Map<String, Long> expected, KafkaConsumer<String, Long> reader) {
        List<Throwable> uncaught = new ArrayList<>();
        KafkaStreams ks = StreamsCases.wordCountApp(env, in, out, app, stateDir, StreamsConfig.EXACTLY_ONCE_V2,
                uncaught);
        try {
            ks.start();
            Map<String, Long> latest = new HashMap<>();
            long deadline = System.currentTimeMillis() + 70000;
            while (!latest.equals(expected) && System.currentTimeMillis() < deadline) {
                synchronized (uncaught) {
                    check(uncaught.isEmpty(), "streams thread died: " + uncaught);
                }
                for (ConsumerRecord<String, Long> r : reader.poll(Duration.ofMillis(200))) {
                    updates.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
                    latest.put(r.key(), r.value());
                }
                for (Map.Entry<String, List<Long>> e : updates.entrySet()) {
                    latest.put(e.getKey(), e.getValue().get(e.getValue().size() - 1));
                }
            }
            eq(expected, latest, "latest count per word in " + out + " (streams state " + ks.state() + ")");
        } finally {
            ks.close(Duration.ofSeconds(20));
        }
    }

    static Map<String, Long> counts(List<String> lines) {
        Map<String, Long> m = new HashMap<>();
        for (String l : lines) {
            for (String w : l.split(" ")) {
                m.merge(w, 1L, Long::sum);
            }
        }
        return m;
    }

    static void wordCountEos(Main.Env env) throws Exception {
        String in = env.name("wce-in"), out = env.name("wce-out"), app = env.name("wce-app");
        Path stateDir = Files.createDirectories(env.tmp().resolve("streams-eos-state"));
        List<String> first = lines(0, 30), all = lines(0, 60);
        Map<String, List<Long>> updates = new HashMap<>();
        Properties cp = Util.props(env);
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", LongDeserializer.class.getName());
        cp.put("isolation.level", "read_committed");
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, in, 2, null);
            Util.createTopic(a, out, 2, null);
        }
        try (KafkaConsumer<String, Long> reader = new KafkaConsumer<>(cp)) {
            List<TopicPartition> tps = List.of(new TopicPartition(out, 0), new TopicPartition(out, 1));
            reader.assign(tps);
            reader.seekToBeginning(tps);
            produce(env, in, first, 0);
            runUntil(env, in, out, app, stateDir, updates, counts(first), reader);
            // A second instance of the application resumes from the committed offsets and restored store.
            produce(env, in, all.subList(30, 60), 30);
            runUntil(env, in, out, app, stateDir, updates, counts(all), reader);
            // A short read more: no update beyond the exact counts.
            for (ConsumerRecord<String, Long> r : reader.poll(Duration.ofMillis(1000))) {
                updates.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
            }
        } finally {
            Util.deleteTree(stateDir);
        }
        // Exactly once: each word's updates are 1, 2, ..., its count, none twice, none missing.
        Map<String, List<Long>> want = new HashMap<>();
        for (Map.Entry<String, Long> e : counts(all).entrySet()) {
            List<Long> seq = new ArrayList<>();
            for (long i = 1; i <= e.getValue(); i++) {
                seq.add(i);
            }
            want.put(e.getKey(), seq);
        }
        eq(want, updates, "every count update of every word, read_committed");
    }
}
