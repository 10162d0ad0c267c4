/*
 * Owns: the KIP-848 online migration case: a classic consumer (group.protocol=classic) and a consumer of the
 * new protocol (group.protocol=consumer) in one group. The classic group is converted to a consumer group when
 * the second joins, both consume side by side, the group goes back to classic when the second leaves; every
 * record is consumed exactly once across it all (commits after every poll), and the group's type as Admin
 * reports it (ConsumerGroupDescribe / DescribeGroups) follows the conversions.
 * Must not: wait without a deadline, or share a KafkaConsumer between threads.
 */
package kbcompat;

import static kbcompat.Util.check;
import static kbcompat.Util.eq;

import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;

final class MigrationCases {
    private MigrationCases() {}

    static final int PARTITIONS = 4;

    static void register(Main.Env env) {
        Main.add("migration/classic-to-consumer-and-back", 240000, () -> migrate(env));
    }

    /** A consumer polling on its own thread, committing after every poll, counting every record it gets. */
    static final class Runner implements AutoCloseable {
        final String name;
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicReference<Throwable> error = new AtomicReference<>();
        final AtomicReference<Set<TopicPartition>> assignment = new AtomicReference<>(Set.of());
        final Thread thread;

        Runner(Main.Env env, String name, String group, String protocol, String topic,
                Map<String, String> seen) {
            this.name = name;
            thread = new Thread(() -> {
                try (KafkaConsumer<String, String> c = Util.consumer(env, "group.id", group, "group.protocol", protocol,
                        "enable.auto.commit", "false", "client.id", name)) {
                    c.subscribe(List.of(topic));
                    while (!stop.get()) {
                        for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) {
                            String prev = seen.putIfAbsent(r.value(), name);
                            check(prev == null, r.value() + " consumed by " + name + " after " + prev);
                        }
                        // Processed records are committed before the next poll, where revocations happen.
                        c.commitSync(Duration.ofSeconds(20));
                        assignment.set(Set.copyOf(c.assignment()));
                    }
                } catch (Throwable t) {
                    error.set(t);
                }
            }, "migration-" + name);
            thread.setDaemon(true);
            thread.start();
        }

        void rethrow() {
            Throwable t = error.get();
            if (t != null) {
                throw new AssertionError(name + " failed: " + t, t);
            }
        }

        @Override
        public void close() throws Exception {
            stop.set(true);
            thread.join(30000);
            check(!thread.isAlive(), name + " did not stop");
            rethrow();
        }
    }

    static void produce(Main.Env env, String topic, String tag, int perPartition) throws Exception {
        try (KafkaProducer<String, String> p = Util.producer(env)) {
            for (int part = 0; part < PARTITIONS; part++) {
                for (int i = 0; i < perPartition; i++) {
                    p.send(new ProducerRecord<>(topic, part, null, tag + "/" + part + "/" + i)).get();
                }
            }
        }
    }

    interface Cond {
        boolean ok() throws Exception;
    }

    static void await(String what, long ms, Runner[] runners, Cond cond) throws Exception {
        long deadline = System.currentTimeMillis() + ms;
        while (true) {
            for (Runner r : runners) {
                r.rethrow();
            }
            if (cond.ok()) {
                return;
            }
            check(System.currentTimeMillis() < deadline, "timed out waiting for " + what);
            Thread.sleep(100);
        }
    }

    static GroupType type(Admin admin, String group) throws Exception {
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS)
                .get(group);
        return d.type();
    }

    static void migrate(Main.Env env) throws Exception {
        String topic = env.name("mig"), group = env.name("mig-group");
        Map<String, String> seen = new ConcurrentHashMap<>();
        try (Admin admin = Util.admin(env)) {
            Util.createTopic(admin, topic, PARTITIONS, null);
            produce(env, topic, "a", 25);
            try (Runner classic = new Runner(env, "classic", group, "classic", topic, seen)) {
                Runner[] one = {classic};
                await("the classic consumer to read the first records", 60000, one, () -> seen.size() == 100);
                eq(GroupType.CLASSIC, type(admin, group), "the group's type with one classic member");

                try (Runner modern = new Runner(env, "consumer", group, "consumer", topic, seen)) {
                    Runner[] both = {classic, modern};
                    // Converted online: both members share the partitions, each partition once.
                    await("both members to own partitions", 90000, both, () -> {
                        Set<TopicPartition> a = classic.assignment.get(), b = modern.assignment.get();
                        Set<TopicPartition> all = new HashSet<>(a);
                        all.addAll(b);
                        return !a.isEmpty() && !b.isEmpty() && all.size() == PARTITIONS
                                && a.size() + b.size() == PARTITIONS;
                    });
                    eq(GroupType.CONSUMER, type(admin, group), "the group's type after the consumer member joined");
                    produce(env, topic, "b", 25);
                    await("the records produced while both are in", 60000, both, () -> seen.size() == 200);
                    Set<String> byBoth = new HashSet<>(seen.values());
                    check(byBoth.contains("consumer"), "the consumer member read nothing: " + byBoth);
                }
                // The last consumer-protocol member left: a classic group again, its one member owning all.
                await("the group to be classic again", 60000, one, () -> type(admin, group) == GroupType.CLASSIC);
                await("the classic member to own every partition", 60000, one,
                        () -> classic.assignment.get().size() == PARTITIONS);
                produce(env, topic, "c", 25);
                await("the records produced after the downgrade", 60000, one, () -> seen.size() == 300);
                Thread.sleep(500);
                classic.rethrow();
            }
        }
        eq(300, seen.size(), "records consumed, each once");
    }
}
