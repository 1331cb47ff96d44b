package dev.sluice.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * End-to-end latency at a fixed rate: a producer paced at RATE records/s for SECONDS, and in
 * the same JVM a consumer assigned to every partition of TOPIC from its end. Each record carries
 * the producer's System.nanoTime() at send in its first 8 bytes; end-to-end latency is the
 * consumer's nanoTime at receipt minus that. Acknowledgement latency (send to callback) is
 * measured too. Records sent during the first WARMUP seconds are not counted.
 *
 * <pre>PacedLatency BOOTSTRAP TOPIC RATE SECONDS RECORD_BYTES [WARMUP_SECONDS]</pre>
 *
 * Prints progress on stderr each second and one JSON object on stdout. Producer: acks=all and
 * otherwise the client's defaults (linger.ms 5, batch.size 16384), the settings
 * ProducerPerformance runs with, so that a rate derived from its maximum means the same here.
 * Consumer: fetch.min.bytes=1, the client's defaults otherwise.
 */
public final class PacedLatency {
    public static void main(String[] args) throws Exception {
        if (args.length < 5) {
            System.err.println("usage: PacedLatency BOOTSTRAP TOPIC RATE SECONDS RECORD_BYTES [WARMUP_SECONDS]");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        double rate = Double.parseDouble(args[2]);
        double seconds = Double.parseDouble(args[3]);
        int size = Integer.parseInt(args[4]);
        double warmup = args.length > 5 ? Double.parseDouble(args[5]) : 0;
        long total = (long) Math.ceil(rate * seconds);
        long warmupRecords = (long) Math.ceil(rate * warmup);

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.FETCH_MIN_BYTES_CONFIG, "1");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest");
        KafkaConsumer<byte[], byte[]> consumer =
                new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        List<TopicPartition> parts = new ArrayList<>();
        for (PartitionInfo p : consumer.partitionsFor(topic, Duration.ofSeconds(30))) {
            parts.add(new TopicPartition(topic, p.partition()));
        }
        consumer.assign(parts);
        consumer.seekToEnd(parts);
        for (TopicPartition tp : parts) {
            consumer.position(tp, Duration.ofSeconds(30)); // resolve now, not after the first send
        }

        long[] e2e = new long[(int) total];
        long[] ack = new long[(int) total];
        AtomicLong acked = new AtomicLong();
        AtomicLong failed = new AtomicLong();
        AtomicLong producedDone = new AtomicLong(-1); // records sent, once the producer finished
        long[] received = {0};
        CountDownLatch consumerDone = new CountDownLatch(1);
        Thread reader = new Thread(() -> {
            try {
                long idleSince = System.nanoTime();
                while (true) {
                    long doneAt = producedDone.get();
                    if (doneAt >= 0 && received[0] >= doneAt) break;
                    var records = consumer.poll(Duration.ofMillis(100));
                    long now = System.nanoTime();
                    if (records.isEmpty()) {
                        if (doneAt >= 0 && now - idleSince > 30_000_000_000L) {
                            System.err.printf("consumer: nothing for 30 s with %d of %d received%n", received[0], doneAt);
                            break;
                        }
                        continue;
                    }
                    idleSince = now;
                    for (ConsumerRecord<byte[], byte[]> r : records) {
                        byte[] v = r.value();
                        long seq = readLong(v, 8);
                        if (seq >= 0 && seq < total) e2e[(int) seq] = now - readLong(v, 0);
                        received[0]++;
                    }
                }
            } finally {
                consumer.close();
                consumerDone.countDown();
            }
        }, "paced-consumer");
        reader.start();

        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer());
        long start = System.nanoTime();
        long nextReport = start + 1_000_000_000L;
        double interval = 1e9 / rate;
        for (long i = 0; i < total; i++) {
            long target = start + (long) (i * interval);
            long now = System.nanoTime();
            if (target - now > 20_000) LockSupport.parkNanos(target - now);
            byte[] value = new byte[size];
            long sent = System.nanoTime();
            writeLong(value, 0, sent);
            writeLong(value, 8, i);
            final int idx = (int) i;
            producer.send(new ProducerRecord<>(topic, value), (md, ex) -> {
                if (ex != null) {
                    failed.incrementAndGet();
                } else {
                    ack[idx] = System.nanoTime() - sent;
                    acked.incrementAndGet();
                }
            });
            if (sent > nextReport) {
                System.err.printf("sent %d of %d, acknowledged %d, received %d%n", i + 1, total, acked.get(), received[0]);
                nextReport += 1_000_000_000L;
            }
        }
        producer.flush();
        double sendSeconds = (System.nanoTime() - start) / 1e9;
        producer.close();
        producedDone.set(total - failed.get());
        consumerDone.await();

        int from = (int) Math.min(warmupRecords, total);
        System.out.printf(Locale.ROOT,
                "{\"rate\": %.1f, \"achieved_rate\": %.1f, \"sent\": %d, \"acked\": %d, \"failed\": %d, \"received\": %d, "
                        + "\"counted\": %d, \"record_bytes\": %d, \"e2e_ms\": %s, \"ack_ms\": %s}%n",
                rate, total / sendSeconds, total, acked.get(), failed.get(), received[0], total - from, size,
                percentiles(e2e, from), percentiles(ack, from));
        if (failed.get() > 0 || received[0] < total) System.exit(1);
    }

    private static String percentiles(long[] values, int from) {
        long[] v = Arrays.stream(values, from, values.length).filter(x -> x > 0).sorted().toArray();
        if (v.length == 0) return "null";
        return String.format(Locale.ROOT, "{\"p50\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f, \"n\": %d}",
                at(v, 0.5), at(v, 0.99), at(v, 0.999), v[v.length - 1] / 1e6, v.length);
    }

    /** The nearest-rank percentile in milliseconds. */
    private static double at(long[] sorted, double q) {
        int i = (int) Math.ceil(q * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))] / 1e6;
    }

    private static void writeLong(byte[] b, int at, long v) {
        for (int i = 7; i >= 0; i--) {
            b[at + i] = (byte) v;
            v >>>= 8;
        }
    }

    private static long readLong(byte[] b, int at) {
        long v = 0;
        for (int i = 0; i < 8; i++) v = (v << 8) | (b[at + i] & 0xff);
        return v;
    }
}
