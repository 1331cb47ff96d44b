package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** (f) max.message.bytes enforcement, and records larger than the consumer's fetch limits. */
class LimitsTest {
    @RegisterExtension
    static final SluiceBroker BROKER = new SluiceBroker();

    private static final long GET_MS = Clients.OP_TIMEOUT.toMillis();

    private static byte[] filled(int size, byte b) {
        byte[] a = new byte[size];
        Arrays.fill(a, b);
        return a;
    }

    private static void assertTooLarge(Future<RecordMetadata> f) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(GET_MS, TimeUnit.MILLISECONDS));
        assertInstanceOf(RecordTooLargeException.class, e.getCause(), "cause of " + e);
    }

    private static List<ConsumerRecord<byte[], byte[]>> readAll(String topic, int expected, Map<String, Object> cfg) {
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> consumer = Clients.consumer(BROKER, cfg)) {
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            return Clients.pollExactly(consumer, expected);
        }
    }

    /**
     * A topic-level max.message.bytes of 1024: a 4000-byte record (under the producer's own 1 MiB
     * max.request.size, so it is sent) is refused with MESSAGE_TOO_LARGE = RecordTooLargeException;
     * nothing is appended, and the same idempotent producer can go on sending small records.
     */
    @Test
    void topicMaxMessageBytesRefusesLargeRecord() throws Exception {
        String topic = "limits-small";
        Clients.createTopic(BROKER, topic, 1, Map.of("max.message.bytes", "1024"));
        try (KafkaProducer<byte[], byte[]> producer = Clients.producer(BROKER)) {
            assertTooLarge(producer.send(new ProducerRecord<>(topic, 0, null, filled(4000, (byte) 'x'))));
            RecordMetadata ok = producer.send(new ProducerRecord<>(topic, 0, null, filled(100, (byte) 'y')))
                    .get(GET_MS, TimeUnit.MILLISECONDS);
            assertEquals(0L, ok.offset(), "the refused record must not have been appended");
        }
        List<ConsumerRecord<byte[], byte[]>> got = readAll(topic, 1, Map.of());
        assertArrayEquals(filled(100, (byte) 'y'), got.get(0).value());
    }

    /** The broker-wide default message.max.bytes (1048588) applies to a topic without its own limit. */
    @Test
    void brokerDefaultMaxMessageBytesRefusesTwoMebibytes() throws Exception {
        String topic = "limits-default";
        Clients.createTopic(BROKER, topic, 1, Map.of());
        try (KafkaProducer<byte[], byte[]> producer = Clients.producer(BROKER,
                Map.of(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 4 << 20))) {
            assertTooLarge(producer.send(new ProducerRecord<>(topic, 0, null, filled(2 << 20, (byte) 'z'))));
        }
    }

    /**
     * A 2 MiB record, allowed by the topic, is delivered to a consumer whose fetch limits are 1 MiB:
     * the first batch is returned whole even when it exceeds them (KIP-74).
     */
    @Test
    void recordLargerThanFetchLimitsIsStillDelivered() throws Exception {
        String topic = "limits-big";
        Clients.createTopic(BROKER, topic, 1, Map.of("max.message.bytes", "3000000"));
        byte[] big = filled(2 << 20, (byte) 'b');
        try (KafkaProducer<byte[], byte[]> producer = Clients.producer(BROKER,
                Map.of(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 3_100_000))) {
            assertEquals(0L, producer.send(new ProducerRecord<>(topic, 0, null, big)).get(GET_MS, TimeUnit.MILLISECONDS).offset());
            assertEquals(1L, producer.send(new ProducerRecord<>(topic, 0, null, filled(10, (byte) 's')))
                    .get(GET_MS, TimeUnit.MILLISECONDS).offset());
        }
        List<ConsumerRecord<byte[], byte[]>> got = readAll(topic, 2, Map.of(
                ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 1 << 20,
                ConsumerConfig.FETCH_MAX_BYTES_CONFIG, 1 << 20));
        assertArrayEquals(big, got.get(0).value());
        assertArrayEquals(filled(10, (byte) 's'), got.get(1).value());
    }
}
