package dev.sluice.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.InvalidReplicationFactorException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** (d) The Admin client: topics, partitions, configs, cluster. */
class AdminTest {
    @RegisterExtension
    static final SluiceBroker BROKER = new SluiceBroker();

    private static final long GET_MS = Clients.OP_TIMEOUT.toMillis();
    private Admin admin;

    @BeforeEach
    void open() {
        admin = Clients.admin(BROKER);
    }

    @AfterEach
    void close() {
        admin.close();
    }

    private static <T> T get(KafkaFuture<T> f) throws Exception {
        return f.get(GET_MS, TimeUnit.MILLISECONDS);
    }

    /** The cause of the failed future, which must be of the given type. */
    private static <E extends Throwable> E failsWith(Class<E> type, KafkaFuture<?> f) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(GET_MS, TimeUnit.MILLISECONDS));
        return assertInstanceOf(type, e.getCause(), "cause of " + e);
    }

    private Set<String> topicNames() throws Exception {
        return get(admin.listTopics(new ListTopicsOptions().listInternal(true)).names());
    }

    private TopicDescription describe(String topic) throws Exception {
        return get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
    }

    private Map<String, ConfigEntry> topicConfig(String topic) throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config c = get(admin.describeConfigs(List.of(r)).all()).get(r);
        Map<String, ConfigEntry> m = new java.util.HashMap<>();
        for (ConfigEntry e : c.entries()) {
            m.put(e.name(), e);
        }
        return m;
    }

    private Node theNode() throws Exception {
        Collection<Node> nodes = get(admin.describeCluster().nodes());
        assertEquals(1, nodes.size(), "one broker: " + nodes);
        return nodes.iterator().next();
    }

    @Test
    void describeCluster() throws Exception {
        DescribeClusterResult r = admin.describeCluster();
        Node node = theNode();
        String[] hostPort = BROKER.bootstrap().split(":");
        assertEquals(hostPort[0], node.host());
        assertEquals(Integer.parseInt(hostPort[1]), node.port());
        assertEquals(1, node.id(), "default --node-id is 1");
        String clusterId = get(r.clusterId());
        assertNotNull(clusterId);
        assertFalse(clusterId.isEmpty());
        assertEquals(node.id(), get(r.controller()).id(), "the only node is the controller");
    }

    @Test
    void createListDescribeDeleteTopic() throws Exception {
        String topic = "admin-lifecycle";
        CreateTopicsResult created = admin.createTopics(List.of(
                new NewTopic(topic, 3, (short) 1).configs(Map.of("retention.ms", "3600000"))));
        get(created.all());
        // CreateTopics v5+ returns the topic's partition count, replication factor and configs.
        assertEquals(3, get(created.numPartitions(topic)));
        assertEquals(1, get(created.replicationFactor(topic)));
        Uuid id = get(created.topicId(topic));
        assertNotEquals(Uuid.ZERO_UUID, id, "CreateTopics should return a topic id");
        Config createdConfig = get(created.config(topic));
        assertEquals("3600000", createdConfig.get("retention.ms").value());

        assertTrue(topicNames().contains(topic), "listTopics after create");

        Node node = theNode();
        TopicDescription d = describe(topic);
        assertEquals(topic, d.name());
        assertFalse(d.isInternal());
        assertEquals(id, d.topicId(), "describeTopics topic id = CreateTopics topic id");
        assertEquals(3, d.partitions().size());
        for (int i = 0; i < 3; i++) {
            TopicPartitionInfo p = d.partitions().get(i);
            assertEquals(i, p.partition());
            assertNotNull(p.leader(), "partition " + i + " has a leader");
            assertEquals(node.id(), p.leader().id(), "leader of partition " + i);
            assertEquals(List.of(node.id()), p.replicas().stream().map(Node::id).toList(), "replicas of " + i);
            assertEquals(List.of(node.id()), p.isr().stream().map(Node::id).toList(), "isr of " + i);
        }

        get(admin.deleteTopics(List.of(topic)).all());
        assertFalse(topicNames().contains(topic), "listTopics after delete");
        failsWith(UnknownTopicOrPartitionException.class, admin.describeTopics(List.of(topic)).allTopicNames());
        failsWith(UnknownTopicOrPartitionException.class, admin.deleteTopics(List.of(topic)).all());
    }

    @Test
    void recreatedTopicStartsEmpty() throws Exception {
        String topic = "admin-recreate";
        Clients.createTopic(admin, topic, 1, Map.of());
        try (KafkaProducer<byte[], byte[]> p = Clients.producer(BROKER)) {
            for (int i = 0; i < 3; i++) {
                p.send(new ProducerRecord<>(topic, 0, null, new byte[] {1})).get(GET_MS, TimeUnit.MILLISECONDS);
            }
        }
        Uuid first = describe(topic).topicId();
        get(admin.deleteTopics(List.of(topic)).all());
        Clients.createTopic(admin, topic, 1, Map.of());
        assertNotEquals(first, describe(topic).topicId(), "a re-created topic gets a new topic id");
        org.apache.kafka.common.TopicPartition tp = new org.apache.kafka.common.TopicPartition(topic, 0);
        var offsets = get(admin.listOffsets(Map.of(tp, org.apache.kafka.clients.admin.OffsetSpec.latest())).all());
        assertEquals(0L, offsets.get(tp).offset(), "the old topic's records are gone");
        try (KafkaProducer<byte[], byte[]> p = Clients.producer(BROKER)) {
            assertEquals(0L, p.send(new ProducerRecord<>(topic, 0, null, new byte[] {2}))
                    .get(GET_MS, TimeUnit.MILLISECONDS).offset());
        }
    }

    @Test
    void createTopicErrors() throws Exception {
        InvalidReplicationFactorException rf = failsWith(InvalidReplicationFactorException.class,
                admin.createTopics(List.of(new NewTopic("admin-rf3", 1, (short) 3))).all());
        assertNotNull(rf.getMessage());
        assertFalse(topicNames().contains("admin-rf3"));

        Clients.createTopic(admin, "admin-exists", 1, Map.of());
        failsWith(TopicExistsException.class,
                admin.createTopics(List.of(new NewTopic("admin-exists", 1, (short) 1))).all());

        failsWith(InvalidTopicException.class,
                admin.createTopics(List.of(new NewTopic("bad/name", 1, (short) 1))).all());
        failsWith(InvalidConfigurationException.class, admin.createTopics(List.of(
                new NewTopic("admin-badconfig", 1, (short) 1).configs(Map.of("no.such.config", "1")))).all());
        assertFalse(topicNames().contains("admin-badconfig"));
    }

    @Test
    void createTopicValidateOnlyAndDefaults() throws Exception {
        get(admin.createTopics(List.of(new NewTopic("admin-validate", 4, (short) 1)),
                new CreateTopicsOptions().validateOnly(true)).all());
        assertFalse(topicNames().contains("admin-validate"), "validateOnly must not create the topic");

        // No partition count / replication factor: the broker's defaults (num.partitions=1, rf 1).
        String topic = "admin-defaults";
        get(admin.createTopics(List.of(new NewTopic(topic, Optional.empty(), Optional.empty()))).all());
        TopicDescription d = describe(topic);
        assertEquals(1, d.partitions().size());
        assertEquals(1, d.partitions().get(0).replicas().size());
    }

    @Test
    void createPartitions() throws Exception {
        String topic = "admin-grow";
        Clients.createTopic(admin, topic, 2, Map.of());
        get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());
        TopicDescription d = describe(topic);
        assertEquals(5, d.partitions().size());
        int node = theNode().id();
        for (TopicPartitionInfo p : d.partitions()) {
            assertEquals(node, p.leader().id(), "leader of new partition " + p.partition());
        }
        // The new partitions are usable at once.
        try (KafkaProducer<byte[], byte[]> p = Clients.producer(BROKER)) {
            assertEquals(0L, p.send(new ProducerRecord<>(topic, 4, null, new byte[] {1}))
                    .get(GET_MS, TimeUnit.MILLISECONDS).offset());
        }
        failsWith(InvalidPartitionsException.class,
                admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(3))).all());
        failsWith(InvalidPartitionsException.class,
                admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());
        failsWith(UnknownTopicOrPartitionException.class,
                admin.createPartitions(Map.of("admin-no-such-topic", NewPartitions.increaseTo(5))).all());
        assertEquals(5, describe(topic).partitions().size());
    }

    @Test
    void describeAndIncrementalAlterConfigs() throws Exception {
        String topic = "admin-configs";
        Clients.createTopic(admin, topic, 1, Map.of("segment.bytes", "1048576"));
        Map<String, ConfigEntry> c = topicConfig(topic);
        for (String key : List.of("retention.ms", "retention.bytes", "segment.bytes", "max.message.bytes",
                "cleanup.policy", "message.timestamp.type", "min.insync.replicas")) {
            assertTrue(c.containsKey(key), "describeConfigs lists " + key + ": " + c.keySet());
        }
        assertEquals("1048576", c.get("segment.bytes").value());
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, c.get("segment.bytes").source());
        assertEquals("604800000", c.get("retention.ms").value(), "default retention.ms (7 days)");
        assertEquals("1048588", c.get("max.message.bytes").value(), "default max.message.bytes");
        assertEquals("delete", c.get("cleanup.policy").value());
        assertEquals("CreateTime", c.get("message.timestamp.type").value());
        assertNotEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, c.get("retention.ms").source());

        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        get(admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("max.message.bytes", "2048"), AlterConfigOp.OpType.SET)))).all());
        c = topicConfig(topic);
        assertEquals("3600000", c.get("retention.ms").value());
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, c.get("retention.ms").source());
        assertEquals("2048", c.get("max.message.bytes").value());
        assertEquals("1048576", c.get("segment.bytes").value(), "an untouched key keeps its value");

        get(admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all());
        c = topicConfig(topic);
        assertEquals("604800000", c.get("retention.ms").value(), "DELETE restores the default");
        assertNotEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, c.get("retention.ms").source());
        assertEquals("2048", c.get("max.message.bytes").value());

        // Unknown keys and bad values are refused, and change nothing.
        failsWith(InvalidConfigurationException.class, admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("no.such.config", "1"), AlterConfigOp.OpType.SET)))).all());
        failsWith(InvalidConfigurationException.class, admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "not-a-number"), AlterConfigOp.OpType.SET)))).all());
        assertEquals("604800000", topicConfig(topic).get("retention.ms").value());

        // Configs of an unknown topic.
        ConfigResource missing = new ConfigResource(ConfigResource.Type.TOPIC, "admin-no-such-topic");
        failsWith(UnknownTopicOrPartitionException.class, admin.describeConfigs(List.of(missing)).all());
    }

    @Test
    void describeBrokerConfigs() throws Exception {
        int id = theNode().id();
        ConfigResource r = new ConfigResource(ConfigResource.Type.BROKER, Integer.toString(id));
        Config c = get(admin.describeConfigs(List.of(r)).all()).get(r);
        assertFalse(c.entries().isEmpty(), "broker configs are described");
        ConfigEntry mmb = c.get("message.max.bytes");
        assertNotNull(mmb, "message.max.bytes is a broker config: " + c.entries());
        assertEquals("1048588", mmb.value());
    }

}
