package dev.sluice.bench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * One member of a classic consumer group, driven over stdin/stdout by bench/run.
 *
 * <pre>GroupMember BOOTSTRAP TOPIC GROUP SESSION_TIMEOUT_MS HEARTBEAT_INTERVAL_MS</pre>
 *
 * Prints {@code ready} once the client is built, then waits for a line {@code go} on stdin
 * before it subscribes (so JVM start-up is not part of the measured time). Prints
 * {@code assigned GENERATION WALL_MS P,P,...} after each assignment and {@code revoked WALL_MS}
 * before each revocation. End of stdin (or a line {@code stop}) closes it cleanly; bench/run
 * kills it with SIGKILL to simulate a crashed member. Eager range assignment.
 */
public final class GroupMember {
    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: GroupMember BOOTSTRAP TOPIC GROUP SESSION_TIMEOUT_MS HEARTBEAT_INTERVAL_MS");
            System.exit(2);
        }
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, args[2]);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, args[3]);
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, args[4]);
        p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, RangeAssignor.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        System.out.println("ready");
        System.out.flush();

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line = in.readLine();
        if (line == null || !line.trim().equals("go")) {
            consumer.close();
            return;
        }
        CountDownLatch stop = new CountDownLatch(1);
        Thread watcher = new Thread(() -> {
            try {
                String l;
                while ((l = in.readLine()) != null && !l.trim().equals("stop")) {
                    // ignore anything else
                }
            } catch (Exception ignored) {
                // treat as end of input
            }
            stop.countDown();
            consumer.wakeup();
        }, "stdin-watcher");
        watcher.setDaemon(true);
        watcher.start();

        consumer.subscribe(List.of(args[1]), new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                System.out.println("revoked " + System.currentTimeMillis());
                System.out.flush();
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                String ps = partitions.stream().map(tp -> Integer.toString(tp.partition())).sorted()
                        .collect(Collectors.joining(","));
                System.out.println("assigned " + consumer.groupMetadata().generationId() + " "
                        + System.currentTimeMillis() + " " + (ps.isEmpty() ? "-" : ps));
                System.out.flush();
            }
        });
        try {
            while (stop.getCount() > 0) consumer.poll(Duration.ofMillis(200));
        } catch (WakeupException e) {
            // stop requested
        } finally {
            consumer.close();
        }
    }
}
