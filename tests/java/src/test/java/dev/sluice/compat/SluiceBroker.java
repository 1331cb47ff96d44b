package dev.sluice.compat;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * JUnit 5 extension that runs one Sluice broker per test class.
 *
 * <p>Use as {@code @RegisterExtension static final SluiceBroker BROKER = new SluiceBroker();}.
 * The broker binary is {@code $SLUICE_BIN}, or {@code <repo>/target/release/sluice}. It is
 * started on 127.0.0.1 with an ephemeral port and a fresh data directory; readiness is the
 * single stdout line {@code sluice listening on 127.0.0.1:PORT}. After the class it is stopped
 * with SIGTERM (and killed if it does not exit); a JVM shutdown hook kills it if the test JVM
 * goes down first. Its stderr is kept in {@code target/sluice-logs/<TestClass>.log}.
 *
 * <p>The stop also checks the binary's contract: a clean exit (code 0) on SIGTERM, and no
 * stdout output besides the readiness line.
 */
public final class SluiceBroker implements BeforeAllCallback, AfterAllCallback {
    private static final Pattern READY = Pattern.compile("^sluice listening on (127\\.0\\.0\\.1:(\\d+))$");
    private static final long START_TIMEOUT_S = 30;
    private static final long STOP_TIMEOUT_S = 20;

    private Process process;
    private Thread shutdownHook;
    private Path dataDir;
    private Path logFile;
    private String bootstrap;
    private final List<String> extraStdout = Collections.synchronizedList(new ArrayList<>());
    private final List<String> extraArgs;

    /** A broker started with {@code serve --listen 127.0.0.1:0 --data-dir DIR} only. */
    public SluiceBroker() {
        this(new String[0]);
    }

    /**
     * A broker started with these {@code serve} flags added, e.g.
     * {@code "--group-initial-rebalance-delay-ms", "0"}.
     */
    public SluiceBroker(String... extraArgs) {
        this.extraArgs = List.of(extraArgs);
    }

    /** {@code 127.0.0.1:PORT} of the running broker. */
    public String bootstrap() {
        if (bootstrap == null) {
            throw new IllegalStateException("broker not started");
        }
        return bootstrap;
    }

    static Path binary() {
        String env = System.getenv("SLUICE_BIN");
        if (env != null && !env.isBlank()) {
            return Path.of(env).toAbsolutePath();
        }
        String repo = System.getProperty("sluice.repo.dir", "../..");
        return Path.of(repo, "target", "release", "sluice").toAbsolutePath().normalize();
    }

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        start(context.getRequiredTestClass().getSimpleName());
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        stop();
    }

    private void start(String name) throws Exception {
        Path bin = binary();
        if (!Files.isExecutable(bin)) {
            throw new IllegalStateException("Sluice binary not found or not executable: " + bin
                    + " (set SLUICE_BIN)");
        }
        Path logDir = Path.of(System.getProperty("sluice.log.dir", "target/sluice-logs"));
        Files.createDirectories(logDir);
        logFile = logDir.resolve(name + ".log").toAbsolutePath();
        dataDir = Files.createTempDirectory("sluice-java-" + name + "-");

        List<String> cmd = new ArrayList<>(List.of(bin.toString(), "serve",
                "--listen", "127.0.0.1:0", "--data-dir", dataDir.toString()));
        cmd.addAll(extraArgs);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.redirectError(ProcessBuilder.Redirect.to(logFile.toFile()));
        pb.redirectInput(ProcessBuilder.Redirect.PIPE);
        process = pb.start();
        final Process p = process;
        shutdownHook = new Thread(p::destroyForcibly, "sluice-kill-" + name);
        Runtime.getRuntime().addShutdownHook(shutdownHook);

        BufferedReader out = new BufferedReader(
                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        CompletableFuture<String> first = new CompletableFuture<>();
        Thread reader = new Thread(() -> {
            try {
                first.complete(out.readLine());
                // Keep draining so the broker never blocks on a full pipe; remember what it said.
                String line;
                while ((line = out.readLine()) != null) {
                    extraStdout.add(line);
                }
            } catch (IOException e) {
                first.completeExceptionally(e);
            }
        }, "sluice-stdout-" + name);
        reader.setDaemon(true);
        reader.start();

        String line;
        try {
            line = first.get(START_TIMEOUT_S, TimeUnit.SECONDS);
        } catch (TimeoutException | ExecutionException e) {
            kill();
            throw new IllegalStateException("broker did not announce readiness within "
                    + START_TIMEOUT_S + " s; stderr:\n" + logTail(), e);
        }
        if (line == null) {
            int code = process.waitFor();
            kill();
            throw new IllegalStateException("broker exited (code " + code
                    + ") before announcing readiness; stderr:\n" + logTail());
        }
        Matcher m = READY.matcher(line);
        if (!m.matches()) {
            kill();
            throw new IllegalStateException("unexpected first stdout line from broker: '" + line
                    + "'; stderr:\n" + logTail());
        }
        if (Integer.parseInt(m.group(2)) == 0) {
            kill();
            throw new IllegalStateException("broker announced port 0: " + line);
        }
        bootstrap = m.group(1);
    }

    private void stop() throws Exception {
        if (process == null) {
            return;
        }
        try {
            process.destroy(); // SIGTERM
            boolean exited = process.waitFor(STOP_TIMEOUT_S, TimeUnit.SECONDS);
            if (!exited) {
                process.destroyForcibly().waitFor(STOP_TIMEOUT_S, TimeUnit.SECONDS);
                throw new AssertionError("broker did not exit within " + STOP_TIMEOUT_S
                        + " s of SIGTERM; stderr:\n" + logTail());
            }
            int code = process.exitValue();
            if (code != 0) {
                throw new AssertionError("broker exited with code " + code
                        + " after SIGTERM (expected a clean shutdown, 0); stderr:\n" + logTail());
            }
            if (!extraStdout.isEmpty()) {
                throw new AssertionError("broker printed more than the readiness line on stdout: "
                        + extraStdout);
            }
        } finally {
            kill();
            try {
                Runtime.getRuntime().removeShutdownHook(shutdownHook);
            } catch (IllegalStateException ignored) {
                // JVM already shutting down
            }
            deleteRecursively(dataDir);
            process = null;
            bootstrap = null;
        }
    }

    private void kill() {
        if (process != null && process.isAlive()) {
            process.destroyForcibly();
            try {
                process.waitFor(STOP_TIMEOUT_S, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** The last lines of the broker's stderr, for failure messages. */
    public String logTail() {
        try {
            List<String> lines = Files.readAllLines(logFile, StandardCharsets.UTF_8);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException | RuntimeException e) {
            return "(no log: " + e + ")";
        }
    }

    private static void deleteRecursively(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // best effort: it is a temp directory
                }
            });
        } catch (IOException ignored) {
            // best effort
        }
    }
}
