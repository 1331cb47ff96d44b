package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.OffsetMetadataTooLarge;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Committed offsets of consumer groups, seen through the Java consumer and Admin: auto-commit
 * (C5), commitSync/commitAsync of explicit offsets with metadata (C6, C7, O1, O4, O5), a later
 * member resuming at the committed offset (O7), auto.offset.reset without a commit (O6), and
 * commits of an assign()-only consumer (generation -1, O3).
 */
class GroupCommitTest {
    @RegisterExtension
    static final SluiceBroker BROKER = new SluiceBroker("--group-initial-rebalance-delay-ms", "0");

    private static final long WAIT_MS = 30_000;

    private static KafkaConsumer<byte[], byte[]> member(String group, Map<String, Object> overrides) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "commit-" + group);
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 6000);
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1000);
        p.putAll(overrides);
        return Clients.consumer(BROKER, p);
    }

    /** Polls until the consumer has been assigned {@code n} partitions. */
    private static void awaitAssignment(KafkaConsumer<byte[], byte[]> c, int n, List<ConsumerRecord<byte[], byte[]>> sink)
            throws InterruptedException {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (c.assignment().size() != n) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("no assignment of " + n + " partitions within " + WAIT_MS + " ms: "
                        + c.assignment());
            }
            c.poll(Duration.ofMillis(100)).forEach(sink::add);
        }
    }

    /** Polls until {@code out} holds {@code n} records. */
    private static void pollUntil(KafkaConsumer<byte[], byte[]> c, List<ConsumerRecord<byte[], byte[]>> out, int n) {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        while (out.size() < n) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("only " + out.size() + " of " + n + " records within " + WAIT_MS + " ms");
            }
            c.poll(Duration.ofMillis(100)).forEach(out::add);
        }
    }

    private static Long committedOffset(Admin admin, String group, TopicPartition tp) throws Exception {
        OffsetAndMetadata o = Groups.committed(admin, group).get(tp);
        return o == null ? null : o.offset();
    }

    /**
     * C5: with enable.auto.commit=true and auto.commit.interval.ms=500 the committed offset follows
     * the consumed position while the application only polls; close() commits. O7: a new member of
     * the group starts at the committed offset, not where auto.offset.reset=latest would put it.
     */
    @Test
    void autoCommitAdvancesWhilePollingAndALaterMemberResumesThere() throws Exception {
        String topic = "auto-commit";
        String group = "auto-commit";
        TopicPartition tp = new TopicPartition(topic, 0);
        Groups.createTopic(BROKER, topic, 1);
        try (Admin admin = Clients.admin(BROKER)) {
            Groups.produce(BROKER, topic, 1, 30);
            List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
            try (KafkaConsumer<byte[], byte[]> c = member(group, Map.of(
                    ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, true,
                    ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, 500,
                    ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                    ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 7))) {
                c.subscribe(List.of(topic));
                pollUntil(c, got, 30);
                long consumedAt = System.currentTimeMillis();
                // Nothing but poll(): the commit has to come from the auto-commit timer.
                awaitCommitted(c, admin, group, tp, 30);
                long lagMs = System.currentTimeMillis() - consumedAt;
                assertTrue(lagMs < 3000, "auto-commit (interval 500 ms) took " + lagMs + " ms to show");

                Groups.produce(BROKER, topic, 1, 20);
                pollUntil(c, got, 50);
                awaitCommitted(c, admin, group, tp, 50);
                assertEquals(50, got.size(), "records consumed");
            }
            assertEquals(50L, committedOffset(admin, group, tp), "committed after close (close commits)");

            // O7: 25 more records; a new member starts at 50 although auto.offset.reset=latest.
            Groups.produce(BROKER, topic, 1, 25);
            List<ConsumerRecord<byte[], byte[]>> next = new ArrayList<>();
            try (KafkaConsumer<byte[], byte[]> c = member(group, Map.of(
                    ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, true,
                    ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, 500,
                    ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest"))) {
                c.subscribe(List.of(topic));
                pollUntil(c, next, 25);
            }
            assertEquals(50L, next.get(0).offset(), "first record of the new member = committed offset (O7)");
            assertEquals(74L, next.get(next.size() - 1).offset(), "last record");
            assertEquals(25, next.size(), "records after the committed offset");
            assertEquals(75L, committedOffset(admin, group, tp), "committed after the second member closed");
        }
    }

    /** Keeps polling (no commit call) until Admin shows {@code expected} committed, or fails. */
    private static void awaitCommitted(KafkaConsumer<byte[], byte[]> c, Admin admin, String group, TopicPartition tp,
            long expected) throws Exception {
        long deadline = System.currentTimeMillis() + WAIT_MS;
        List<Long> seen = new ArrayList<>();
        while (true) {
            Long o = committedOffset(admin, group, tp);
            if (seen.isEmpty() || !Objects.equals(seen.get(seen.size() - 1), o)) {
                seen.add(o);
            }
            if (o != null && o == expected) {
                return;
            }
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("committed offset of " + tp + " never reached " + expected
                        + " while polling; seen " + seen);
            }
            assertTrue(c.poll(Duration.ofMillis(100)).isEmpty(), "no more records expected");
        }
    }

    /** O6: a group with no committed offset starts where auto.offset.reset says. */
    @ParameterizedTest(name = "auto.offset.reset={0}")
    @ValueSource(strings = {"earliest", "latest"})
    void noCommittedOffsetAppliesAutoOffsetReset(String reset) throws Exception {
        String topic = "reset-" + reset;
        String group = "reset-" + reset;
        TopicPartition tp = new TopicPartition(topic, 0);
        Groups.createTopic(BROKER, topic, 1);
        Groups.produce(BROKER, topic, 1, 10);
        try (Admin admin = Clients.admin(BROKER);
                KafkaConsumer<byte[], byte[]> c = member(group, Map.of(
                        ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, reset))) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
            awaitAssignment(c, 1, got);
            assertNull(c.committed(Set.of(tp), Clients.OP_TIMEOUT).get(tp), "no committed offset (O5)");
            assertNull(Groups.committed(admin, group).get(tp), "Admin: no committed offset (O5)");
            if (reset.equals("earliest")) {
                pollUntil(c, got, 10);
                assertEquals(0L, got.get(0).offset(), "earliest: first record is the log start");
                assertEquals(10, got.size());
            } else {
                assertTrue(got.isEmpty(), "latest: nothing before the end: " + got.size());
                assertEquals(10L, c.position(tp, Clients.OP_TIMEOUT), "latest: position = log end offset");
                Groups.produce(BROKER, topic, 1, 3);
                pollUntil(c, got, 3);
                assertEquals(List.of(10L, 11L, 12L), got.stream().map(ConsumerRecord::offset).toList(),
                        "latest: only records written after the reset");
            }
        }
    }

    /**
     * C6/C7, O1, O4, O5: commitSync and commitAsync with explicit offsets commit exactly the map
     * passed (offset, metadata string, leader epoch), partition by partition; metadata over 4096
     * bytes is refused for that partition only.
     */
    @Test
    void explicitCommitSyncAndAsyncCommitExactlyWhatWasPassed() throws Exception {
        String topic = "explicit";
        String group = "explicit";
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        TopicPartition p2 = new TopicPartition(topic, 2);
        Groups.createTopic(BROKER, topic, 3);
        Groups.produce(BROKER, topic, 3, 20);
        try (Admin admin = Clients.admin(BROKER);
                KafkaConsumer<byte[], byte[]> c = member(group, Map.of(
                        ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest"))) {
            c.subscribe(List.of(topic));
            awaitAssignment(c, 3, new ArrayList<>());

            Map<TopicPartition, OffsetAndMetadata> first = Map.of(
                    p0, new OffsetAndMetadata(5, "meta-a"),
                    p1, new OffsetAndMetadata(7, "meta-b"));
            c.commitSync(first);
            assertCommitted(admin, group, first, c);

            // Async: p0 moves back to 3 (allowed), p2 gets an offset with a leader epoch; p1 untouched.
            Map<TopicPartition, OffsetAndMetadata> second = Map.of(
                    p0, new OffsetAndMetadata(3, "meta-c"),
                    p2, new OffsetAndMetadata(9, Optional.of(0), "with-epoch"));
            AtomicReference<Map<TopicPartition, OffsetAndMetadata>> cbOffsets = new AtomicReference<>();
            AtomicReference<Exception> cbError = new AtomicReference<>();
            c.commitAsync(second, (offsets, e) -> {
                cbOffsets.set(offsets);
                cbError.set(e);
            });
            long deadline = System.currentTimeMillis() + WAIT_MS;
            while (cbOffsets.get() == null && cbError.get() == null) { // callbacks run inside poll (C7)
                assertTrue(System.currentTimeMillis() < deadline, "commitAsync callback not called");
                c.poll(Duration.ofMillis(100));
            }
            assertNull(cbError.get(), "commitAsync error");
            assertEquals(second, cbOffsets.get(), "offsets handed to the callback");
            Map<TopicPartition, OffsetAndMetadata> expected = new HashMap<>(second);
            expected.put(p1, first.get(p1));
            assertCommitted(admin, group, expected, c);

            // O4: metadata over offset.metadata.max.bytes (4096) is refused, nothing changes.
            assertThrows(OffsetMetadataTooLarge.class,
                    () -> c.commitSync(Map.of(p1, new OffsetAndMetadata(8, "x".repeat(5000)))));
            assertCommitted(admin, group, expected, c);
        }
    }

    private static void assertCommitted(Admin admin, String group, Map<TopicPartition, OffsetAndMetadata> expected,
            KafkaConsumer<byte[], byte[]> c) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> viaAdmin = Groups.committed(admin, group);
        assertEquals(expected.keySet(), viaAdmin.keySet(), "partitions with a committed offset (Admin)");
        Map<TopicPartition, OffsetAndMetadata> viaConsumer = c.committed(expected.keySet(), Clients.OP_TIMEOUT);
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : expected.entrySet()) {
            for (Map<TopicPartition, OffsetAndMetadata> got : List.of(viaAdmin, viaConsumer)) {
                OffsetAndMetadata o = got.get(e.getKey());
                String where = (got == viaAdmin ? "Admin" : "consumer.committed") + " " + e.getKey();
                assertEquals(e.getValue().offset(), o.offset(), where + " offset");
                assertEquals(e.getValue().metadata(), o.metadata(), where + " metadata");
                assertEquals(e.getValue().leaderEpoch(), o.leaderEpoch(), where + " leader epoch");
            }
        }
    }

    /**
     * O3: a consumer with a group.id that uses assign() (no subscription) commits with generation
     * -1; the group exists afterwards as an Empty group with the offsets, readable by another one.
     */
    @Test
    void assignOnlyConsumerCommitsIntoASimpleGroup() throws Exception {
        String topic = "simple";
        String group = "simple";
        TopicPartition tp = new TopicPartition(topic, 0);
        Groups.createTopic(BROKER, topic, 1);
        Groups.produce(BROKER, topic, 1, 10);
        try (Admin admin = Clients.admin(BROKER)) {
            try (KafkaConsumer<byte[], byte[]> c = member(group, Map.of())) {
                c.assign(List.of(tp));
                c.commitSync(Map.of(tp, new OffsetAndMetadata(4, "simple")));
            }
            assertEquals(4L, committedOffset(admin, group, tp), "committed offset");
            ConsumerGroupDescription d = Groups.describeGroup(admin, group);
            assertEquals(GroupState.EMPTY, d.groupState(), "a simple group has no members");
            assertTrue(d.members().isEmpty(), "members: " + d.members());
            try (KafkaConsumer<byte[], byte[]> c = member(group, Map.of(
                    ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest"))) {
                c.assign(List.of(tp));
                List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
                pollUntil(c, got, 6);
                assertEquals(4L, got.get(0).offset(), "an assign()-only consumer starts at the committed offset");
            }
        }
    }
}
