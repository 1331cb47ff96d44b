package dev.sluice.compat;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.utils.Utils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Producing with the default KafkaProducer and reading back with an assign()-mode KafkaConsumer. */
class ProduceConsumeTest {
    @RegisterExtension
    static final SluiceBroker BROKER = new SluiceBroker();

    private static final long GET_MS = Clients.OP_TIMEOUT.toMillis();

    private static byte[] b(String s) {
        return s.getBytes(UTF_8);
    }

    private static String s(byte[] b) {
        return b == null ? null : new String(b, UTF_8);
    }

    /**
     * (a) Default producer (acks=all, enable.idempotence=true: InitProducerId + sequence numbers).
     * Keyed records land on murmur2(key) % 6, which is only what the client does if the broker's
     * Metadata reported all 6 partitions; every future completes; offsets per partition are
     * 0,1,2,... in send order.
     */
    @Test
    void defaultProducerKeyedRecordsMurmur2PartitionsAndContiguousOffsets() throws Exception {
        String topic = "produce-keyed";
        int partitions = 6;
        Clients.createTopic(BROKER, topic, partitions, Map.of());
        int n = 300;
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Clients.producer(BROKER)) {
            for (int i = 0; i < n; i++) {
                futures.add(producer.send(new ProducerRecord<>(topic, b("key" + i), b("value-" + i))));
            }
            futures.add(producer.send(new ProducerRecord<>(topic, b(""), b("empty-key"))));
            producer.flush();
        }
        List<RecordMetadata> metas = new ArrayList<>();
        for (Future<RecordMetadata> f : futures) {
            metas.add(f.get(GET_MS, TimeUnit.MILLISECONDS));
        }

        // Reference vector (SEMANTICS.md P2, computed by the real partitioner): key0..key9 with 6 partitions.
        int[] expected = {4, 2, 5, 1, 3, 1, 0, 3, 1, 5};
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], metas.get(i).partition(), "partition of key" + i);
        }
        assertEquals(3, metas.get(n).partition(), "zero-length key hashes to murmur2 275646681 % 6 = 3");
        for (int i = 0; i < n; i++) {
            int want = Utils.toPositive(Utils.murmur2(b("key" + i))) % partitions;
            assertEquals(want, metas.get(i).partition(), "partition of key" + i);
            assertEquals(topic, metas.get(i).topic());
        }

        Map<Integer, Long> next = new HashMap<>();
        for (RecordMetadata m : metas) {
            assertTrue(m.hasOffset(), "acks=all metadata must carry an offset");
            long want = next.getOrDefault(m.partition(), 0L);
            assertEquals(want, m.offset(), "offset in partition " + m.partition() + " (send order)");
            next.put(m.partition(), want + 1);
        }
        assertEquals(partitions, next.size(), "300 distinct keys should reach every partition");
    }

    /**
     * (b) Everything produced comes back through assign()+seekToBeginning() in per-partition order
     * with the same keys, values (including null and empty), headers (including duplicate keys and
     * null values), timestamps and offsets.
     */
    @Test
    void consumerReadsBackKeysValuesHeadersInOrder() throws Exception {
        String topic = "consume-roundtrip";
        int partitions = 3;
        Clients.createTopic(BROKER, topic, partitions, Map.of());

        List<ProducerRecord<byte[], byte[]>> sent = new ArrayList<>();
        int n = 150;
        for (int i = 0; i < n; i++) {
            RecordHeaders h = new RecordHeaders();
            h.add("seq", b(Integer.toString(i)));
            h.add("dup", b("first"));
            h.add("dup", b("second"));
            h.add("nullv", null);
            byte[] value = (i % 10 == 3) ? null : (i % 10 == 4) ? new byte[0] : b("v".repeat(i % 17) + i);
            byte[] key = (i % 10 == 5) ? null : b("k" + i);
            // Explicit partitions for null keys so the expected placement is known.
            Integer partition = key == null ? Integer.valueOf(i % partitions) : null;
            sent.add(new ProducerRecord<>(topic, partition, key, value, h));
        }
        List<RecordMetadata> metas = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Clients.producer(BROKER)) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (ProducerRecord<byte[], byte[]> r : sent) {
                fs.add(producer.send(r));
            }
            for (Future<RecordMetadata> f : fs) {
                metas.add(f.get(GET_MS, TimeUnit.MILLISECONDS));
            }
        }

        List<TopicPartition> tps = Clients.partitions(topic, partitions);
        List<ConsumerRecord<byte[], byte[]>> got;
        try (KafkaConsumer<byte[], byte[]> consumer = Clients.consumer(BROKER)) {
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            got = Clients.pollExactly(consumer, n);
        }

        // Expected per-partition sequences in send order.
        Map<Integer, List<Integer>> expectedIdx = new HashMap<>();
        for (int i = 0; i < n; i++) {
            expectedIdx.computeIfAbsent(metas.get(i).partition(), k -> new ArrayList<>()).add(i);
        }
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> byPartition = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : got) {
            assertEquals(topic, r.topic());
            byPartition.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
        }
        assertEquals(expectedIdx.keySet(), byPartition.keySet(), "partitions with data");
        for (Map.Entry<Integer, List<Integer>> e : expectedIdx.entrySet()) {
            List<ConsumerRecord<byte[], byte[]>> recs = byPartition.get(e.getKey());
            assertEquals(e.getValue().size(), recs.size(), "record count in partition " + e.getKey());
            for (int j = 0; j < recs.size(); j++) {
                int i = e.getValue().get(j);
                ProducerRecord<byte[], byte[]> want = sent.get(i);
                ConsumerRecord<byte[], byte[]> have = recs.get(j);
                String where = "record " + i + " (partition " + e.getKey() + ", #" + j + ")";
                assertEquals(j, have.offset(), where + " offset");
                assertEquals(metas.get(i).offset(), have.offset(), where + " offset vs producer metadata");
                assertArrayEquals(want.key(), have.key(), where + " key");
                if (want.value() == null) {
                    assertNull(have.value(), where + " value should be null");
                } else {
                    assertArrayEquals(want.value(), have.value(), where + " value");
                }
                assertEquals(TimestampType.CREATE_TIME, have.timestampType(), where + " timestamp type");
                assertEquals(metas.get(i).timestamp(), have.timestamp(), where + " timestamp");
                Header[] hw = want.headers().toArray();
                Header[] hh = have.headers().toArray();
                assertEquals(hw.length, hh.length, where + " header count");
                for (int k = 0; k < hw.length; k++) {
                    assertEquals(hw[k].key(), hh[k].key(), where + " header " + k + " key");
                    if (hw[k].value() == null) {
                        assertNull(hh[k].value(), where + " header " + k + " value should be null");
                    } else {
                        assertArrayEquals(hw[k].value(), hh[k].value(), where + " header " + k + " value");
                    }
                }
                assertEquals("second", s(have.headers().lastHeader("dup").value()));
            }
        }
    }

    /**
     * Many small batches pipelined on one connection (max.in.flight=5, the default) must be
     * appended in the order they were sent: with idempotence on, an out-of-order append shows up as
     * OUT_OF_ORDER_SEQUENCE_NUMBER and the client's recovery reorders records; with idempotence off
     * (acks=1, no retries needed) as records stored out of order. Repeated because the race does
     * not show on every run.
     */
    @ParameterizedTest(name = "idempotence={0} run={1}")
    @org.junit.jupiter.params.provider.CsvSource({"true,1", "true,2", "true,3", "false,1", "false,2", "false,3"})
    void pipelinedBatchesOnOneConnectionKeepOrder(boolean idempotence, int run) throws Exception {
        String topic = "inflight-" + idempotence + "-" + run;
        Clients.createTopic(BROKER, topic, 1, Map.of());
        int n = 3000;
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ProducerConfig.BATCH_SIZE_CONFIG, 256);
        cfg.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        cfg.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5);
        if (!idempotence) {
            cfg.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
            cfg.put(ProducerConfig.ACKS_CONFIG, "1");
        }
        try (KafkaProducer<byte[], byte[]> producer = Clients.producer(BROKER, cfg)) {
            for (int i = 0; i < n; i++) {
                fs.add(producer.send(new ProducerRecord<>(topic, 0, null, b(String.format("%08d", i)))));
            }
        }
        for (int i = 0; i < n; i++) {
            assertEquals(i, fs.get(i).get(GET_MS, TimeUnit.MILLISECONDS).offset(), "offset of record " + i);
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> consumer = Clients.consumer(BROKER)) {
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            List<ConsumerRecord<byte[], byte[]>> got = Clients.pollExactly(consumer, n);
            for (int i = 0; i < n; i++) {
                assertEquals(i, got.get(i).offset());
                assertEquals(String.format("%08d", i), s(got.get(i).value()), "record at offset " + i);
            }
        }
    }

    /** Two idempotent producers (two producer ids) interleaving on one partition. */
    @Test
    void twoIdempotentProducersOnOnePartition() throws Exception {
        String topic = "two-producers";
        Clients.createTopic(BROKER, topic, 1, Map.of());
        int n = 200;
        List<Long> offsets = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> p1 = Clients.producer(BROKER);
             KafkaProducer<byte[], byte[]> p2 = Clients.producer(BROKER)) {
            for (int i = 0; i < n; i++) {
                KafkaProducer<byte[], byte[]> p = (i % 2 == 0) ? p1 : p2;
                offsets.add(p.send(new ProducerRecord<>(topic, 0, null, b("r" + i)))
                        .get(GET_MS, TimeUnit.MILLISECONDS).offset());
            }
        }
        for (int i = 0; i < n; i++) {
            assertEquals(i, offsets.get(i).longValue(), "synchronous sends get consecutive offsets");
        }
    }

    /** acks=0 and acks=1 (idempotence off) also deliver; acks=0 metadata has no offset. */
    @ParameterizedTest(name = "acks={0}")
    @ValueSource(strings = {"0", "1"})
    void nonIdempotentAcks(String acks) throws Exception {
        String topic = "acks-" + acks;
        Clients.createTopic(BROKER, topic, 1, Map.of());
        int n = 50;
        List<RecordMetadata> metas = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Clients.producer(BROKER, Map.of(
                ProducerConfig.ACKS_CONFIG, acks,
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false))) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                fs.add(producer.send(new ProducerRecord<>(topic, 0, b("k" + i), b("v" + i))));
            }
            for (Future<RecordMetadata> f : fs) {
                metas.add(f.get(GET_MS, TimeUnit.MILLISECONDS));
            }
        }
        for (int i = 0; i < n; i++) {
            if (acks.equals("0")) {
                assertEquals(-1L, metas.get(i).offset(), "acks=0 reports no offset");
            } else {
                assertEquals(i, metas.get(i).offset());
            }
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> consumer = Clients.consumer(BROKER)) {
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            List<ConsumerRecord<byte[], byte[]>> got = Clients.pollExactly(consumer, n);
            for (int i = 0; i < n; i++) {
                assertEquals("k" + i, s(got.get(i).key()));
                assertEquals("v" + i, s(got.get(i).value()));
            }
        }
    }

    /**
     * A seek into the middle of a multi-record batch: the broker returns the whole batch (F3) and
     * the client drops the records before the seek offset.
     */
    @Test
    void seekIntoTheMiddleOfABatch() throws Exception {
        String topic = "seek-middle";
        Clients.createTopic(BROKER, topic, 1, Map.of());
        int n = 20;
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = Clients.producer(BROKER, Map.of(
                ProducerConfig.LINGER_MS_CONFIG, 20_000))) {
            for (int i = 0; i < n; i++) {
                fs.add(producer.send(new ProducerRecord<>(topic, 0, null, b("m" + i))));
            }
            producer.flush(); // one batch: linger is long, flush sends everything at once
        }
        for (int i = 0; i < n; i++) {
            assertEquals(i, fs.get(i).get(GET_MS, TimeUnit.MILLISECONDS).offset());
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> consumer = Clients.consumer(BROKER)) {
            consumer.assign(List.of(tp));
            consumer.seek(tp, 7);
            List<ConsumerRecord<byte[], byte[]>> got = Clients.pollExactly(consumer, n - 7);
            for (int j = 0; j < got.size(); j++) {
                assertEquals(7 + j, got.get(j).offset());
                assertEquals("m" + (7 + j), s(got.get(j).value()));
            }
        }
    }

    /**
     * Without a seek the consumer positions itself with ListOffsets according to auto.offset.reset:
     * earliest reads everything; latest reads only what is produced after its position was set.
     */
    @Test
    void autoOffsetResetEarliestAndLatest() throws Exception {
        String topic = "auto-reset";
        Clients.createTopic(BROKER, topic, 1, Map.of());
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaProducer<byte[], byte[]> producer = Clients.producer(BROKER)) {
            for (int i = 0; i < 10; i++) {
                producer.send(new ProducerRecord<>(topic, 0, null, b("old" + i))).get(GET_MS, TimeUnit.MILLISECONDS);
            }
            try (KafkaConsumer<byte[], byte[]> earliest = Clients.consumer(BROKER,
                    Map.of(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest"));
                 KafkaConsumer<byte[], byte[]> latest = Clients.consumer(BROKER,
                    Map.of(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest"))) {
                earliest.assign(List.of(tp));
                latest.assign(List.of(tp));
                assertEquals(10L, latest.position(tp, Clients.OP_TIMEOUT), "latest resets to the end");
                assertEquals(0L, earliest.position(tp, Clients.OP_TIMEOUT), "earliest resets to 0");
                for (int i = 0; i < 5; i++) {
                    producer.send(new ProducerRecord<>(topic, 0, null, b("new" + i))).get(GET_MS, TimeUnit.MILLISECONDS);
                }
                List<ConsumerRecord<byte[], byte[]>> e = Clients.pollExactly(earliest, 15);
                assertEquals("old0", s(e.get(0).value()));
                assertEquals("new4", s(e.get(14).value()));
                List<ConsumerRecord<byte[], byte[]>> l = Clients.pollExactly(latest, 5);
                assertEquals(10L, l.get(0).offset());
                assertEquals("new0", s(l.get(0).value()));
            }
        }
    }

    /** A record produced while the consumer waits in a long-poll fetch is delivered. */
    @Test
    void consumerWaitingOnEmptyPartitionGetsNewRecord() throws Exception {
        String topic = "long-poll";
        Clients.createTopic(BROKER, topic, 1, Map.of());
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> consumer = Clients.consumer(BROKER);
             KafkaProducer<byte[], byte[]> producer = Clients.producer(BROKER)) {
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            assertTrue(consumer.poll(java.time.Duration.ofMillis(300)).isEmpty(), "empty topic");
            producer.send(new ProducerRecord<>(topic, 0, b("k"), b("late"))).get(GET_MS, TimeUnit.MILLISECONDS);
            List<ConsumerRecord<byte[], byte[]>> got = Clients.pollExactly(consumer, 1);
            assertEquals("late", s(got.get(0).value()));
            assertEquals(0L, got.get(0).offset());
        }
    }
}
