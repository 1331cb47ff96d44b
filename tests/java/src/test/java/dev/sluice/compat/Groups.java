package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/** Helpers shared by the consumer-group tests. */
final class Groups {
    static final long GET_MS = Clients.OP_TIMEOUT.toMillis();

    private Groups() {
    }

    /** Polls {@code condition} every 50 ms until it holds; fails with {@code what} after the timeout. */
    static void await(BooleanSupplier condition, long timeoutMs, Supplier<String> what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!condition.getAsBoolean()) {
            if (System.currentTimeMillis() > deadline) {
                throw new AssertionError("timed out after " + timeoutMs + " ms waiting for " + what.get());
            }
            Thread.sleep(50);
        }
    }

    /**
     * Waits until the members agree on one stable generation: each one's last listener event is an
     * ASSIGNED line, all of the same generation, and their owned partitions are disjoint and cover
     * partitions 0..n-1. Returns each member's assignment.
     */
    static Map<MemberProcess, MemberProcess.Assigned> awaitStable(List<MemberProcess> members, int partitions,
            long timeoutMs) throws InterruptedException {
        AtomicReference<Map<MemberProcess, MemberProcess.Assigned>> result = new AtomicReference<>();
        await(() -> {
            Map<MemberProcess, MemberProcess.Assigned> m = new LinkedHashMap<>();
            Set<Integer> gens = new HashSet<>();
            List<Integer> all = new ArrayList<>();
            for (MemberProcess mp : members) {
                MemberProcess.Assigned a = mp.currentAssignment();
                if (a == null) {
                    return false;
                }
                m.put(mp, a);
                gens.add(a.generation());
                all.addAll(a.owned());
            }
            if (gens.size() != 1 || all.size() != partitions || new HashSet<>(all).size() != partitions) {
                return false;
            }
            for (int p = 0; p < partitions; p++) {
                if (!all.contains(p)) {
                    return false;
                }
            }
            result.set(m);
            return true;
        }, timeoutMs, () -> "one stable generation owning each of " + partitions
                + " partitions exactly once; members' current assignments: " + describe(members));
        return result.get();
    }

    static String describe(List<MemberProcess> members) {
        StringBuilder sb = new StringBuilder();
        for (MemberProcess m : members) {
            MemberProcess.Assigned a = m.currentAssignment();
            sb.append("\n  ").append(m.name()).append(" (").append(m.exitCode()).append("): ")
                    .append(a == null ? "none/rebalancing" : "gen " + a.generation() + " owns " + a.owned())
                    .append("; last lines ").append(m.tail(4));
        }
        return sb.toString();
    }

    static ConsumerGroupDescription describeGroup(Admin admin, String group) throws Exception {
        return admin.describeConsumerGroups(List.of(group)).describedGroups().get(group)
                .get(GET_MS, TimeUnit.MILLISECONDS);
    }

    /** memberId → partitions of {@code topic}, as DescribeGroups reports them. */
    static Map<String, Set<Integer>> assignmentsByMember(ConsumerGroupDescription d) {
        Map<String, Set<Integer>> m = new HashMap<>();
        for (MemberDescription md : d.members()) {
            Set<Integer> ps = new TreeSet<>();
            md.assignment().topicPartitions().forEach(tp -> ps.add(tp.partition()));
            m.put(md.consumerId(), ps);
        }
        return m;
    }

    static Map<TopicPartition, OffsetAndMetadata> committed(Admin admin, String group) throws Exception {
        return admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()
                .get(GET_MS, TimeUnit.MILLISECONDS);
    }

    /** Appends "what ms" to target/group-timings.txt (and prints it) so that runs can be compared. */
    static void recordTiming(String what, long ms) {
        String line = what + " " + ms;
        System.out.println("TIMING " + line);
        Path f = Path.of(System.getProperty("sluice.log.dir", "target/sluice-logs")).resolveSibling("group-timings.txt");
        try {
            Files.writeString(f, line + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        } catch (IOException e) {
            System.out.println("could not write " + f + ": " + e);
        }
    }

    /**
     * Creates a topic and waits until every partition answers ListOffsets (a freshly created
     * partition may not be served at once).
     */
    static void createTopic(SluiceBroker broker, String topic, int partitions) throws Exception {
        try (Admin admin = Clients.admin(broker)) {
            Clients.createTopic(admin, topic, partitions, Map.of());
            Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
            for (TopicPartition tp : Clients.partitions(topic, partitions)) {
                latest.put(tp, OffsetSpec.latest());
            }
            await(() -> {
                try {
                    admin.listOffsets(latest).all().get(GET_MS, TimeUnit.MILLISECONDS);
                    return true;
                } catch (Exception e) {
                    return false;
                }
            }, GET_MS, () -> "partitions of " + topic + " to answer ListOffsets");
        }
    }

    /** Produces n records to each partition, keyed by partition; returns when all are acknowledged. */
    static void produce(SluiceBroker broker, String topic, int partitions, int perPartition) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = Clients.producer(broker,
                Map.of(ProducerConfig.LINGER_MS_CONFIG, 5))) {
            List<java.util.concurrent.Future<?>> fs = new ArrayList<>();
            for (int i = 0; i < perPartition; i++) {
                for (int p = 0; p < partitions; p++) {
                    fs.add(producer.send(new ProducerRecord<>(topic, p, null, ("r" + i).getBytes())));
                }
            }
            producer.flush();
            for (var f : fs) {
                f.get(GET_MS, TimeUnit.MILLISECONDS);
            }
        }
    }

    /**
     * Writes to every partition of a topic, round robin, about {@code perSecond} records a second,
     * from its own thread until {@link #stop()}; remembers the (partition, offset) of every
     * acknowledged record.
     */
    static final class ContinuousProducer implements AutoCloseable {
        private final KafkaProducer<byte[], byte[]> producer;
        private final Set<Long> acked = ConcurrentHashMap.newKeySet();
        private final AtomicReference<Exception> error = new AtomicReference<>();
        private final Thread thread;
        private volatile boolean stopped;

        ContinuousProducer(SluiceBroker broker, String topic, int partitions, int perSecond) {
            producer = Clients.producer(broker, Map.of(ProducerConfig.LINGER_MS_CONFIG, 5));
            long pauseMs = Math.max(1, 1000L * partitions / perSecond);
            thread = new Thread(() -> {
                long seq = 0;
                try {
                    while (!stopped) {
                        for (int p = 0; p < partitions; p++) {
                            producer.send(new ProducerRecord<>(topic, p, null, ("v" + seq++).getBytes()),
                                    (md, e) -> {
                                        if (e != null) {
                                            error.compareAndSet(null, e);
                                        } else {
                                            acked.add(MemberProcess.key(md.partition(), md.offset()));
                                        }
                                    });
                        }
                        Thread.sleep(pauseMs); // pacing of the load, not synchronisation
                    }
                } catch (Exception e) {
                    error.compareAndSet(null, e);
                }
            }, "continuous-producer-" + topic);
            thread.setDaemon(true);
            thread.start();
        }

        /** Stops producing, waits for every send to be acknowledged; returns the acknowledged keys. */
        Set<Long> stop() throws Exception {
            stopped = true;
            thread.join(30_000);
            producer.flush();
            if (error.get() != null) {
                throw new AssertionError("producer failed", error.get());
            }
            return new TreeSet<>(acked);
        }

        @Override
        public void close() throws Exception {
            stopped = true;
            thread.join(30_000);
            producer.close();
        }
    }

    /** Log end offset per partition implied by a set of acknowledged keys of a fresh topic. */
    static Map<Integer, Long> endOffsets(Set<Long> keys) {
        Map<Integer, Long> m = new HashMap<>();
        for (long k : keys) {
            m.merge(MemberProcess.partitionOf(k), MemberProcess.offsetOf(k) + 1, Math::max);
        }
        for (Map.Entry<Integer, Long> e : m.entrySet()) {
            // a fresh topic: offsets 0..end-1 must all have been acknowledged
            long n = keys.stream().filter(k -> MemberProcess.partitionOf(k) == e.getKey()).count();
            assertEquals(e.getValue().longValue(), n, "acknowledged offsets of partition " + e.getKey()
                    + " are not contiguous from 0");
        }
        return m;
    }
}
