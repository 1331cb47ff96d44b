package dev.sluice.compat;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * One replica of a consumer application, run as its own JVM by {@link MemberProcess}: subscribes
 * to one topic in a consumer group, "processes" every record (prints it, then works for
 * {@code work.ms}), and commits what it processed with {@code commitSync(offsets)} after each poll
 * batch (manual commits, at-least-once). SIGTERM closes it gracefully (wakeup, last commit,
 * {@code close()}, which sends LeaveGroup for a dynamic member). It halts when its stdin reaches
 * end of file, so that it never outlives the test JVM that started it.
 *
 * <p>Arguments are {@code key=value}: {@code bootstrap}, {@code group}, {@code topic},
 * {@code client} (client.id), optional {@code instance} (group.instance.id: static member),
 * {@code assignor} (a class name for partition.assignment.strategy; the client default if absent),
 * {@code session.ms}, {@code heartbeat.ms}, {@code max.poll.ms}, {@code max.records},
 * {@code work.ms}.
 *
 * <p>Everything the test needs is printed on stdout, one event a line, flushed before the next
 * step, so a SIGKILL leaves exactly what happened before it in the pipe:
 * <pre>
 * STARTED &lt;ms&gt;
 * ASSIGNED &lt;ms&gt; gen=&lt;g&gt; member=&lt;id&gt; added=&lt;p,p&gt; owned=&lt;p,p&gt;   (after onPartitionsAssigned)
 * REVOKED &lt;ms&gt; parts=&lt;p,p&gt;                                   (after onPartitionsRevoked)
 * LOST &lt;ms&gt; parts=&lt;p,p&gt;                                      (onPartitionsLost)
 * CONSUMED &lt;p&gt; &lt;offset&gt;                                       (record handed to the app)
 * COMMITTED &lt;p&gt; &lt;next offset&gt;                                 (after commitSync returned)
 * COMMIT_RETRY &lt;ms&gt; &lt;exception&gt;                              (rebalance in progress; kept)
 * COMMIT_FAILED &lt;p&gt; &lt;next offset&gt; &lt;exception&gt;                  (commit given up)
 * ALIVE &lt;ms&gt; gen=&lt;g&gt; member=&lt;id&gt;                              (after a poll, at most once a second)
 * CLOSED &lt;ms&gt;                                                  (close() returned)
 * </pre>
 * Times are {@code System.currentTimeMillis()}, comparable with the test JVM's on one machine.
 */
public final class GroupMember {
    private final PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    private final KafkaConsumer<byte[], byte[]> consumer;
    private final String topic;
    private final long workMs;
    /** Processed but not yet committed: partition → next offset to read. */
    private final Map<TopicPartition, OffsetAndMetadata> pending = new HashMap<>();
    private volatile boolean stopping;
    private long lastAliveMs;

    private GroupMember(Map<String, String> args) {
        topic = args.get("topic");
        workMs = Long.parseLong(args.getOrDefault("work.ms", "0"));
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("bootstrap"));
        p.put(ConsumerConfig.GROUP_ID_CONFIG, args.get("group"));
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, args.get("client"));
        if (args.containsKey("instance")) {
            p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, args.get("instance"));
        }
        if (args.containsKey("assignor")) {
            p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, args.get("assignor"));
        }
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, args.getOrDefault("session.ms", "6000"));
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, args.getOrDefault("heartbeat.ms", "1000"));
        p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, args.getOrDefault("max.poll.ms", "15000"));
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, args.getOrDefault("max.records", "20"));
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = new HashMap<>();
        for (String a : argv) {
            int eq = a.indexOf('=');
            if (eq < 1) {
                throw new IllegalArgumentException("expected key=value, got " + a);
            }
            args.put(a.substring(0, eq), a.substring(eq + 1));
        }
        new GroupMember(args).run();
    }

    private void run() throws InterruptedException {
        Thread main = Thread.currentThread();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // SIGTERM: ask the poll loop to finish, then wait for close() to complete.
            stopping = true;
            consumer.wakeup();
            try {
                main.join(30_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "graceful-close"));

        // Orphan guard: the test keeps our stdin open; EOF means the test JVM is gone.
        Thread orphanGuard = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // nothing is sent; just wait for EOF
                }
            } catch (java.io.IOException ignored) {
                // treat like EOF
            }
            Runtime.getRuntime().halt(70);
        }, "orphan-guard");
        orphanGuard.setDaemon(true);
        orphanGuard.start();

        emit("STARTED " + now());
        consumer.subscribe(List.of(topic), new Listener());
        try {
            while (!stopping) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
                if (!records.isEmpty()) {
                    StringBuilder sb = new StringBuilder();
                    for (ConsumerRecord<byte[], byte[]> r : records) {
                        sb.append("CONSUMED ").append(r.partition()).append(' ').append(r.offset()).append('\n');
                        pending.put(new TopicPartition(r.topic(), r.partition()),
                                new OffsetAndMetadata(r.offset() + 1));
                    }
                    emitRaw(sb);
                    if (workMs > 0) {
                        Thread.sleep(workMs); // the application's processing time
                    }
                }
                commitPending(pending.keySet());
                alive();
            }
        } catch (WakeupException e) {
            // SIGTERM: fall through to the graceful close
        }
        commitPending(pending.keySet());
        consumer.close(Duration.ofSeconds(20));
        emit("CLOSED " + now());
    }

    /** Commits the pending offsets of these partitions; prints COMMITTED once commitSync returned. */
    private void commitPending(Collection<TopicPartition> which) {
        Map<TopicPartition, OffsetAndMetadata> batch = new HashMap<>();
        for (TopicPartition tp : which) {
            OffsetAndMetadata o = pending.get(tp);
            if (o != null) {
                batch.put(tp, o);
            }
        }
        if (batch.isEmpty()) {
            return;
        }
        try {
            consumer.commitSync(batch);
            StringBuilder sb = new StringBuilder();
            batch.forEach((tp, o) -> sb.append("COMMITTED ").append(tp.partition()).append(' ')
                    .append(o.offset()).append('\n'));
            emitRaw(sb);
            batch.keySet().forEach(pending::remove);
        } catch (RebalanceInProgressException e) {
            // Cooperative rebalance under way: keep the offsets, commit after the next poll (or in
            // onPartitionsRevoked if the partition goes away).
            emit("COMMIT_RETRY " + now() + " " + e.getClass().getSimpleName());
        } catch (CommitFailedException e) {
            StringBuilder sb = new StringBuilder();
            batch.forEach((tp, o) -> sb.append("COMMIT_FAILED ").append(tp.partition()).append(' ')
                    .append(o.offset()).append(' ').append(e.getClass().getSimpleName()).append('\n'));
            emitRaw(sb);
            batch.keySet().forEach(pending::remove);
        }
    }

    private void alive() {
        long t = now();
        if (t - lastAliveMs >= 1000) {
            lastAliveMs = t;
            emit("ALIVE " + t + " gen=" + consumer.groupMetadata().generationId()
                    + " member=" + consumer.groupMetadata().memberId());
        }
    }

    private final class Listener implements ConsumerRebalanceListener {
        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            // Commit what was processed before giving the partitions up (the standard pattern).
            commitPending(partitions);
            emit("REVOKED " + now() + " parts=" + list(partitions));
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            // The generation is gone: these offsets cannot be committed any more (C12).
            for (Iterator<TopicPartition> it = pending.keySet().iterator(); it.hasNext();) {
                if (partitions.contains(it.next())) {
                    it.remove();
                }
            }
            emit("LOST " + now() + " parts=" + list(partitions));
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            emit("ASSIGNED " + now() + " gen=" + consumer.groupMetadata().generationId()
                    + " member=" + consumer.groupMetadata().memberId()
                    + " added=" + list(partitions) + " owned=" + list(consumer.assignment()));
        }
    }

    private static String list(Collection<TopicPartition> partitions) {
        return partitions.stream().map(TopicPartition::partition).collect(Collectors.toCollection(TreeSet::new))
                .stream().map(String::valueOf).collect(Collectors.joining(","));
    }

    private static long now() {
        return System.currentTimeMillis();
    }

    private void emit(String line) {
        out.print(line + "\n");
        out.flush();
    }

    private void emitRaw(CharSequence lines) {
        out.print(lines);
        out.flush();
    }
}
