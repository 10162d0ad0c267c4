/*
 * Owns: the share-group admin cases (KIP-932) with kafka-clients' Admin and Kafka's kafka-share-groups tool
 * (ShareGroupCommand): the simple assignor splitting a 4-partition topic between two KafkaShareConsumers,
 * listShareGroupOffsets / alterShareGroupOffsets / deleteShareGroupOffsets / deleteShareGroups and their
 * refusals while the group has members, share.auto.offset.reset=earliest set as a group config, and the tool's
 * --describe --offsets, --reset-offsets, --delete-offsets and --delete.
 * Must not: wait without a deadline, or assert which member gets which partition (Kafka's choice follows Java
 * hash-map order): only the shape KIP-932 promises.
 */
package kbcompat;

import static kbcompat.Util.check;
import static kbcompat.Util.eq;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ListShareGroupOffsetsSpec;
import org.apache.kafka.clients.admin.ShareGroupDescription;
import org.apache.kafka.clients.admin.ShareMemberDescription;
import org.apache.kafka.clients.admin.SharePartitionOffsetInfo;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupNotEmptyException;

final class ShareAdminCases {
    private ShareAdminCases() {}

    static final String TOOL = "org.apache.kafka.tools.consumer.group.ShareGroupCommand";

    static void register(Main.Env env) {
        Main.add("share-admin/assign-two-of-four", 120000, () -> assignTwoOfFour(env));
        Main.add("share-admin/offsets-alter-list-delete", 150000, () -> offsets(env));
        Main.add("share-admin/auto-reset-earliest", 120000, () -> earliest(env));
        Main.add("share-admin/kafka-share-groups", 150000, () -> tool(env));
    }

    static Map<TopicPartition, SharePartitionOffsetInfo> listOffsets(Admin a, String group) throws Exception {
        return a.listShareGroupOffsets(Map.of(group, new ListShareGroupOffsetsSpec())).partitionsToOffsetInfo(group)
                .get();
    }

    static ShareGroupDescription describe(Admin a, String group) throws Exception {
        return a.describeShareGroups(List.of(group)).describedGroups().get(group).get();
    }

    static void waitEmpty(Admin a, String group) throws Exception {
        long deadline = System.currentTimeMillis() + 60000;
        while (true) {
            ShareGroupDescription d = describe(a, group);
            if (d.groupState() == GroupState.EMPTY) {
                return;
            }
            check(System.currentTimeMillis() < deadline, "group " + group + " still " + d.groupState());
            Thread.sleep(300);
        }
    }

    static Throwable cause(Exception e) {
        return e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
    }

    /** Polls every consumer (keeping them members) until the group's assignment is `done`. */
    interface Until {
        boolean done(ShareGroupDescription d);
    }

    static ShareGroupDescription pollUntil(Admin a, String group, Collection<KafkaShareConsumer<String, String>> cs,
            Until u, String what) throws Exception {
        long deadline = System.currentTimeMillis() + 60000;
        ShareGroupDescription d = null;
        while (System.currentTimeMillis() < deadline) {
            for (KafkaShareConsumer<String, String> c : cs) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    c.acknowledge(r, AcknowledgeType.ACCEPT);
                }
            }
            d = describe(a, group);
            if (u.done(d)) {
                return d;
            }
        }
        throw new AssertionError("timed out waiting for " + what + "; last: " + d);
    }

    static void assignTwoOfFour(Main.Env env) throws Exception {
        String topic = ShareCases.setUp(env, "shadm-assign", 4), group = env.name("sga-assign");
        try (Admin a = Util.admin(env);
                KafkaShareConsumer<String, String> c1 = ShareCases.consumer(env, group, topic);
                KafkaShareConsumer<String, String> c2 = ShareCases.consumer(env, group, topic)) {
            // Kafka's simple assignor: two members on four partitions get two each, disjoint, all covered.
            ShareGroupDescription d = pollUntil(a, group, List.of(c1, c2), x -> {
                if (x.members().size() != 2) {
                    return false;
                }
                Set<TopicPartition> all = new HashSet<>();
                int sum = 0;
                for (ShareMemberDescription m : x.members()) {
                    Set<TopicPartition> tps = m.assignment().topicPartitions();
                    if (tps.size() != 2) {
                        return false;
                    }
                    sum += tps.size();
                    all.addAll(tps);
                }
                return sum == 4 && all.size() == 4;
            }, "two members with two disjoint partitions each");
            eq(d.groupEpoch(), d.targetAssignmentEpoch(), "assignment epoch of a settled group");
            // One leaves: the other gets all four.
            c2.close(Duration.ofSeconds(20));
            pollUntil(a, group, List.of(c1), x -> x.members().size() == 1
                    && x.members().iterator().next().assignment().topicPartitions().size() == 4,
                    "the remaining member with all four partitions");
        }
    }

    static void offsets(Main.Env env) throws Exception {
        String topic = ShareCases.setUp(env, "shadm-offsets", 2), group = env.name("sga-offsets");
        TopicPartition tp0 = new TopicPartition(topic, 0);
        try (Admin a = Util.admin(env); KafkaProducer<String, String> p = Util.producer(env)) {
            for (int i = 0; i < 10; i++) {
                ShareCases.send(p, topic, 0, "r-" + i);
            }
            // A group that does not exist yet: its offsets can be set before it is used (Kafka makes it).
            a.alterShareGroupOffsets(group, Map.of(tp0, 4L)).all().get();
            Map<TopicPartition, SharePartitionOffsetInfo> off = listOffsets(a, group);
            eq(Set.of(tp0), off.keySet(), "partitions with a share state");
            eq(4L, off.get(tp0).startOffset(), "start offset after alter");
            eq(java.util.Optional.of(6L), off.get(tp0).lag(), "lag: 10 records, start at 4");
            try (KafkaShareConsumer<String, String> c = ShareCases.consumer(env, group, topic)) {
                // The first record delivered is the one at the altered start offset.
                List<ConsumerRecord<String, String>> got = new ArrayList<>();
                long deadline = System.currentTimeMillis() + 60000;
                while (got.size() < 6 && System.currentTimeMillis() < deadline) {
                    got.addAll(ShareCases.poll(c, 300, r -> AcknowledgeType.ACCEPT));
                }
                eq(6, got.size(), "records from offset 4 on");
                eq(4L, got.get(0).offset(), "first offset delivered");
                // Members present: Kafka refuses to alter, delete offsets or delete the group.
                try {
                    a.alterShareGroupOffsets(group, Map.of(tp0, 0L)).all().get();
                    check(false, "alter of a group with a member succeeded");
                } catch (ExecutionException e) {
                    check(cause(e) instanceof GroupNotEmptyException, "alter with a member: " + cause(e));
                }
                try {
                    a.deleteShareGroupOffsets(group, Set.of(topic)).all().get();
                    check(false, "delete offsets of a group with a member succeeded");
                } catch (ExecutionException e) {
                    check(cause(e) instanceof GroupNotEmptyException, "delete offsets with a member: " + cause(e));
                }
                try {
                    a.deleteShareGroups(List.of(group)).all().get();
                    check(false, "delete of a group with a member succeeded");
                } catch (ExecutionException e) {
                    check(cause(e) instanceof GroupNotEmptyException, "delete group with a member: " + cause(e));
                }
            }
            waitEmpty(a, group);
            // Everything accepted: no lag. (The start offset Kafka reports then depends on when its share
            // coordinator last wrote the state, so only the lag is compared; it may trail the acknowledgements.)
            long deadline = System.currentTimeMillis() + 30000;
            while (!(off = listOffsets(a, group)).get(tp0).lag().equals(java.util.Optional.of(0L))
                    && System.currentTimeMillis() < deadline) {
                Thread.sleep(300);
            }
            eq(java.util.Optional.of(0L), off.get(tp0).lag(), "lag once all were accepted: " + off);
            a.deleteShareGroupOffsets(group, Set.of(topic)).all().get();
            eq(Set.of(), listOffsets(a, group).keySet(), "partitions with a share state after delete");
            a.deleteShareGroups(List.of(group)).all().get();
            check(a.listGroups().all().get().stream().noneMatch(g -> g.groupId().equals(group)),
                    "deleted group still listed");
        }
    }

    static void earliest(Main.Env env) throws Exception {
        String topic = ShareCases.setUp(env, "shadm-earliest", 1), group = env.name("sga-earliest");
        ConfigResource res = new ConfigResource(ConfigResource.Type.GROUP, group);
        try (Admin a = Util.admin(env); KafkaProducer<String, String> p = Util.producer(env)) {
            for (int i = 0; i < 5; i++) {
                ShareCases.send(p, topic, 0, "old-" + i);
            }
            a.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                    new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET)))).all().get();
            Config cfg = a.describeConfigs(List.of(res)).all().get().get(res);
            ConfigEntry e = cfg.get("share.auto.offset.reset");
            check(e != null, "share.auto.offset.reset not described: " + cfg);
            eq("earliest", e.value(), "described share.auto.offset.reset");
            eq(ConfigEntry.ConfigSource.DYNAMIC_GROUP_CONFIG, e.source(), "its source");
            // A new share group starts at the log start: the records produced before it existed come.
            try (KafkaShareConsumer<String, String> c = ShareCases.consumer(env, group, topic)) {
                List<String> got = new ArrayList<>();
                long deadline = System.currentTimeMillis() + 60000;
                while (got.size() < 5 && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : ShareCases.poll(c, 300, x -> AcknowledgeType.ACCEPT)) {
                        got.add(r.value());
                    }
                }
                eq(List.of("old-0", "old-1", "old-2", "old-3", "old-4"), got, "records of a new group (earliest)");
            }
        }
    }

    static Util.ToolRun tool(String... args) throws Exception {
        return Util.runTool(TOOL, args);
    }

    static Util.ToolRun ok(String... args) throws Exception {
        Util.ToolRun r = tool(args);
        check(r.code() == 0, "kafka-share-groups " + String.join(" ", args) + " exited " + r.code() + ": "
                + Util.tail(r.out(), 3000));
        return r;
    }

    static void tool(Main.Env env) throws Exception {
        String topic = ShareCases.setUp(env, "shadm-tool", 1), group = env.name("sga-tool");
        String b = env.bootstrap();
        TopicPartition tp0 = new TopicPartition(topic, 0);
        try (Admin a = Util.admin(env); KafkaProducer<String, String> p = Util.producer(env)) {
            for (int i = 0; i < 8; i++) {
                ShareCases.send(p, topic, 0, "t-" + i);
            }
            // --reset-offsets --to-earliest of a group not used yet, then --to-offset.
            ok("--bootstrap-server", b, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest",
                    "--execute");
            eq(0L, listOffsets(a, group).get(tp0).startOffset(), "start after --to-earliest");
            String reset = ok("--bootstrap-server", b, "--reset-offsets", "--group", group, "--topic", topic,
                    "--to-offset", "3", "--execute").out();
            check(reset.contains(topic) && reset.contains("3"), "--reset-offsets output: " + reset);
            eq(3L, listOffsets(a, group).get(tp0).startOffset(), "start after --to-offset 3");
            String desc = ok("--bootstrap-server", b, "--describe", "--group", group, "--offsets").out();
            check(desc.lines().anyMatch(l -> l.contains(group) && l.contains(topic) && l.matches(".*\\s3\\s.*")
                    && l.matches(".*\\s5\\s*$|.*\\s5\\s.*")), "--describe --offsets (start 3, lag 5): " + desc);
            // Members present: the tool reports Kafka's refusal and changes nothing.
            try (KafkaShareConsumer<String, String> c = ShareCases.consumer(env, group, topic)) {
                pollUntil(a, group, List.of(c), x -> x.members().size() == 1, "the member to join");
                Util.ToolRun r = tool("--bootstrap-server", b, "--delete", "--group", group);
                check(r.out().contains("not empty") || r.out().contains("NON_EMPTY_GROUP")
                        || r.out().contains("GroupNotEmpty"), "--delete with a member: " + r.out());
            }
            waitEmpty(a, group);
            ok("--bootstrap-server", b, "--delete-offsets", "--group", group, "--topic", topic);
            check(!listOffsets(a, group).containsKey(tp0), "offsets left after --delete-offsets");
            String del = ok("--bootstrap-server", b, "--delete", "--group", group).out();
            check(del.contains(group), "--delete output: " + del);
            check(a.listGroups().all().get().stream().noneMatch(g -> g.groupId().equals(group)),
                    "deleted group still listed");
        }
    }
}
