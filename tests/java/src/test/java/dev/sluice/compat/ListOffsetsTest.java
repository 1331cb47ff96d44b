package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** (e) ListOffsets: earliest, latest, by timestamp, max timestamp; via Admin and via the consumer. */
class ListOffsetsTest {
    @RegisterExtension
    static final SluiceBroker BROKER = new SluiceBroker();

    private static final long GET_MS = Clients.OP_TIMEOUT.toMillis();
    // In the past (the 4.x default message.timestamp.after.max.ms refuses timestamps > 1 h ahead).
    private static final long BASE = System.currentTimeMillis() - 3_600_000L;
    private static final int N = 10;
    private static final int MAX_AT = 6;

    /** Record i has timestamp BASE + 1000 i, except record MAX_AT, which has the largest, BASE + 50 000. */
    private static long ts(int i) {
        return i == MAX_AT ? BASE + 50_000 : BASE + 1000L * i;
    }

    private static ListOffsetsResultInfo list(Admin admin, TopicPartition tp, OffsetSpec spec) throws Exception {
        return admin.listOffsets(Map.of(tp, spec)).partitionResult(tp).get(GET_MS, TimeUnit.MILLISECONDS);
    }

    /**
     * @param oneBatch all records in one batch (the broker must look inside it for a timestamp), or
     *                 one batch per record
     */
    @ParameterizedTest(name = "oneBatch={0}")
    @ValueSource(booleans = {true, false})
    void earliestLatestForTimestampMaxTimestamp(boolean oneBatch) throws Exception {
        String topic = "list-offsets-" + (oneBatch ? "one-batch" : "many-batches");
        TopicPartition tp = new TopicPartition(topic, 0);
        Clients.createTopic(BROKER, topic, 1, Map.of());
        try (KafkaProducer<byte[], byte[]> producer = Clients.producer(BROKER,
                Map.of(ProducerConfig.LINGER_MS_CONFIG, oneBatch ? 20_000 : 0))) {
            var fs = new java.util.ArrayList<java.util.concurrent.Future<?>>();
            for (int i = 0; i < N; i++) {
                var f = producer.send(new ProducerRecord<>(topic, 0, ts(i), null, ("r" + i).getBytes()));
                if (!oneBatch) {
                    f.get(GET_MS, TimeUnit.MILLISECONDS);
                }
                fs.add(f);
            }
            producer.flush();
            for (var f : fs) {
                f.get(GET_MS, TimeUnit.MILLISECONDS);
            }
        }

        try (Admin admin = Clients.admin(BROKER)) {
            assertEquals(0L, list(admin, tp, OffsetSpec.earliest()).offset(), "earliest");
            assertEquals((long) N, list(admin, tp, OffsetSpec.latest()).offset(), "latest");

            // forTimestamp: the first offset whose timestamp >= target.
            Map<Long, Long> cases = new HashMap<>();
            cases.put(BASE - 1, 0L);
            cases.put(BASE, 0L);
            cases.put(BASE + 1, 1L);
            cases.put(BASE + 1500, 2L);
            cases.put(BASE + 5000, 5L);
            cases.put(BASE + 5001, (long) MAX_AT); // record 6 (the max) comes before 7, 8, 9
            cases.put(BASE + 9000, (long) MAX_AT);
            cases.put(BASE + 50_000, (long) MAX_AT);
            for (Map.Entry<Long, Long> c : cases.entrySet()) {
                ListOffsetsResultInfo r = list(admin, tp, OffsetSpec.forTimestamp(c.getKey()));
                long off = c.getValue();
                assertEquals(off, r.offset(), "forTimestamp(BASE + " + (c.getKey() - BASE) + ") offset");
                assertEquals(ts((int) off), r.timestamp(), "forTimestamp(BASE + " + (c.getKey() - BASE) + ") timestamp");
            }
            ListOffsetsResultInfo none = list(admin, tp, OffsetSpec.forTimestamp(BASE + 50_001));
            assertEquals(-1L, none.offset(), "no record at or after the timestamp");

            ListOffsetsResultInfo max = list(admin, tp, OffsetSpec.maxTimestamp());
            assertEquals((long) MAX_AT, max.offset(), "maxTimestamp offset");
            assertEquals(BASE + 50_000, max.timestamp(), "maxTimestamp timestamp");
        }

        // The consumer's own ListOffsets calls agree.
        try (KafkaConsumer<byte[], byte[]> consumer = Clients.consumer(BROKER)) {
            assertEquals(0L, consumer.beginningOffsets(List.of(tp), Clients.OP_TIMEOUT).get(tp));
            assertEquals((long) N, consumer.endOffsets(List.of(tp), Clients.OP_TIMEOUT).get(tp));
            OffsetAndTimestamp at = consumer.offsetsForTimes(Map.of(tp, BASE + 1500), Clients.OP_TIMEOUT).get(tp);
            assertEquals(2L, at.offset());
            assertEquals(ts(2), at.timestamp());
            assertNull(consumer.offsetsForTimes(Map.of(tp, BASE + 50_001), Clients.OP_TIMEOUT).get(tp),
                    "no offset for a timestamp after every record");
        }
    }

    @Test
    void emptyPartition() throws Exception {
        String topic = "list-offsets-empty";
        TopicPartition tp = new TopicPartition(topic, 0);
        Clients.createTopic(BROKER, topic, 1, Map.of());
        try (Admin admin = Clients.admin(BROKER)) {
            assertEquals(0L, list(admin, tp, OffsetSpec.earliest()).offset());
            assertEquals(0L, list(admin, tp, OffsetSpec.latest()).offset());
            assertEquals(-1L, list(admin, tp, OffsetSpec.forTimestamp(BASE)).offset());
            assertEquals(-1L, list(admin, tp, OffsetSpec.maxTimestamp()).offset());
        }
    }
}
