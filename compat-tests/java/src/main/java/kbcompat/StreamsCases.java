/*
 * Owns: the kafka-streams case: an in-process word count with a repartition topic (groupBy) and a
 * changelogged state store, at-least-once, its application id and state dir unique to the run.
 * Must not: leave its KafkaStreams instance running or its state dir behind.
 */
package kbcompat;

import static kbcompat.Util.check;
import static kbcompat.Util.eq;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

final class StreamsCases {
    private StreamsCases() {}

    static void register(Main.Env env) {
        Main.add("streams/word-count", 120000, () -> wordCount(env));
    }

    /**
     * The word count application (not started): counts per word of the lines of `in`, every update to `out`
     * (no cache), commits every 200 ms; a dying stream thread is added to `uncaught` and stops the client.
     */
    static KafkaStreams wordCountApp(Main.Env env, String in, String out, String app, Path stateDir,
            String guarantee, List<Throwable> uncaught) {
        StreamsBuilder b = new StreamsBuilder();
        b.<String, String>stream(in)
                .flatMapValues(v -> Arrays.asList(v.split(" ")))
                .groupBy((k, w) -> w, Grouped.with("by-word", Serdes.String(), Serdes.String()))
                .count(Materialized.as("counts"))
                .toStream()
                .to(out, Produced.with(Serdes.String(), Serdes.Long()));
        Properties sp = Util.props(env);
        sp.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
        sp.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        sp.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        sp.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.String().getClass().getName());
        sp.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.String().getClass().getName());
        sp.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "200");
        sp.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
        sp.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "1");
        sp.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        KafkaStreams ks = new KafkaStreams(b.build(), sp);
        ks.setUncaughtExceptionHandler(e -> {
            synchronized (uncaught) {
                uncaught.add(e);
            }
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
                    .SHUTDOWN_CLIENT;
        });
        return ks;
    }

    static void wordCount(Main.Env env) throws Exception {
        String in = env.name("wc-in"), out = env.name("wc-out"), app = env.name("wc-app");
        List<String> lines = new ArrayList<>();
        String[] words = {"kafka", "broker", "stream", "count", "word", "log"};
        for (int i = 0; i < 60; i++) {
            lines.add(words[i % 6] + " " + words[(i * 5 + 1) % 6] + " " + words[(i / 6) % 6]);
        }
        Map<String, Long> expected = new HashMap<>();
        for (String l : lines) {
            for (String w : l.split(" ")) {
                expected.merge(w, 1L, Long::sum);
            }
        }
        try (Admin a = Util.admin(env)) {
            Util.createTopic(a, in, 2, null);
            Util.createTopic(a, out, 2, null);
            try (KafkaProducer<String, String> p = Util.producer(env, "acks", "all")) {
                for (int i = 0; i < lines.size(); i++) {
                    // Keys unrelated to the words: the count needs the repartition by word.
                    p.send(new ProducerRecord<>(in, "line-" + i, lines.get(i)));
                }
                p.flush();
            }

            Path stateDir = Files.createDirectories(env.tmp().resolve("streams-state"));
            Map<String, Long> latest = new HashMap<>();
            List<Throwable> uncaught = new ArrayList<>();
            KafkaStreams ks = wordCountApp(env, in, out, app, stateDir, StreamsConfig.AT_LEAST_ONCE, uncaught);
            try {
                ks.start();
                Properties cp = Util.props(env);
                cp.put("key.deserializer", StringDeserializer.class.getName());
                cp.put("value.deserializer", LongDeserializer.class.getName());
                try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(cp)) {
                    List<TopicPartition> tps = List.of(new TopicPartition(out, 0), new TopicPartition(out, 1));
                    c.assign(tps);
                    c.seekToBeginning(tps);
                    long deadline = System.currentTimeMillis() + 90000;
                    while (!latest.equals(expected) && System.currentTimeMillis() < deadline) {
                        synchronized (uncaught) {
                            check(uncaught.isEmpty(), "streams thread died: " + uncaught);
                        }
                        for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(200))) {
                            latest.put(r.key(), r.value());
                        }
                    }
                }
                eq(expected, latest, "latest count per word in " + out + " (streams state " + ks.state() + ")");
                Set<String> topics = a.listTopics().names().get(30, TimeUnit.SECONDS);
                String repart = app + "-by-word-repartition", changelog = app + "-counts-changelog";
                check(topics.contains(repart), "no repartition topic " + repart + " in " + topics);
                check(topics.contains(changelog), "no changelog topic " + changelog + " in " + topics);
                ConfigResource cr = new ConfigResource(ConfigResource.Type.TOPIC, changelog);
                Config cc = a.describeConfigs(List.of(cr)).all().get(30, TimeUnit.SECONDS).get(cr);
                eq("compact", cc.get("cleanup.policy").value(), "cleanup.policy of the changelog");
                // The changelog holds the store's updates: its latest value per word is the final count.
                Map<String, Long> logged = new HashMap<>();
                Properties lp = Util.props(env);
                lp.put("key.deserializer", StringDeserializer.class.getName());
                lp.put("value.deserializer", LongDeserializer.class.getName());
                try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(lp)) {
                    List<TopicPartition> tps = new ArrayList<>();
                    c.partitionsFor(changelog).forEach(pi -> tps.add(new TopicPartition(changelog, pi.partition())));
                    c.assign(tps);
                    c.seekToBeginning(tps);
                    long deadline = System.currentTimeMillis() + 30000;
                    while (!logged.equals(expected) && System.currentTimeMillis() < deadline) {
                        for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(200))) {
                            logged.put(r.key(), r.value());
                        }
                    }
                }
                eq(expected, logged, "latest count per word in the changelog");
            } finally {
                ks.close(Duration.ofSeconds(20));
                ks.cleanUp();
                Util.deleteTree(stateDir);
            }
        }
    }
}
