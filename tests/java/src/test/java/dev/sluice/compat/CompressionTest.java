package dev.sluice.compat;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** (c) Compressed batches from the Java producer round-trip through the broker. */
class CompressionTest {
    @RegisterExtension
    static final SluiceBroker BROKER = new SluiceBroker();

    private static final long GET_MS = Clients.OP_TIMEOUT.toMillis();

    private static String value(String codec, int i) {
        // Compressible but distinct per record.
        return codec + "-" + i + "-" + "lorem ipsum dolor sit amet ".repeat(1 + i % 7);
    }

    private static List<RecordMetadata> produce(String topic, String codec, int n, int from) throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Clients.producer(BROKER, Map.of(
                ProducerConfig.COMPRESSION_TYPE_CONFIG, codec,
                ProducerConfig.LINGER_MS_CONFIG, 20_000))) {
            for (int i = from; i < from + n; i++) {
                RecordHeaders h = new RecordHeaders();
                h.add("codec", codec.getBytes(UTF_8));
                h.add("i", Integer.toString(i).getBytes(UTF_8));
                fs.add(producer.send(new ProducerRecord<>(topic, 0, ("k" + i).getBytes(UTF_8),
                        value(codec, i).getBytes(UTF_8), h)));
            }
            producer.flush(); // long linger + flush: full multi-record batches
        }
        List<RecordMetadata> metas = new ArrayList<>();
        for (Future<RecordMetadata> f : fs) {
            metas.add(f.get(GET_MS, TimeUnit.MILLISECONDS));
        }
        return metas;
    }

    private static void checkRecord(ConsumerRecord<byte[], byte[]> r, String codec, int i) {
        assertEquals(i, r.offset(), codec + " record offset");
        assertEquals("k" + i, new String(r.key(), UTF_8), codec + " key at " + i);
        assertEquals(value(codec, i), new String(r.value(), UTF_8), codec + " value at " + i);
        assertEquals(codec, new String(r.headers().lastHeader("codec").value(), UTF_8));
        assertEquals(Integer.toString(i), new String(r.headers().lastHeader("i").value(), UTF_8));
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"gzip", "snappy", "lz4", "zstd"})
    void compressedProducerRoundTrip(String codec) throws Exception {
        String topic = "compressed-" + codec;
        Clients.createTopic(BROKER, topic, 1, Map.of());
        int n = 1000; // ~30 KiB uncompressed per batch of 16 KiB: several batches
        List<RecordMetadata> metas = produce(topic, codec, n, 0);
        for (int i = 0; i < n; i++) {
            assertEquals(i, metas.get(i).offset(), codec + ": offset of record " + i);
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> consumer = Clients.consumer(BROKER)) {
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            List<ConsumerRecord<byte[], byte[]>> got = Clients.pollExactly(consumer, n);
            for (int i = 0; i < n; i++) {
                checkRecord(got.get(i), codec, i);
            }
            // A seek into the middle of a compressed batch.
            consumer.seek(tp, 517);
            got = Clients.pollExactly(consumer, n - 517);
            for (int j = 0; j < got.size(); j++) {
                checkRecord(got.get(j), codec, 517 + j);
            }
        }
    }

    /** Batches of every codec, and uncompressed ones, interleaved in one partition. */
    @Test
    void mixedCodecsInOnePartition() throws Exception {
        String topic = "compressed-mixed";
        Clients.createTopic(BROKER, topic, 1, Map.of());
        String[] codecs = {"none", "gzip", "snappy", "lz4", "zstd", "none", "zstd", "gzip"};
        int per = 40;
        for (int c = 0; c < codecs.length; c++) {
            List<RecordMetadata> metas = produce(topic, codecs[c], per, c * per);
            assertEquals((long) c * per, metas.get(0).offset(), "first offset of the " + codecs[c] + " run");
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> consumer = Clients.consumer(BROKER)) {
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            List<ConsumerRecord<byte[], byte[]>> got = Clients.pollExactly(consumer, codecs.length * per);
            for (int i = 0; i < got.size(); i++) {
                checkRecord(got.get(i), codecs[i / per], i);
            }
        }
    }
}
