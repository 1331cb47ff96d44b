package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.ConsumerPartitionAssignor;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.consumer.StickyAssignor;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Consumer groups with real replicas: every member is its own JVM running {@link GroupMember}
 * (manual commitSync after each poll batch). Covers the application-level promises of issue 3:
 * one owner per partition (G7-G9, G15, G26), takeover after {@code kill -9} of a member within the
 * session timeout (G19) with nothing lost and only the dead member's uncommitted records delivered
 * again (O1, O7), an immediate rebalance on a graceful leave (G21, G22), and static membership
 * (G23-G25).
 */
class GroupFailoverTest {
    @RegisterExtension
    static final SluiceBroker BROKER = new SluiceBroker("--group-initial-rebalance-delay-ms", "0");

    private static final int SESSION_MS = 6000;
    private static final int HEARTBEAT_MS = 1000;
    private static final long START_MS = 90_000;

    private final List<MemberProcess> members = new ArrayList<>();

    @AfterEach
    void stopMembers() {
        MemberProcess.closeAll(members);
    }

    private List<MemberProcess> startMembers(String prefix, int n, String group, String topic,
            Map<String, String> overrides) throws Exception {
        List<MemberProcess> started = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            MemberProcess m = MemberProcess.start(prefix + "-" + i,
                    MemberProcess.args(BROKER, group, topic, prefix + "-" + i, overrides));
            members.add(m);
            started.add(m);
        }
        return started;
    }

    /**
     * The five-replica application: 10 partitions, five members, a producer writing throughout.
     * Checks one owner per partition, the protocol name the group chose, {@code kill -9} of one
     * member mid-consumption, takeover by the survivors within session.timeout.ms plus the
     * rebalance, no record lost, and no record delivered twice except those the killed member
     * printed as processed after its last printed commit.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(classes = {RangeAssignor.class, RoundRobinAssignor.class, StickyAssignor.class,
            CooperativeStickyAssignor.class})
    void fiveReplicasSurviveKill9OfOne(Class<? extends ConsumerPartitionAssignor> assignor) throws Exception {
        final int partitions = 10;
        final int replicas = 5;
        String protocol = assignor.getDeclaredConstructor().newInstance().name();
        String topic = "five-" + protocol;
        String group = "five-" + protocol;
        Groups.createTopic(BROKER, topic, partitions);

        try (Groups.ContinuousProducer producer = new Groups.ContinuousProducer(BROKER, topic, partitions, 250);
                Admin admin = Clients.admin(BROKER)) {
            List<MemberProcess> group5 = startMembers("five-" + protocol, replicas, group, topic, Map.of(
                    "assignor", assignor.getName(),
                    "session.ms", String.valueOf(SESSION_MS),
                    "heartbeat.ms", String.valueOf(HEARTBEAT_MS),
                    "max.poll.ms", "10000",
                    "max.records", "20",
                    "work.ms", "20"));

            // G7-G9, G15: one generation in which every partition has exactly one owner.
            Map<MemberProcess, MemberProcess.Assigned> stable = Groups.awaitStable(group5, partitions, START_MS);
            for (MemberProcess.Assigned a : stable.values()) {
                assertEquals(partitions / replicas, a.owned().size(), "balanced assignment " + stable.values());
            }
            // G26: DescribeGroups agrees with what the members were told, and names the protocol.
            int gen = stable.values().iterator().next().generation();
            Groups.await(() -> {
                try {
                    ConsumerGroupDescription d = Groups.describeGroup(admin, group);
                    return d.groupState() == GroupState.STABLE && d.members().size() == replicas;
                } catch (Exception e) {
                    return false;
                }
            }, 10_000, () -> "DescribeGroups to show " + group + " Stable with " + replicas + " members");
            ConsumerGroupDescription d = Groups.describeGroup(admin, group);
            assertEquals(protocol, d.partitionAssignor(), "selected protocol (G9)");
            Map<String, Set<Integer>> described = Groups.assignmentsByMember(d);
            for (Map.Entry<MemberProcess, MemberProcess.Assigned> e : stable.entrySet()) {
                assertEquals(e.getValue().owned(), described.get(e.getValue().memberId()),
                        "DescribeGroups assignment of " + e.getKey().name() + " (" + e.getValue().memberId()
                                + "); described: " + described);
            }

            // Kill one member mid-consumption: right after it printed a new batch, before that
            // batch's commit (it "works" 20 ms per batch between the two).
            MemberProcess victim = group5.get(2);
            Set<Integer> moved = stable.get(victim).owned();
            MemberProcess.Line committed = victim.await(l -> l.startsWith("COMMITTED "),
                    victim.lines().size(), 30_000, "COMMITTED (victim processing)");
            victim.await(l -> l.startsWith("CONSUMED "), committed.index() + 1, 30_000, "CONSUMED after a commit");
            long killMs = System.currentTimeMillis();
            victim.kill9();
            List<MemberProcess> survivors = new ArrayList<>(group5);
            survivors.remove(victim);

            // G19: its partitions move to survivors after session.timeout.ms plus the rebalance.
            Map<Integer, Long> takenAt = new TreeMap<>();
            Groups.await(() -> {
                for (MemberProcess s : survivors) {
                    for (MemberProcess.Assigned a : s.assignedLines()) {
                        if (a.ms() >= killMs) {
                            for (int p : a.owned()) {
                                if (moved.contains(p)) {
                                    takenAt.merge(p, a.ms(), Math::min);
                                }
                            }
                        }
                    }
                }
                return takenAt.keySet().containsAll(moved);
            }, SESSION_MS + 30_000, () -> "survivors to take over partitions " + moved + " of the killed member;"
                    + " taken so far " + takenAt + Groups.describe(survivors));
            long takeoverMs = takenAt.values().stream().mapToLong(Long::longValue).max().orElseThrow() - killMs;
            Groups.recordTiming("kill9-takeover-" + protocol, takeoverMs);
            assertTrue(takeoverMs >= SESSION_MS - HEARTBEAT_MS - 1000,
                    "takeover after " + takeoverMs + " ms: the killed member was expired before its session"
                            + " timeout (" + SESSION_MS + " ms) could have elapsed");
            assertTrue(takeoverMs <= SESSION_MS + 10_000,
                    "takeover took " + takeoverMs + " ms, more than session.timeout.ms + 10 s");

            Map<MemberProcess, MemberProcess.Assigned> after = Groups.awaitStable(survivors, partitions, 30_000);
            for (Map.Entry<MemberProcess, MemberProcess.Assigned> e : after.entrySet()) {
                int n = e.getValue().owned().size();
                assertTrue(n == 2 || n == 3, "balanced over 4 survivors: " + after.values());
                assertTrue(e.getValue().generation() > gen, "new generation after the kill");
                if (assignor == StickyAssignor.class || assignor == CooperativeStickyAssignor.class) {
                    // ownedPartitions/userData survived the round trip through the coordinator.
                    assertTrue(e.getValue().owned().containsAll(stable.get(e.getKey()).owned()),
                            e.getKey().name() + " kept its partitions (sticky): before "
                                    + stable.get(e.getKey()).owned() + ", after " + e.getValue().owned());
                }
            }

            // Consumption continues: everything produced is consumed, nothing lost.
            Set<Long> produced = producer.stop();
            Map<Integer, Long> ends = Groups.endOffsets(produced);
            Groups.await(() -> allConsumed(group5).keySet().containsAll(produced), 60_000,
                    () -> "every produced record to be consumed; missing "
                            + missing(produced, allConsumed(group5).keySet()));
            Map<Long, Integer> consumed = allConsumed(group5);
            assertEquals(produced, consumed.keySet(), "consumed records that were never produced");

            // Only what the killed member processed after its last printed commit came twice.
            Set<Long> allowed = victim.processedNotCommitted();
            Set<Long> twice = new TreeSet<>();
            consumed.forEach((k, n) -> {
                if (n > 1) {
                    twice.add(k);
                }
            });
            Set<Long> unexpected = new TreeSet<>(twice);
            unexpected.removeAll(allowed);
            System.out.printf("%s: produced %d, delivered twice %d, killed member's processed-not-committed %d%n",
                    protocol, produced.size(), twice.size(), allowed.size());
            assertTrue(unexpected.isEmpty(), "records delivered more than once that the killed member had"
                    + " not processed after its last commit (partition/offset): " + show(unexpected));

            // The survivors committed everything: committed offset = log end offset (O1).
            Groups.await(() -> {
                try {
                    Map<TopicPartition, OffsetAndMetadata> c = Groups.committed(admin, group);
                    for (Map.Entry<Integer, Long> e : ends.entrySet()) {
                        OffsetAndMetadata o = c.get(new TopicPartition(topic, e.getKey()));
                        if (o == null || o.offset() != e.getValue()) {
                            return false;
                        }
                    }
                    return true;
                } catch (Exception e) {
                    return false;
                }
            }, 20_000, () -> "committed offsets to equal the end offsets " + ends);
        }
    }

    /**
     * G21/G22: close() of a dynamic member sends LeaveGroup; the survivors get its partitions at
     * once, long before the (deliberately long) session timeout.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(classes = {RangeAssignor.class, CooperativeStickyAssignor.class})
    void gracefulCloseRebalancesAtOnce(Class<? extends ConsumerPartitionAssignor> assignor) throws Exception {
        final int partitions = 6;
        final int sessionMs = 30_000;
        String protocol = assignor.getDeclaredConstructor().newInstance().name();
        String topic = "leave-" + protocol;
        String group = "leave-" + protocol;
        Groups.createTopic(BROKER, topic, partitions);
        Groups.produce(BROKER, topic, partitions, 20);

        List<MemberProcess> group3 = startMembers("leave-" + protocol, 3, group, topic, Map.of(
                "assignor", assignor.getName(),
                "session.ms", String.valueOf(sessionMs),
                "heartbeat.ms", String.valueOf(HEARTBEAT_MS),
                "max.poll.ms", "20000"));
        Map<MemberProcess, MemberProcess.Assigned> stable = Groups.awaitStable(group3, partitions, START_MS);

        MemberProcess leaver = group3.get(0);
        Set<Integer> moved = stable.get(leaver).owned();
        assertTrue(!moved.isEmpty(), "the leaving member owns partitions");
        List<MemberProcess> survivors = new ArrayList<>(group3);
        survivors.remove(leaver);
        long t0 = System.currentTimeMillis();
        leaver.terminate(); // SIGTERM: wakeup, commit, close() => LeaveGroup
        Map<MemberProcess, MemberProcess.Assigned> after = Groups.awaitStable(survivors, partitions,
                sessionMs + 15_000);
        long takeoverMs = -1;
        for (MemberProcess.Assigned a : after.values()) {
            takeoverMs = Math.max(takeoverMs, a.ms() - t0);
        }
        leaver.await(l -> l.startsWith("CLOSED "), 0, 20_000, "CLOSED");
        Groups.recordTiming("leave-takeover-" + protocol, takeoverMs);
        assertTrue(takeoverMs < sessionMs / 3, "after a graceful close the survivors got the partitions after "
                + takeoverMs + " ms; expected well before session.timeout.ms=" + sessionMs);
        for (MemberProcess.Assigned a : after.values()) {
            assertTrue(a.ms() >= t0, "a new assignment after the close");
        }
    }

    /**
     * G23-G25 (KIP-345): a static member killed with -9 and restarted with the same
     * group.instance.id within session.timeout.ms gets its partitions back in the same generation,
     * and the other members' rebalance listeners are not called. Once for a follower and once for
     * the group leader (static-0 joins first, so it is the leader, G8): with JoinGroup v9+ a
     * rejoining static leader is told to skip the assignment instead of causing a rebalance (G23).
     */
    @ParameterizedTest(name = "restart the leader: {0}")
    @ValueSource(booleans = {false, true})
    void staticMemberRestartKeepsPartitionsWithoutRebalance(boolean restartLeader) throws Exception {
        final int partitions = 6;
        // Long enough for a JVM restart on a busy 2-core machine; the test fails if the restart
        // is not within it rather than testing something else.
        final int sessionMs = 15_000;
        String topic = "static-" + (restartLeader ? "leader" : "follower");
        String group = topic;
        Groups.createTopic(BROKER, topic, partitions);
        Groups.produce(BROKER, topic, partitions, 20);

        Map<String, String> overrides = Map.of(
                "assignor", RangeAssignor.class.getName(),
                "session.ms", String.valueOf(sessionMs),
                "heartbeat.ms", String.valueOf(HEARTBEAT_MS),
                "max.poll.ms", "20000");
        List<MemberProcess> group3 = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            Map<String, String> o = new HashMap<>(overrides);
            o.put("instance", "static-" + i);
            MemberProcess m = MemberProcess.start(topic + "-" + i,
                    MemberProcess.args(BROKER, group, topic, "static-" + i, o));
            members.add(m);
            group3.add(m);
            if (i == 0) {
                // The first member forms generation 1 alone and so is the leader.
                MemberProcess.Assigned first = MemberProcess.Assigned.parse(
                        m.await(l -> l.startsWith("ASSIGNED "), 0, START_MS, "ASSIGNED").text());
                assertEquals(1, first.generation(), "generation of a group's first member (G8)");
            }
        }
        Map<MemberProcess, MemberProcess.Assigned> stable = Groups.awaitStable(group3, partitions, START_MS);
        int gen = stable.values().iterator().next().generation();

        int victimIndex = restartLeader ? 0 : 1;
        MemberProcess victim = group3.get(victimIndex);
        String instance = "static-" + victimIndex;
        MemberProcess.Assigned before = stable.get(victim);
        List<MemberProcess> others = new ArrayList<>(group3);
        others.remove(victim);
        Map<MemberProcess, Long> listenerCalls = new HashMap<>();
        for (MemberProcess o : others) {
            listenerCalls.put(o, listenerEvents(o));
        }

        long killMs = System.currentTimeMillis();
        victim.kill9();
        Map<String, String> sameInstance = new HashMap<>(overrides);
        sameInstance.put("instance", instance);
        MemberProcess restarted = MemberProcess.start(topic + "-" + victimIndex + "-restarted",
                MemberProcess.args(BROKER, group, topic, instance, sameInstance));
        members.add(restarted);
        MemberProcess.Assigned again = MemberProcess.Assigned.parse(
                restarted.await(l -> l.startsWith("ASSIGNED "), 0, sessionMs, "ASSIGNED").text());
        Groups.recordTiming("static-restart-assigned-" + (restartLeader ? "leader" : "follower"),
                again.ms() - killMs);
        assertTrue(again.ms() - killMs < sessionMs, "restart took longer than the session timeout");

        // Observation window for an absence: three heartbeat intervals after the restarted member
        // was assigned, each other member has polled (an ALIVE line); a rebalance would have
        // reached them through a heartbeat by then.
        Map<MemberProcess, MemberProcess.Line> aliveAfter = new HashMap<>();
        for (MemberProcess o : others) {
            aliveAfter.put(o, o.await(l -> l.startsWith("ALIVE ")
                    && Long.parseLong(l.split(" ")[1]) >= again.ms() + 3L * HEARTBEAT_MS,
                    0, 30_000, "ALIVE three heartbeats after the restart"));
        }

        List<Executable> checks = new ArrayList<>(List.of(
                () -> assertEquals(before.owned(), again.owned(),
                        "the restarted static member got its partitions back (G25)"),
                () -> assertEquals(gen, again.generation(),
                        "generation of the restarted member: unchanged (G23: no rebalance)"),
                () -> assertNotEquals(before.memberId(), again.memberId(), "a new member id for the new process (G23)"),
                () -> assertTrue(again.memberId().startsWith(instance + "-"),
                        "static member id = instance id + '-' + UUID: " + again.memberId())));
        for (MemberProcess o : others) {
            checks.add(() -> assertTrue(aliveAfter.get(o).text().contains(" gen=" + gen + " "),
                    o.name() + " still in generation " + gen + ": " + aliveAfter.get(o).text()));
            checks.add(() -> assertEquals(listenerCalls.get(o), listenerEvents(o), o.name()
                    + "'s rebalance listener was called after the static member restarted: "
                    + o.lines().stream().map(MemberProcess.Line::text)
                            .filter(t -> t.matches("^(ASSIGNED|REVOKED|LOST) .*")).toList()));
        }
        assertAll(checks);

        try (Admin admin = Clients.admin(BROKER)) {
            ConsumerGroupDescription d = Groups.describeGroup(admin, group);
            assertEquals(GroupState.STABLE, d.groupState(), "group state");
            assertEquals(3, d.members().size(), "members: " + d.members());
            Map<String, MemberDescription> byInstance = new HashMap<>();
            for (MemberDescription md : d.members()) {
                byInstance.put(md.groupInstanceId().orElse("(none)"), md);
            }
            assertEquals(Set.of("static-0", "static-1", "static-2"), byInstance.keySet(), "group.instance.ids");
            assertEquals(again.memberId(), byInstance.get(instance).consumerId(),
                    instance + " is now the restarted process's member");
            for (MemberProcess o : others) {
                String inst = "static-" + group3.indexOf(o);
                assertEquals(stable.get(o).memberId(), byInstance.get(inst).consumerId(),
                        "member id of " + inst + " unchanged");
            }
            Set<Integer> restartedParts = new HashSet<>();
            byInstance.get(instance).assignment().topicPartitions().forEach(tp -> restartedParts.add(tp.partition()));
            assertEquals(before.owned(), restartedParts, "DescribeGroups assignment of " + instance);
        }
    }

    private static long listenerEvents(MemberProcess m) {
        return m.count("ASSIGNED ") + m.count("REVOKED ") + m.count("LOST ");
    }

    private static Map<Long, Integer> allConsumed(List<MemberProcess> ms) {
        Map<Long, Integer> all = new HashMap<>();
        for (MemberProcess m : ms) {
            m.consumedCounts().forEach((k, n) -> all.merge(k, n, Integer::sum));
        }
        return all;
    }

    private static String missing(Set<Long> produced, Set<Long> consumed) {
        Set<Long> m = new TreeSet<>(produced);
        m.removeAll(consumed);
        return show(m);
    }

    private static String show(Set<Long> keys) {
        Map<Integer, List<Long>> byPartition = new TreeMap<>();
        for (long k : keys) {
            byPartition.computeIfAbsent(MemberProcess.partitionOf(k), p -> new ArrayList<>()).add(MemberProcess.offsetOf(k));
        }
        StringBuilder sb = new StringBuilder("{");
        byPartition.forEach((p, os) -> sb.append(p).append(": ").append(os.size() > 20
                ? os.subList(0, 20) + "... (" + os.size() + ")" : os).append("; "));
        return sb.append("}").toString();
    }
}
