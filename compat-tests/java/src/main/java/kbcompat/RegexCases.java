/*
 * Owns: the KIP-848 regex subscription cases: KafkaConsumer.subscribe(SubscriptionPattern) with
 * group.protocol=consumer, the broker resolving the pattern (RE2/J on Kafka) and assigning the matching topics,
 * a topic created afterwards included without the client doing anything, and an invalid pattern's error.
 * Must not: resolve the pattern on the client side (that would test the client, not the broker), or wait
 * without a deadline.
 */
package kbcompat;

import static kbcompat.Util.check;
import static kbcompat.Util.eq;

import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.SubscriptionPattern;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.InvalidRegularExpression;

final class RegexCases {
    private RegexCases() {}

    static void register(Main.Env env) {
        Main.add("regex/subscription-pattern-new-topic", 150000, () -> pattern(env));
        Main.add("regex/subscription-pattern-invalid", 60000, () -> invalid(env));
    }

    static void produce(Main.Env env, String topic, int partitions, int perPartition) throws Exception {
        try (KafkaProducer<String, String> p = Util.producer(env)) {
            for (int part = 0; part < partitions; part++) {
                for (int i = 0; i < perPartition; i++) {
                    p.send(new ProducerRecord<>(topic, part, null, topic + "/" + part + "/" + i)).get();
                }
            }
        }
    }

    /** Polls c until `want` records of the topics in `expect` came; any record of another topic fails. */
    static void consume(KafkaConsumer<String, String> c, Set<String> expect, Set<String> got, int want, long ms) {
        long deadline = System.currentTimeMillis() + ms;
        // With want < 0: polls for the whole time (what else comes must not come).
        while ((want < 0 || got.size() < want) && System.currentTimeMillis() < deadline) {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                check(expect.contains(r.topic()), "record of a topic the pattern does not match: " + r.topic());
                check(got.add(r.value()), "record delivered twice: " + r.value());
            }
        }
        if (want >= 0) {
            eq(want, got.size(), "records consumed through the pattern");
        }
    }

    static void pattern(Main.Env env) throws Exception {
        String base = env.name("rx");
        String a = base + "-a", b = base + "-b", c = base + "-c", other = base + "-other", near = "x" + base + "-a";
        // RE2/J syntax; \Q...\E quotes the generated base (its characters are not all literal in a regex).
        SubscriptionPattern pattern = new SubscriptionPattern("\\Q" + base + "\\E-(a|b|c)");
        try (Admin admin = Util.admin(env)) {
            Util.createTopic(admin, a, 2, null);
            Util.createTopic(admin, b, 1, null);
            Util.createTopic(admin, other, 1, null);
            Util.createTopic(admin, near, 1, null);
            produce(env, a, 2, 5);
            produce(env, b, 1, 5);
            produce(env, other, 1, 5);
            produce(env, near, 1, 5);
            try (KafkaConsumer<String, String> cons = Util.consumer(env, "group.id", env.name("rx-group"),
                    "group.protocol", "consumer", "enable.auto.commit", "false")) {
                cons.subscribe(pattern);
                Set<String> got = new HashSet<>();
                consume(cons, Set.of(a, b), got, 15, 60000);

                // Created after the member joined: the broker re-resolves the pattern and assigns it.
                Util.createTopic(admin, c, 3, null);
                produce(env, c, 3, 2);
                consume(cons, Set.of(a, b, c), got, 21, 90000);
                // A last poll: records of non-matching topics would show up here too.
                consume(cons, Set.of(a, b, c), got, -1, 1500);
                eq(21, got.size(), "records consumed through the pattern, at the end");
            }
        }
    }

    static void invalid(Main.Env env) throws Exception {
        try (KafkaConsumer<String, String> cons = Util.consumer(env, "group.id", env.name("rx-bad"),
                "group.protocol", "consumer")) {
            cons.subscribe(new SubscriptionPattern("a(?=b)"));
            long deadline = System.currentTimeMillis() + 30000;
            InvalidRegularExpression seen = null;
            while (seen == null && System.currentTimeMillis() < deadline) {
                try {
                    cons.poll(Duration.ofMillis(200));
                } catch (InvalidRegularExpression e) {
                    seen = e;
                }
            }
            check(seen != null, "no InvalidRegularExpression from poll()");
            // The client's prefix, then the broker's message.
            eq("Invalid RE2J SubscriptionPattern provided in the call to subscribe. SubscribedTopicRegex `a(?=b)` is"
                    + " not a valid regular expression: invalid or unsupported Perl syntax.", seen.getMessage(),
                    "the error's message");
        }
    }
}
