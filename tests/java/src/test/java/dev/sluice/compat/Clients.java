package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/** Client factories and helpers shared by the tests. Every client talks only to the test broker. */
final class Clients {
    static final Duration OP_TIMEOUT = Duration.ofSeconds(30);

    private Clients() {
    }

    static Admin admin(SluiceBroker broker) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "sluice-compat-admin");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) OP_TIMEOUT.toMillis());
        return Admin.create(p);
    }

    /** A producer with the library's default settings (acks=all, idempotence on) plus overrides. */
    static KafkaProducer<byte[], byte[]> producer(SluiceBroker broker, Map<String, Object> overrides) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "sluice-compat-producer");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 60_000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30_000);
        p.putAll(overrides);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    static KafkaProducer<byte[], byte[]> producer(SluiceBroker broker) {
        return producer(broker, Map.of());
    }

    /** A consumer without group.id: usable only with assign()/seek(), never commits. */
    static KafkaConsumer<byte[], byte[]> consumer(SluiceBroker broker, Map<String, Object> overrides) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "sluice-compat-consumer");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) OP_TIMEOUT.toMillis());
        p.putAll(overrides);
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    static KafkaConsumer<byte[], byte[]> consumer(SluiceBroker broker) {
        return consumer(broker, Map.of());
    }

    static void createTopic(Admin admin, String name, int partitions, Map<String, String> configs)
            throws Exception {
        NewTopic t = new NewTopic(name, partitions, (short) 1).configs(configs);
        admin.createTopics(List.of(t)).all().get(OP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    }

    static void createTopic(SluiceBroker broker, String name, int partitions, Map<String, String> configs)
            throws Exception {
        try (Admin admin = admin(broker)) {
            createTopic(admin, name, partitions, configs);
        }
    }

    static List<TopicPartition> partitions(String topic, int n) {
        List<TopicPartition> tps = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            tps.add(new TopicPartition(topic, i));
        }
        return tps;
    }

    /**
     * Polls the assigned partitions (already positioned) until {@code expected} records arrived,
     * then checks that the consumer's positions equal the end offsets, so there are no more records
     * than expected. Fails on timeout.
     */
    static List<ConsumerRecord<byte[], byte[]>> pollExactly(KafkaConsumer<byte[], byte[]> consumer,
            int expected) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        long deadline = System.nanoTime() + OP_TIMEOUT.toNanos();
        while (out.size() < expected) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + OP_TIMEOUT + " with " + out.size() + " of " + expected
                        + " records; positions " + positions(consumer));
            }
            ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(200));
            batch.forEach(out::add);
        }
        assertEquals(expected, out.size(), "more records than expected");
        Collection<TopicPartition> assigned = consumer.assignment();
        Map<TopicPartition, Long> ends = consumer.endOffsets(assigned, OP_TIMEOUT);
        for (TopicPartition tp : assigned) {
            assertEquals(ends.get(tp).longValue(), consumer.position(tp, OP_TIMEOUT),
                    "position of " + tp + " after reading everything should equal its end offset");
        }
        return out;
    }

    private static Map<TopicPartition, Long> positions(KafkaConsumer<byte[], byte[]> consumer) {
        Map<TopicPartition, Long> m = new HashMap<>();
        for (TopicPartition tp : consumer.assignment()) {
            m.put(tp, consumer.position(tp, OP_TIMEOUT));
        }
        return m;
    }
}
