/*
 * Owns: the Kafka Streams word count that compat-tests/py3/test_streams_kill.py runs as a process of its own and
 * kills with SIGKILL (issue 16): exactly_once_v2, a repartition topic and a changelogged store, no record cache
 * (every count update is forwarded), short group timings so that a restarted instance is given the tasks of the
 * killed one within seconds. It prints one line per state change (the driver waits for RUNNING) and one per
 * replaced stream thread.
 * Must not: decide anything about the results (the driver reads the output and judges) or close cleanly on
 * purpose: the driver kills it, or stops it with SIGTERM (a shutdown hook closes it).
 *
 * Usage: java -cp ... kbcompat.StreamsKillApp BOOTSTRAP INPUT OUTPUT APPLICATION_ID STATE_DIR [GUARANTEE]
 * (GUARANTEE: exactly_once_v2, the default; at_least_once only for the driver's self-check)
 */
package kbcompat;

import java.time.Duration;
import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

public final class StreamsKillApp {
    private StreamsKillApp() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 5 && args.length != 6) {
            System.out.println("usage: StreamsKillApp BOOTSTRAP INPUT OUTPUT APPLICATION_ID STATE_DIR [GUARANTEE]");
            System.exit(2);
        }
        StreamsBuilder b = new StreamsBuilder();
        b.<String, String>stream(args[1])
                .flatMapValues(v -> Arrays.asList(v.split(" ")))
                .groupBy((k, w) -> w, Grouped.with("by-word", Serdes.String(), Serdes.String()))
                .count(Materialized.as("counts"))
                .toStream()
                .to(args[2], Produced.with(Serdes.String(), Serdes.Long()));
        Properties sp = new Properties();
        sp.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        sp.put(StreamsConfig.APPLICATION_ID_CONFIG, args[3]);
        sp.put(StreamsConfig.STATE_DIR_CONFIG, args[4]);
        sp.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, args.length == 6 ? args[5] : StreamsConfig.EXACTLY_ONCE_V2);
        sp.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.String().getClass().getName());
        sp.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.String().getClass().getName());
        sp.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "200");
        sp.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
        sp.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "1");
        sp.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        // The killed instance's member stays in the group until its session expires: keep that short, so the
        // restarted instance gets the tasks within seconds (the brokers allow 1 s, lib/kafka_ref.py REF_SETTINGS).
        sp.put(StreamsConfig.consumerPrefix("session.timeout.ms"), "6000");
        sp.put(StreamsConfig.consumerPrefix("heartbeat.interval.ms"), "1000");
        // A broker killed and restarted: the clients retry through the outage instead of giving up.
        sp.put(StreamsConfig.producerPrefix("delivery.timeout.ms"), "60000");
        sp.put(StreamsConfig.TASK_TIMEOUT_MS_CONFIG, "60000");
        KafkaStreams ks = new KafkaStreams(b.build(), sp);
        ks.setUncaughtExceptionHandler(e -> {
            // An application keeps running through a broker outage; the driver reports how often this happened.
            System.out.println("STREAMS-KILL-APP thread replaced: " + e);
            System.out.flush();
            return StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        ks.setStateListener((now, before) -> {
            System.out.println("STREAMS-KILL-APP state " + now);
            System.out.flush();
        });
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            ks.close(Duration.ofSeconds(20));
            closed.countDown();
        }));
        ks.start();
        closed.await();
    }
}
