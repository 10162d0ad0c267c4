/*
 * Owns: the share group history checker (issue 18): three KafkaShareConsumers (explicit acknowledgement) of one
 * share group on a 4-partition topic acknowledge records with unique ids at random (mostly ACCEPT, some RELEASE,
 * a few REJECT, a few ids always RELEASEd until the delivery limit archives them); one consumer is closed
 * mid-run with the records of its last poll left acquired. Every delivery and acknowledgement outcome goes into
 * one history, checked at the end: each record ACCEPTed once, or REJECTed once, or archived at the delivery
 * limit; never finished twice; never delivered again once finished; delivery counts only grow.
 * Must not: run unbounded (a deadline on every loop), or keep a passing history (a failing one is written to a
 * file outside the case's temp dir and its path printed).
 * Expects group.share.record.lock.duration.ms 5 s (kafka_ref.REF_SETTINGS) and Kafka's default
 * group.share.delivery.count.limit (5) on every target; share.auto.offset.reset=earliest is set as a group config.
 */
package kbcompat;

import static kbcompat.Util.check;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.config.ConfigResource;

final class ShareHistoryCases {
    private ShareHistoryCases() {}

    static final int N = 3000;
    static final int PARTITIONS = 4;
    /** Ids always RELEASEd: the delivery limit must archive them. */
    static final int STICKY_EVERY = 500;
    /**
     * Polls with records of the consumer that is closed with its last poll's records still acquired: its first
     * (on Kafka a member gets its partitions only after a few heartbeats, and the others may drain the rest).
     */
    static final int VICTIM_POLLS = 1;

    static void register(Main.Env env) {
        Main.add("share/history-checker", 90000, () -> history(env));
    }

    /** One delivery of a record to a consumer, and what came of its acknowledgement. */
    static final class Event {
        final long seq;
        final int consumer, id, partition, delivery;
        final long offset;
        AcknowledgeType ack; // null: left acquired
        boolean ok;          // the acknowledgement's commit succeeded
        String error;

        Event(long seq, int consumer, int id, int partition, long offset, int delivery) {
            this.seq = seq;
            this.consumer = consumer;
            this.id = id;
            this.partition = partition;
            this.offset = offset;
            this.delivery = delivery;
        }

        @Override
        public String toString() {
            return seq + "\t" + consumer + "\th-" + id + "\t" + partition + "\t" + offset + "\t" + delivery + "\t"
                    + (ack == null ? "NONE" : ack) + "\t" + (ack == null ? "-" : ok ? "ok" : "failed " + error);
        }
    }

    static final class History {
        final List<Event> events = new ArrayList<>();
        final AtomicLong seq = new AtomicLong();

        synchronized Event add(int consumer, int id, int partition, long offset, int delivery) {
            Event e = new Event(seq.incrementAndGet(), consumer, id, partition, offset, delivery);
            events.add(e);
            return e;
        }

        synchronized List<Event> snapshot() {
            return new ArrayList<>(events);
        }
    }

    static int idOf(String value) {
        check(value.startsWith("h-"), "unexpected record " + value);
        return Integer.parseInt(value.substring(2));
    }

    static AcknowledgeType decide(Random rnd, int id) {
        if (id % STICKY_EVERY == 0) {
            return AcknowledgeType.RELEASE;
        }
        int x = rnd.nextInt(100);
        return x < 85 ? AcknowledgeType.ACCEPT : x < 96 ? AcknowledgeType.RELEASE : AcknowledgeType.REJECT;
    }

    /** Whether every id is finished (ACCEPT or REJECT committed) or delivered as often as the limit allows. */
    static boolean settled(History h, int limit) {
        Set<Integer> done = new HashSet<>();
        for (Event e : h.snapshot()) {
            if (e.delivery >= limit || (e.ok && (e.ack == AcknowledgeType.ACCEPT || e.ack == AcknowledgeType.REJECT))) {
                done.add(e.id);
            }
        }
        return done.size() == N;
    }

    static void consume(Main.Env env, String group, String topic, int who, long seed, History h, AtomicBoolean stop,
            boolean victim, Set<Integer> leftAcquired) throws Exception {
        Random rnd = new Random(seed);
        int polls = 0;
        long deadline = System.currentTimeMillis() + 75000;
        try (KafkaShareConsumer<String, String> c = ShareCases.consumer(env, group, topic)) {
            while (!stop.get()) {
                check(System.currentTimeMillis() < deadline, "consumer " + who + " past its deadline");
                List<ConsumerRecord<String, String>> got = new ArrayList<>();
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    got.add(r);
                }
                if (got.isEmpty()) {
                    continue;
                }
                polls++;
                List<Event> evs = new ArrayList<>();
                for (ConsumerRecord<String, String> r : got) {
                    int count = r.deliveryCount().orElse((short) -1);
                    evs.add(h.add(who, idOf(r.value()), r.partition(), r.offset(), count));
                }
                if (victim && polls == VICTIM_POLLS) {
                    // Closed with this poll's records acquired and unacknowledged: they must come back.
                    for (Event e : evs) {
                        leftAcquired.add(e.id);
                    }
                    return;
                }
                for (int i = 0; i < got.size(); i++) {
                    AcknowledgeType t = decide(rnd, evs.get(i).id);
                    c.acknowledge(got.get(i), t);
                    evs.get(i).ack = t;
                }
                Map<TopicIdPartition, Optional<KafkaException>> res = c.commitSync(Duration.ofSeconds(20));
                Map<Integer, String> failed = new HashMap<>();
                for (Map.Entry<TopicIdPartition, Optional<KafkaException>> e : res.entrySet()) {
                    e.getValue().ifPresent(x -> failed.put(e.getKey().partition(), x.toString()));
                }
                for (Event e : evs) {
                    synchronized (h) {
                        e.ok = !failed.containsKey(e.partition);
                        e.error = failed.get(e.partition);
                    }
                }
            }
        }
    }

    /** The checker itself must see what it is for: a record accepted twice, a count going back, one lost. */
    static void selfCheck(int limit) {
        History h = new History();
        Event a = h.add(1, 1, 0, 1, 1);
        a.ack = AcknowledgeType.ACCEPT;
        a.ok = true;
        Event b = h.add(2, 1, 0, 1, 2);
        b.ack = AcknowledgeType.ACCEPT;
        b.ok = true;
        Event c = h.add(1, 2, 0, 2, 2);
        c.ack = AcknowledgeType.RELEASE;
        c.ok = true;
        Event d = h.add(2, 2, 0, 2, 1);
        d.ack = AcknowledgeType.REJECT;
        d.ok = true;
        Map<Integer, long[]> where = Map.of(1, new long[] {0, 1}, 2, new long[] {0, 2}, 3, new long[] {0, 3});
        List<String> bad = checkHistory(h.snapshot(), where, limit, new HashSet<>(), 4);
        check(bad.contains("h-1 finished 2 times") && bad.contains("h-2 delivery count 1 after 2")
                && bad.contains("h-3 never delivered") && bad.size() == 5, "the checker missed violations: " + bad);
    }

    static void history(Main.Env env) throws Exception {
        selfCheck(ShareCases.DELIVERY_LIMIT);
        String topic = ShareCases.setUp(env, "share-history", PARTITIONS), group = env.name("sg-history");
        int limit = ShareCases.DELIVERY_LIMIT;
        ConfigResource res = new ConfigResource(ConfigResource.Type.GROUP, group);
        Map<Integer, long[]> where = new HashMap<>(); // id -> {partition, offset}
        try (Admin a = Util.admin(env); KafkaProducer<String, String> p = Util.producer(env)) {
            a.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                    new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET)))).all().get();
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < N; i++) {
                fs.add(p.send(new ProducerRecord<>(topic, i % PARTITIONS, null, "h-" + i)));
            }
            for (int i = 0; i < N; i++) {
                RecordMetadata m = fs.get(i).get();
                where.put(i, new long[] {m.partition(), m.offset()});
            }
        }
        History h = new History();
        AtomicBoolean stop = new AtomicBoolean();
        Set<Integer> leftAcquired = java.util.Collections.synchronizedSet(new HashSet<>());
        long seed = System.nanoTime();
        List<Thread> ts = new ArrayList<>();
        List<Throwable> errors = java.util.Collections.synchronizedList(new ArrayList<>());
        long t0 = System.currentTimeMillis();
        for (int k = 1; k <= 3; k++) {
            final int who = k;
            Thread t = new Thread(() -> {
                try {
                    consume(env, group, topic, who, seed + who, h, stop, who == 3, leftAcquired);
                } catch (Throwable e) {
                    errors.add(e);
                }
            }, "share-history-" + k);
            t.setDaemon(true);
            t.start();
            ts.add(t);
        }
        // Until every record is finished or released at the limit, then one lock duration and more: anything
        // delivered after that point is in the history too.
        long deadline = t0 + 60000;
        while (!settled(h, limit) && errors.isEmpty() && System.currentTimeMillis() < deadline) {
            Thread.sleep(200);
        }
        boolean settled = settled(h, limit);
        if (settled && errors.isEmpty()) {
            Thread.sleep(ShareCases.LOCK_MS + 1500);
        }
        stop.set(true);
        for (Thread t : ts) {
            t.join(30000);
        }
        List<Event> evs = h.snapshot();
        Set<Integer> archivedIds = new HashSet<>();
        List<String> bad = checkHistory(evs, where, limit, archivedIds, N);
        if (!settled) {
            bad.add(0, "not every record finished within 60 s");
        }
        for (Throwable e : errors) {
            bad.add(0, "consumer failed: " + Main.describe(e));
        }
        // Counts, printed on both targets.
        Map<Integer, Integer> maxDel = new HashMap<>();
        int accepted = 0, rejected = 0, released = 0, redelivered = 0, maxDelivery = 0;
        int archived = archivedIds.size();
        for (Event e : evs) {
            maxDel.merge(e.id, e.delivery, Math::max);
            maxDelivery = Math.max(maxDelivery, e.delivery);
            redelivered += e.delivery > 1 ? 1 : 0;
            if (e.ack != null && e.ok) {
                accepted += e.ack == AcknowledgeType.ACCEPT ? 1 : 0;
                rejected += e.ack == AcknowledgeType.REJECT ? 1 : 0;
                released += e.ack == AcknowledgeType.RELEASE ? 1 : 0;
            }
        }
        List<Integer> extra = new ArrayList<>();
        for (int id : archivedIds) {
            if (id % STICKY_EVERY != 0) {
                extra.add(id);
            }
        }
        System.out.printf("share history: produced=%d accepted=%d rejected=%d released=%d redelivered=%d "
                + "archived=%d (not always released: %s) max_delivery_count=%d left_acquired_at_close=%d "
                + "deliveries=%d in %d ms%n", N, accepted, rejected, released, redelivered, archived, extra,
                maxDelivery, leftAcquired.size(), evs.size(), System.currentTimeMillis() - t0);
        if (!bad.isEmpty()) {
            Path f = Files.createTempFile("kb-share-history-", ".tsv");
            try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(f))) {
                w.println("# seq\tconsumer\tid\tpartition\toffset\tdelivery\tack\toutcome (seed " + seed + ")");
                for (Event e : evs) {
                    w.println(e);
                }
            }
            throw new AssertionError(bad.size() + " violations, first: " + bad.subList(0, Math.min(5, bad.size()))
                    + "; history kept in " + f);
        }
        // The ids always released are archived (checked one by one above); a random run of releases may add some.
        check(archived >= N / STICKY_EVERY, "archived " + archived + ", want at least the " + N / STICKY_EVERY
                + " ids always released");
        check(!leftAcquired.isEmpty(), "the closed consumer left no record acquired");
    }

    /** The history's violations, in words (empty when it is correct). */
    static List<String> checkHistory(List<Event> evs, Map<Integer, long[]> where, int limit, Set<Integer> archived,
            int n) {
        List<String> bad = new ArrayList<>();
        Map<Integer, List<Event>> by = new HashMap<>();
        for (Event e : evs) {
            by.computeIfAbsent(e.id, x -> new ArrayList<>()).add(e);
            long[] w = where.get(e.id);
            if (w == null) {
                bad.add("h-" + e.id + " was never produced");
            } else if (w[0] != e.partition || w[1] != e.offset) {
                bad.add("h-" + e.id + " delivered at " + e.partition + "/" + e.offset + ", produced at " + w[0] + "/"
                        + w[1]);
            }
        }
        for (int id = 0; id < n; id++) {
            List<Event> l = by.get(id);
            if (l == null) {
                bad.add("h-" + id + " never delivered");
                continue;
            }
            // In the order consumers saw them (a redelivery is acquired only after the previous delivery ended).
            l.sort((x, y) -> Long.compare(x.seq, y.seq));
            int prev = 0, finishes = 0;
            Event finish = null;
            for (Event e : l) {
                if (e.delivery <= prev) {
                    bad.add("h-" + id + " delivery count " + e.delivery + " after " + prev);
                }
                prev = Math.max(prev, e.delivery);
                if (finish != null) {
                    bad.add("h-" + id + " delivered again (count " + e.delivery + ") after " + finish.ack + " at count "
                            + finish.delivery);
                }
                if (e.ok && (e.ack == AcknowledgeType.ACCEPT || e.ack == AcknowledgeType.REJECT)) {
                    finishes++;
                    finish = e;
                }
            }
            Event last = l.get(l.size() - 1);
            boolean archivedAtLimit = finish == null && last.delivery >= limit && last.ack != AcknowledgeType.ACCEPT
                    && last.ack != AcknowledgeType.REJECT;
            if (finishes > 1) {
                bad.add("h-" + id + " finished " + finishes + " times");
            }
            if (finishes == 0 && archivedAtLimit) {
                archived.add(id);
            }
            if (finishes == 0 && !archivedAtLimit) {
                bad.add("h-" + id + " neither accepted, rejected nor archived (last: " + last + ")");
            }
            if (id % STICKY_EVERY == 0 && (finishes != 0 || last.delivery != limit)) {
                bad.add("h-" + id + " always released: want archived after " + limit + " deliveries, last " + last);
            }
        }
        return bad;
    }
}
