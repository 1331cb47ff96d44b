package dev.sluice.compat;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A {@link GroupMember} running in its own JVM (started with the test classpath), and everything
 * it has printed so far. Closing kills it (SIGKILL) if it is still alive; a JVM shutdown hook does
 * the same if the test JVM goes down first.
 */
final class MemberProcess implements AutoCloseable {
    /** One line of the member's stdout, with the time the test JVM read it. */
    record Line(int index, long readMs, String text) {
    }

    /** An {@code ASSIGNED} line, parsed. */
    record Assigned(long ms, int generation, String memberId, Set<Integer> added, Set<Integer> owned) {
        static Assigned parse(String text) {
            String[] f = text.split(" ", -1);
            if (f.length != 6 || !f[0].equals("ASSIGNED")) {
                throw new IllegalArgumentException("not an ASSIGNED line: " + text);
            }
            return new Assigned(Long.parseLong(f[1]), Integer.parseInt(value(f[2], "gen")),
                    value(f[3], "member"), parts(value(f[4], "added")), parts(value(f[5], "owned")));
        }
    }

    private final String name;
    private final Path stdoutCopy;
    private final Process process;
    private final Thread shutdownHook;
    private final List<Line> lines = new ArrayList<>();
    private boolean eof;

    private MemberProcess(String name, Process process, Path stdoutCopy) {
        this.name = name;
        this.stdoutCopy = stdoutCopy;
        this.process = process;
        this.shutdownHook = new Thread(process::destroyForcibly, "kill-member-" + name);
        Runtime.getRuntime().addShutdownHook(shutdownHook);
        Thread reader = new Thread(this::readStdout, "member-stdout-" + name);
        reader.setDaemon(true);
        reader.start();
    }

    /**
     * Starts {@code java -cp <test classpath> dev.sluice.compat.GroupMember key=value...}. Its
     * stderr (client logs) goes to {@code target/member-logs/<name>.log}.
     */
    static MemberProcess start(String name, Map<String, String> args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        // Small, quick-starting JVMs: up to six of them share two cores with the broker.
        cmd.addAll(List.of("-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k"));
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(GroupMember.class.getName());
        args.forEach((k, v) -> cmd.add(k + "=" + v));
        Path logDir = Path.of(System.getProperty("sluice.log.dir", "target/sluice-logs"))
                .resolveSibling("member-logs");
        Files.createDirectories(logDir);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.redirectError(ProcessBuilder.Redirect.to(logDir.resolve(name + ".log").toFile()));
        pb.redirectInput(ProcessBuilder.Redirect.PIPE);
        return new MemberProcess(name, pb.start(), logDir.resolve(name + ".out"));
    }

    /** The usual arguments of a member of {@code group} reading {@code topic}, plus overrides. */
    static Map<String, String> args(SluiceBroker broker, String group, String topic, String clientId,
            Map<String, String> overrides) {
        Map<String, String> a = new LinkedHashMap<>();
        a.put("bootstrap", broker.bootstrap());
        a.put("group", group);
        a.put("topic", topic);
        a.put("client", clientId);
        a.putAll(overrides);
        return a;
    }

    String name() {
        return name;
    }

    Process process() {
        return process;
    }

    private void readStdout() {
        try (BufferedReader r = new BufferedReader(
                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String s;
            while ((s = r.readLine()) != null) {
                synchronized (this) {
                    lines.add(new Line(lines.size(), System.currentTimeMillis(), s));
                    notifyAll();
                }
            }
        } catch (IOException ignored) {
            // the process died: eof below
        }
        synchronized (this) {
            eof = true;
            notifyAll();
        }
    }

    /** A copy of every line read so far. */
    synchronized List<Line> lines() {
        return new ArrayList<>(lines);
    }

    /** Waits until every line the process wrote has been read (after it exited). */
    synchronized void awaitEof(long timeoutMs) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (!eof) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) {
                throw new AssertionError(name + ": stdout not closed within " + timeoutMs + " ms");
            }
            wait(left);
        }
    }

    /** Waits for the first line (from index {@code from} on) matching {@code p}; fails after the timeout. */
    synchronized Line await(Predicate<String> p, int from, long timeoutMs, String what) throws InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        int i = from;
        while (true) {
            for (; i < lines.size(); i++) {
                if (p.test(lines.get(i).text())) {
                    return lines.get(i);
                }
            }
            long left = deadline - System.currentTimeMillis();
            if (eof || left <= 0) {
                throw new AssertionError(name + ": no line " + what + " within " + timeoutMs + " ms"
                        + (eof ? " (process exited, code " + exitCode() + ")" : "") + "; last lines: " + tail(15));
            }
            wait(left);
        }
    }

    /** The most recent ASSIGNED line, if any. */
    synchronized Assigned lastAssigned() {
        for (int i = lines.size() - 1; i >= 0; i--) {
            if (lines.get(i).text().startsWith("ASSIGNED ")) {
                return Assigned.parse(lines.get(i).text());
            }
        }
        return null;
    }

    /**
     * The member's current assignment as it printed it: its last ASSIGNED line, or null if it has
     * none or a REVOKED/LOST line came after it (a rebalance is under way for this member).
     */
    synchronized Assigned currentAssignment() {
        for (int i = lines.size() - 1; i >= 0; i--) {
            String t = lines.get(i).text();
            if (t.startsWith("ASSIGNED ")) {
                return Assigned.parse(t);
            }
            if (t.startsWith("REVOKED ") || t.startsWith("LOST ")) {
                return null;
            }
        }
        return null;
    }

    /**
     * The (partition, offset) keys the member printed as CONSUMED after its last COMMITTED line
     * covering them: processed, and not known to be committed.
     */
    synchronized Set<Long> processedNotCommitted() {
        Map<Integer, Set<Long>> open = new HashMap<>();
        for (Line l : lines) {
            String[] f = l.text().split(" ");
            if (f[0].equals("CONSUMED")) {
                open.computeIfAbsent(Integer.parseInt(f[1]), k -> new TreeSet<>()).add(Long.parseLong(f[2]));
            } else if (f[0].equals("COMMITTED")) {
                long next = Long.parseLong(f[2]);
                Set<Long> s = open.get(Integer.parseInt(f[1]));
                if (s != null) {
                    s.removeIf(o -> o < next);
                }
            }
        }
        Set<Long> out = new TreeSet<>();
        open.forEach((p, offsets) -> offsets.forEach(o -> out.add(key(p, o))));
        return out;
    }

    /** Every ASSIGNED line, parsed, in order. */
    synchronized List<Assigned> assignedLines() {
        List<Assigned> out = new ArrayList<>();
        for (Line l : lines) {
            if (l.text().startsWith("ASSIGNED ")) {
                out.add(Assigned.parse(l.text()));
            }
        }
        return out;
    }

    /** How often the member printed {@code CONSUMED p o} for each (partition, offset). */
    synchronized Map<Long, Integer> consumedCounts() {
        Map<Long, Integer> m = new HashMap<>();
        for (Line l : lines) {
            if (l.text().startsWith("CONSUMED ")) {
                String[] f = l.text().split(" ");
                m.merge(key(Integer.parseInt(f[1]), Long.parseLong(f[2])), 1, Integer::sum);
            }
        }
        return m;
    }

    /** The last {@code COMMITTED p o} line per partition: partition → next offset. */
    synchronized Map<Integer, Long> lastCommitted() {
        Map<Integer, Long> m = new HashMap<>();
        for (Line l : lines) {
            if (l.text().startsWith("COMMITTED ")) {
                String[] f = l.text().split(" ");
                m.put(Integer.parseInt(f[1]), Long.parseLong(f[2]));
            }
        }
        return m;
    }

    /** Number of lines starting with {@code prefix}. */
    synchronized long count(String prefix) {
        return lines.stream().filter(l -> l.text().startsWith(prefix)).count();
    }

    synchronized String tail(int n) {
        List<String> t = new ArrayList<>();
        for (int i = Math.max(0, lines.size() - n); i < lines.size(); i++) {
            t.add(lines.get(i).text());
        }
        return t.toString();
    }

    /**
     * SIGKILL ({@code kill -9}); returns once the process is gone and every line it wrote before
     * dying has been read. (Signals go through the ProcessHandle: Process.destroy* would also
     * close our end of its stdout and lose the lines still in the pipe.)
     */
    void kill9() throws InterruptedException {
        process.toHandle().destroyForcibly();
        if (!process.waitFor(20, TimeUnit.SECONDS)) {
            throw new AssertionError(name + " did not die after SIGKILL");
        }
        awaitEof(10_000);
    }

    /** SIGTERM: the member closes its consumer (LeaveGroup if dynamic) and exits. */
    void terminate() {
        process.toHandle().destroy();
    }

    String exitCode() {
        return process.isAlive() ? "running" : String.valueOf(process.exitValue());
    }

    /** Kills the process if alive and keeps what it printed in {@code target/member-logs/<name>.out}. */
    @Override
    public void close() {
        process.toHandle().destroyForcibly();
        try {
            process.waitFor(20, TimeUnit.SECONDS);
            awaitEof(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (AssertionError e) {
            // stdout still open after 5 s: keep what we have
        }
        StringBuilder sb = new StringBuilder();
        for (Line l : lines()) {
            sb.append(l.readMs()).append(' ').append(l.text()).append('\n');
        }
        try {
            Files.writeString(stdoutCopy, sb, StandardCharsets.UTF_8);
        } catch (IOException ignored) {
            // diagnostics only
        }
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException ignored) {
            // JVM already shutting down
        }
    }

    /** Closes (kills) every member; one failing close does not spare the others. */
    static void closeAll(List<MemberProcess> members) {
        RuntimeException first = null;
        for (MemberProcess m : members) {
            try {
                m.close();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    static long key(int partition, long offset) {
        return ((long) partition << 40) | offset;
    }

    static int partitionOf(long key) {
        return (int) (key >>> 40);
    }

    static long offsetOf(long key) {
        return key & ((1L << 40) - 1);
    }

    private static String value(String field, String name) {
        if (!field.startsWith(name + "=")) {
            throw new IllegalArgumentException("expected " + name + "=..., got " + field);
        }
        return field.substring(name.length() + 1);
    }

    private static Set<Integer> parts(String csv) {
        Set<Integer> s = new TreeSet<>();
        if (!csv.isEmpty()) {
            for (String p : csv.split(",")) {
                s.add(Integer.parseInt(p));
            }
        }
        return Collections.unmodifiableSet(s);
    }
}
