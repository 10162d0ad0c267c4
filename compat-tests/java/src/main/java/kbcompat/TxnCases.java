/*
 * Owns: the transaction cases of issue 16 with kafka-clients 4.4.0: a transactional producer commits and
 * aborts across 2 partitions, a read_committed consumer sees exactly the committed records and a
 * read_uncommitted one all of them, a zombie producer with the same transactional.id is fenced, and Kafka's
 * kafka-transactions.sh (TransactionsCommand) lists and describes an open transaction.
 * Must not: depend on another case's topics or ids, or wait without a deadline.
 */
package kbcompat;

import static kbcompat.Util.check;
import static kbcompat.Util.eq;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;

final class TxnCases {
    private TxnCases() {}

    static void register(Main.Env env) {
        Main.add("txn/commit-abort-isolation", 120000, () -> commitAbort(env));
        Main.add("txn/zombie-fenced", 120000, () -> zombie(env));
        Main.add("txn/kafka-transactions-list-describe", 120000, () -> tool(env));
    }

    static KafkaProducer<String, String> txnProducer(Main.Env env, String id) {
        KafkaProducer<String, String> p = Util.producer(env, "transactional.id", id, "linger.ms", 5);
        p.initTransactions();
        return p;
    }

    /** Every value of both partitions at this isolation level, until `expected` came and a short poll more. */
    static List<String> read(Main.Env env, String topic, String isolation, int expected) {
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = Util.consumer(env, "isolation.level", isolation)) {
            List<TopicPartition> tps = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1));
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + 30000;
            while (out.size() < expected && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    out.add(r.value());
                }
            }
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                out.add(r.value());
            }
        }
        Collections.sort(out);
        return out;
    }

    static void commitAbort(Main.Env env) throws Exception {
        String topic = env.name("txn-ca");
        try (Admin admin = Util.admin(env)) {
            Util.createTopic(admin, topic, 2, null);
        }
        List<String> committed = new ArrayList<>(), all = new ArrayList<>();
        try (KafkaProducer<String, String> p = txnProducer(env, env.name("txn-ca-id"))) {
            p.beginTransaction();
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, i % 2, null, "commit-" + i));
                committed.add("commit-" + i);
            }
            p.commitTransaction();
            p.beginTransaction();
            for (int i = 0; i < 6; i++) {
                p.send(new ProducerRecord<>(topic, i % 2, null, "abort-" + i));
                all.add("abort-" + i);
            }
            p.flush();
            p.abortTransaction();
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, 1, null, "commit-late"));
            committed.add("commit-late");
            p.commitTransaction();
        }
        all.addAll(committed);
        Collections.sort(committed);
        Collections.sort(all);
        eq(committed, read(env, topic, "read_committed", committed.size()), "read_committed values");
        eq(all, read(env, topic, "read_uncommitted", all.size()), "read_uncommitted values");
    }

    static void zombie(Main.Env env) throws Exception {
        String topic = env.name("txn-z");
        String id = env.name("txn-z-id");
        try (Admin admin = Util.admin(env)) {
            Util.createTopic(admin, topic, 2, null);
        }
        KafkaProducer<String, String> old = txnProducer(env, id);
        try {
            old.beginTransaction();
            old.send(new ProducerRecord<>(topic, 0, null, "zombie")).get();
            try (KafkaProducer<String, String> fresh = txnProducer(env, id)) {
                fresh.beginTransaction();
                fresh.send(new ProducerRecord<>(topic, 1, null, "fresh"));
                fresh.commitTransaction();
            }
            Throwable seen = null;
            try {
                old.commitTransaction();
            } catch (KafkaException e) {
                seen = e;
            }
            check(seen instanceof ProducerFencedException || seen instanceof InvalidProducerEpochException,
                    "the zombie's commit must be fenced, got " + seen);
        } finally {
            old.close(Duration.ofSeconds(5));
        }
        eq(List.of("fresh"), read(env, topic, "read_committed", 1), "read_committed after the fence");
    }

    static void tool(Main.Env env) throws Exception {
        String topic = env.name("txn-tool");
        String id = env.name("txn-tool-id");
        try (Admin admin = Util.admin(env)) {
            Util.createTopic(admin, topic, 2, null);
        }
        try (KafkaProducer<String, String> p = txnProducer(env, id)) {
            p.beginTransaction();
            p.send(new ProducerRecord<>(topic, 1, null, "open")).get();
            Util.ToolRun list = Util.runTool("org.apache.kafka.tools.TransactionsCommand", "--bootstrap-server",
                    env.bootstrap(), "list");
            eq(0, list.code(), "kafka-transactions list exit code; output:\n" + list.out());
            check(list.out().contains(id) && list.out().contains("Ongoing"),
                    "list shows the open transaction:\n" + list.out());
            Util.ToolRun desc = Util.runTool("org.apache.kafka.tools.TransactionsCommand", "--bootstrap-server",
                    env.bootstrap(), "describe", "--transactional-id", id);
            eq(0, desc.code(), "kafka-transactions describe exit code; output:\n" + desc.out());
            check(desc.out().contains("Ongoing") && desc.out().contains(topic + "-1"),
                    "describe shows the state and the partition:\n" + desc.out());
            p.abortTransaction();
        }
    }
}
