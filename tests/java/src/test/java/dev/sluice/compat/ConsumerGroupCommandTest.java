package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Kafka's own {@code kafka-consumer-groups.sh} ({@code org.apache.kafka.tools.consumer.group.
 * ConsumerGroupCommand} from Maven's kafka-tools, run as a child JVM as the script does; its output
 * is kept in {@code target/tool-logs/}) against a
 * group of two members with known committed offsets and a topic with known log end offsets:
 * {@code --list}, {@code --list --state}, {@code --describe} (offsets, lag, owners),
 * {@code --describe --members --verbose}, {@code --describe --state}, and {@code --describe} once
 * the group is empty. Exercises ListGroups (G27), DescribeGroups (G26), OffsetFetch (O5),
 * FindCoordinator (G1, G2) and ListOffsets through the tool.
 */
class ConsumerGroupCommandTest {
    @RegisterExtension
    static final SluiceBroker BROKER = new SluiceBroker("--group-initial-rebalance-delay-ms", "0");

    private static final String TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
    private static final String TOPIC = "cgc-topic";
    private static final String GROUP = "cgc-group";
    private static final int PARTITIONS = 4;
    private static final AtomicInteger RUNS = new AtomicInteger();

    /** Exit code and output of one tool run. */
    record ToolRun(List<String> args, int exitCode, String stdout, String stderr) {
        /** Non-blank stdout lines split on whitespace. */
        List<String[]> rows() {
            List<String[]> rows = new ArrayList<>();
            for (String line : stdout.split("\n")) {
                if (!line.isBlank()) {
                    rows.add(line.trim().split("\\s+"));
                }
            }
            return rows;
        }

        @Override
        public String toString() {
            return "kafka-consumer-groups " + String.join(" ", args) + " (exit " + exitCode + ")\n--- stdout:\n"
                    + stdout + "--- stderr:\n" + stderr;
        }
    }

    /** Starts the tool for each argument list at once (each in its own JVM), waits for all. */
    private static List<ToolRun> runTools(List<List<String>> argLists) throws Exception {
        Path dir = Path.of(System.getProperty("sluice.log.dir", "target/sluice-logs")).resolveSibling("tool-logs");
        Files.createDirectories(dir);
        List<Process> procs = new ArrayList<>();
        List<Path[]> files = new ArrayList<>();
        try {
            for (int i = 0; i < argLists.size(); i++) {
                List<String> cmd = new ArrayList<>(List.of(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                        "-cp", System.getProperty("java.class.path"), TOOL,
                        "--bootstrap-server", BROKER.bootstrap()));
                cmd.addAll(argLists.get(i));
                int n = RUNS.incrementAndGet();
                Path out = dir.resolve("run-" + n + ".out");
                Path err = dir.resolve("run-" + n + ".err");
                files.add(new Path[] {out, err});
                procs.add(new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile())
                        .redirectInput(ProcessBuilder.Redirect.PIPE).start());
            }
            List<ToolRun> runs = new ArrayList<>();
            for (int i = 0; i < procs.size(); i++) {
                Process p = procs.get(i);
                if (!p.waitFor(90, TimeUnit.SECONDS)) {
                    throw new AssertionError("tool did not finish within 90 s: " + argLists.get(i));
                }
                runs.add(new ToolRun(argLists.get(i), p.exitValue(), read(files.get(i)[0]), read(files.get(i)[1])));
            }
            return runs;
        } finally {
            for (Process p : procs) {
                p.destroyForcibly();
            }
        }
    }

    private static String read(Path p) throws IOException {
        return Files.readString(p, StandardCharsets.UTF_8);
    }

    private static KafkaConsumer<byte[], byte[]> member(String clientId) {
        return Clients.consumer(BROKER, Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, GROUP,
                ConsumerConfig.CLIENT_ID_CONFIG, clientId,
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest",
                ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName(),
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10_000,
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1000));
    }

    /** The stdout row whose first column is the group and whose column {@code col} is {@code value}. */
    private static String[] row(ToolRun run, int col, String value) {
        for (String[] r : run.rows()) {
            if (r.length > col && r[0].equals(GROUP) && r[col].equals(value)) {
                return r;
            }
        }
        throw new AssertionError("no row with column " + col + " = " + value + " in\n" + run);
    }

    private static void assertHeader(ToolRun run, String... columns) {
        String header = String.join(" ", columns);
        boolean found = run.rows().stream().anyMatch(r -> String.join(" ", r).equals(header));
        assertTrue(found, "header '" + header + "' in\n" + run);
    }

    @Test
    void describeListMembersStateShowTheGroup() throws Exception {
        Groups.createTopic(BROKER, TOPIC, PARTITIONS);
        // Log end offsets 10, 11, 12, 13.
        Map<Integer, Long> logEnd = new HashMap<>();
        try (var producer = Clients.producer(BROKER)) {
            for (int p = 0; p < PARTITIONS; p++) {
                for (int i = 0; i < 10 + p; i++) {
                    producer.send(new ProducerRecord<>(TOPIC, p, null, ("r" + i).getBytes()));
                }
                logEnd.put(p, 10L + p);
            }
            producer.flush();
        }
        // Committed: p0 3 (lag 7), p1 11 (lag 0), p2 5 (lag 7), p3 none ("-").
        Map<Integer, Long> commit = Map.of(0, 3L, 1, 11L, 2, 5L);

        Map<String, String> ownerClientOf = new HashMap<>();
        try (KafkaConsumer<byte[], byte[]> a = member("cgc-client-a");
                KafkaConsumer<byte[], byte[]> b = member("cgc-client-b")) {
            a.subscribe(List.of(TOPIC));
            b.subscribe(List.of(TOPIC));
            long deadline = System.currentTimeMillis() + 60_000;
            while (!(a.assignment().size() + b.assignment().size() == PARTITIONS
                    && a.groupMetadata().generationId() == b.groupMetadata().generationId()
                    && disjoint(a.assignment(), b.assignment()))) {
                assertTrue(System.currentTimeMillis() < deadline, "two members did not get a stable assignment: "
                        + a.assignment() + " / " + b.assignment());
                a.poll(Duration.ofMillis(50));
                b.poll(Duration.ofMillis(50));
            }
            Map<String, KafkaConsumer<byte[], byte[]>> byClient = Map.of("cgc-client-a", a, "cgc-client-b", b);
            Map<String, String> memberIdOf = new HashMap<>();
            for (var e : byClient.entrySet()) {
                KafkaConsumer<byte[], byte[]> c = e.getValue();
                memberIdOf.put(e.getKey(), c.groupMetadata().memberId());
                Map<TopicPartition, OffsetAndMetadata> mine = new HashMap<>();
                for (TopicPartition tp : c.assignment()) {
                    ownerClientOf.put(String.valueOf(tp.partition()), e.getKey());
                    if (commit.containsKey(tp.partition())) {
                        mine.put(tp, new OffsetAndMetadata(commit.get(tp.partition())));
                    }
                }
                if (!mine.isEmpty()) {
                    c.commitSync(mine);
                }
            }

            List<ToolRun> runs = runTools(List.of(
                    List.of("--list"),
                    List.of("--list", "--state"),
                    List.of("--describe", "--group", GROUP),
                    List.of("--describe", "--group", GROUP, "--members", "--verbose"),
                    List.of("--describe", "--group", GROUP, "--state")));
            for (ToolRun r : runs) {
                assertEquals(0, r.exitCode(), "exit code of\n" + r);
                assertFalse(r.stdout().contains("Error:"), "error in\n" + r);
            }

            // --list: the group's name on a line of its own (ListGroups, G27).
            assertTrue(runs.get(0).stdout().lines().anyMatch(GROUP::equals), "--list shows the group\n" + runs.get(0));
            // --list --state: GROUP STATE, the group Stable.
            assertHeader(runs.get(1), "GROUP", "STATE");
            assertEquals("Stable", row(runs.get(1), 0, GROUP)[1], "--list --state\n" + runs.get(1));

            // --describe: one row per partition with offsets, lag and owner.
            ToolRun describe = runs.get(2);
            assertHeader(describe, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                    "CONSUMER-ID", "HOST", "CLIENT-ID");
            Set<String> seen = new HashSet<>();
            for (String[] r : describe.rows()) {
                if (!r[0].equals(GROUP)) {
                    continue;
                }
                assertEquals(9, r.length, "columns of " + Arrays.toString(r) + "\n" + describe);
                assertEquals(TOPIC, r[1], "topic\n" + describe);
                int p = Integer.parseInt(r[2]);
                seen.add(r[2]);
                Long committed = commit.get(p);
                assertEquals(committed == null ? "-" : String.valueOf(committed), r[3], "CURRENT-OFFSET of p" + p
                        + "\n" + describe);
                assertEquals(String.valueOf(logEnd.get(p)), r[4], "LOG-END-OFFSET of p" + p + "\n" + describe);
                assertEquals(committed == null ? "-" : String.valueOf(logEnd.get(p) - committed), r[5],
                        "LAG of p" + p + "\n" + describe);
                String client = ownerClientOf.get(r[2]);
                assertEquals(memberIdOf.get(client), r[6], "CONSUMER-ID of p" + p + "\n" + describe);
                assertEquals("/127.0.0.1", r[7], "HOST of p" + p + "\n" + describe);
                assertEquals(client, r[8], "CLIENT-ID of p" + p + "\n" + describe);
            }
            assertEquals(Set.of("0", "1", "2", "3"), seen, "partitions described\n" + describe);

            // --describe --members --verbose: one row per member with its partitions.
            ToolRun members = runs.get(3);
            assertHeader(members, "GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "CURRENT-EPOCH",
                    "CURRENT-ASSIGNMENT", "TARGET-EPOCH", "TARGET-ASSIGNMENT");
            for (var e : byClient.entrySet()) {
                String[] r = row(members, 1, memberIdOf.get(e.getKey()));
                assertEquals("/127.0.0.1", r[2], "HOST\n" + members);
                assertEquals(e.getKey(), r[3], "CLIENT-ID\n" + members);
                assertEquals(String.valueOf(e.getValue().assignment().size()), r[4], "#PARTITIONS\n" + members);
                assertEquals(assignmentString(e.getValue().assignment()), r[6], "CURRENT-ASSIGNMENT\n" + members);
            }
            assertEquals(2, members.rows().stream().filter(r -> r[0].equals(GROUP)).count(), "member rows\n" + members);

            // --describe --state: coordinator, strategy, state, member count.
            ToolRun state = runs.get(4);
            assertHeader(state, "GROUP", "COORDINATOR", "(ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS");
            String[] s = row(state, 0, GROUP);
            assertEquals(List.of(GROUP, BROKER.bootstrap(), "(1)", "range", "Stable", "2"), List.of(s),
                    "--describe --state\n" + state);
        }

        // Both members closed (LeaveGroup): the group is Empty and keeps its offsets.
        ToolRun empty = runTools(List.of(List.of("--describe", "--group", GROUP))).get(0);
        assertEquals(0, empty.exitCode(), "exit code\n" + empty);
        assertTrue(empty.stderr().contains("Consumer group '" + GROUP + "' has no active members."),
                "no active members\n" + empty);
        for (var e : commit.entrySet()) {
            String[] r = row(empty, 2, String.valueOf(e.getKey()));
            assertEquals(String.valueOf(e.getValue()), r[3], "CURRENT-OFFSET of the empty group\n" + empty);
            assertEquals(String.valueOf(logEnd.get(e.getKey()) - e.getValue()), r[5], "LAG\n" + empty);
            assertEquals("-", r[6], "no CONSUMER-ID once empty\n" + empty);
        }
    }

    private static boolean disjoint(Set<TopicPartition> x, Set<TopicPartition> y) {
        Set<TopicPartition> s = new HashSet<>(x);
        s.retainAll(y);
        return s.isEmpty();
    }

    private static String assignmentString(Set<TopicPartition> assignment) {
        return TOPIC + ":" + String.join(",", assignment.stream().map(TopicPartition::partition).sorted()
                .map(String::valueOf).toList());
    }
}
