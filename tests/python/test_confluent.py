"""confluent-kafka (librdkafka 2.x from the wheel) against a real sluice process."""

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)

from clients import admin, consume, consumer, create_topic, produce, producer, topic_names
from conftest import OP_TIMEOUT_S, wait_until


def error_code(future):
    """The KafkaError code a failed admin future carries (fails if it succeeded)."""
    with pytest.raises(KafkaException) as info:
        future.result(OP_TIMEOUT_S)
    return info.value.args[0].code()


def describe_topic_configs(broker, topic):
    client = admin(broker)  # must outlive the futures
    futures = client.describe_configs([ConfigResource("topic", topic)], request_timeout=OP_TIMEOUT_S)
    (future,) = futures.values()
    return future.result(OP_TIMEOUT_S)


# --- admin -------------------------------------------------------------------------------------


def test_topic_lifecycle(broker, topic_name):
    a = admin(broker)
    one, three = topic_name("one"), topic_name("three")
    futures = a.create_topics([NewTopic(one, 1, 1), NewTopic(three, 3, 1)], operation_timeout=OP_TIMEOUT_S)
    for f in futures.values():
        assert f.result(OP_TIMEOUT_S) is None
    wait_until("both topics are listed", lambda: {one, three} <= topic_names(broker))

    md = a.list_topics(timeout=OP_TIMEOUT_S)
    assert [f"{b.host}:{b.port}" for b in md.brokers.values()] == [broker.bootstrap]
    (node_id,) = md.brokers
    t = md.topics[three]
    assert t.error is None
    assert sorted(t.partitions) == [0, 1, 2]
    for p in t.partitions.values():
        assert (p.leader, p.replicas, p.isrs, p.error) == (node_id, [node_id], [node_id], None)

    (desc,) = a.describe_topics(TopicCollection([three]), request_timeout=OP_TIMEOUT_S).values()
    desc = desc.result(OP_TIMEOUT_S)
    assert desc.name == three
    assert not desc.is_internal
    assert [p.id for p in desc.partitions] == [0, 1, 2]
    assert all(p.leader.id == node_id for p in desc.partitions)
    assert str(desc.topic_id) != "AAAAAAAAAAAAAAAAAAAAAA", "topics have a non-zero topic id"

    dup = a.create_topics([NewTopic(one, 1, 1)], operation_timeout=OP_TIMEOUT_S)
    assert error_code(dup[one]) == KafkaError.TOPIC_ALREADY_EXISTS

    assert a.delete_topics([one], operation_timeout=OP_TIMEOUT_S)[one].result(OP_TIMEOUT_S) is None
    wait_until(f"{one} is no longer listed", lambda: one not in topic_names(broker))
    assert three in topic_names(broker)
    again = a.delete_topics([one], operation_timeout=OP_TIMEOUT_S)
    assert error_code(again[one]) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_create_topics_rejects_invalid_requests(broker, topic_name):
    a = admin(broker)
    zero, rf3, bad_cfg, bad_val = (topic_name(p) for p in ("zero", "rf3", "badcfg", "badval"))
    futures = a.create_topics(
        [
            NewTopic("bad/name", 1, 1),
            NewTopic("x" * 250, 1, 1),
            NewTopic(zero, 0, 1),
            NewTopic(rf3, 1, 3),
            NewTopic(bad_cfg, 1, 1, config={"no.such.config": "1"}),
            NewTopic(bad_val, 1, 1, config={"retention.ms": "soon"}),
        ],
        operation_timeout=OP_TIMEOUT_S,
    )
    assert error_code(futures["bad/name"]) == KafkaError.TOPIC_EXCEPTION
    assert error_code(futures["x" * 250]) == KafkaError.TOPIC_EXCEPTION
    assert error_code(futures[zero]) == KafkaError.INVALID_PARTITIONS
    assert error_code(futures[rf3]) == KafkaError.INVALID_REPLICATION_FACTOR
    assert error_code(futures[bad_cfg]) == KafkaError.INVALID_CONFIG
    assert error_code(futures[bad_val]) == KafkaError.INVALID_CONFIG
    assert not {zero, rf3, bad_cfg, bad_val} & topic_names(broker)


def test_create_topics_validate_only(broker, topic_name):
    name = topic_name("validate")
    client = admin(broker)  # must outlive the futures
    futures = client.create_topics([NewTopic(name, 2, 1)], validate_only=True)
    assert futures[name].result(OP_TIMEOUT_S) is None
    assert name not in topic_names(broker)


def test_create_partitions(broker, topic_name):
    name = topic_name("grow")
    create_topic(broker, name, 1)
    a = admin(broker)
    assert a.create_partitions([NewPartitions(name, 4)])[name].result(OP_TIMEOUT_S) is None
    wait_until("4 partitions", lambda: len(a.list_topics(name, timeout=OP_TIMEOUT_S).topics[name].partitions) == 4)
    assert produce(producer(broker), name, [b"p3"], partition=3) == [(3, 0)]
    assert error_code(a.create_partitions([NewPartitions(name, 2)])[name]) == KafkaError.INVALID_PARTITIONS
    missing = topic_name("missing")
    assert error_code(a.create_partitions([NewPartitions(missing, 2)])[missing]) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_and_alter_configs(broker, topic_name):
    name = topic_name("configs")
    create_topic(broker, name, 1, {"retention.ms": "123456", "cleanup.policy": "delete"})
    a = admin(broker)
    cfg = describe_topic_configs(broker, name)
    assert cfg["retention.ms"].value == "123456"
    assert cfg["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert cfg["retention.bytes"].value == "-1"
    assert cfg["retention.bytes"].is_default

    # Legacy AlterConfigs: a bad value is INVALID_CONFIG and changes nothing.
    bad = ConfigResource("topic", name, set_config={"retention.ms": "soon"})
    (f,) = a.alter_configs([bad]).values()
    assert error_code(f) == KafkaError.INVALID_CONFIG
    assert describe_topic_configs(broker, name)["retention.ms"].value == "123456"

    # IncrementalAlterConfigs: SET one key, leave the other override alone; then DELETE it.
    set_op = ConfigResource(
        "topic",
        name,
        incremental_configs=[ConfigEntry("retention.ms", "4242", incremental_operation=AlterConfigOpType.SET)],
    )
    (f,) = a.incremental_alter_configs([set_op]).values()
    assert f.result(OP_TIMEOUT_S) is None
    wait_until("retention.ms=4242", lambda: describe_topic_configs(broker, name)["retention.ms"].value == "4242")
    cfg = describe_topic_configs(broker, name)
    assert cfg["cleanup.policy"].value == "delete"
    assert cfg["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    delete_op = ConfigResource(
        "topic",
        name,
        incremental_configs=[ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)],
    )
    (f,) = a.incremental_alter_configs([delete_op]).values()
    assert f.result(OP_TIMEOUT_S) is None
    wait_until("retention.ms back to default", lambda: describe_topic_configs(broker, name)["retention.ms"].is_default)
    assert describe_topic_configs(broker, name)["retention.ms"].value == "604800000"

    missing = topic_name("missing")
    (f,) = a.describe_configs([ConfigResource("topic", missing)]).values()
    assert error_code(f) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_describe_broker_configs_and_cluster(broker):
    a = admin(broker)
    cluster = a.describe_cluster(request_timeout=OP_TIMEOUT_S).result(OP_TIMEOUT_S)
    assert cluster.cluster_id
    assert [f"{n.host}:{n.port}" for n in cluster.nodes] == [broker.bootstrap]
    node_id = cluster.nodes[0].id
    assert cluster.controller is not None and cluster.controller.id == node_id
    (f,) = a.describe_configs([ConfigResource("broker", str(node_id))]).values()
    cfg = f.result(OP_TIMEOUT_S)
    assert cfg["num.partitions"].value == "1"
    assert cfg["auto.create.topics.enable"].value == "true"


# --- produce and consume -----------------------------------------------------------------------


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_acks_round_trip(broker, topic_name, acks):
    name = topic_name(f"acks{acks}")
    create_topic(broker, name)
    records = [
        {"key": f"k{i}".encode(), "value": f"v{i}".encode(), "headers": [("i", str(i).encode()), ("i", b"dup")]}
        for i in range(30)
    ]
    delivered = produce(producer(broker, acks=acks), name, records)
    if acks != "0":
        assert delivered == [(0, i) for i in range(30)]
    msgs = consume(broker, name, count=30)
    assert [m.offset() for m in msgs] == list(range(30))
    assert [(m.key(), m.value(), m.headers()) for m in msgs] == [
        (r["key"], r["value"], r["headers"]) for r in records
    ]


def test_null_and_empty_fields_and_timestamps(broker, topic_name):
    name = topic_name("fields")
    create_topic(broker, name)
    ts = 1_600_000_000_000
    records = [
        {"key": None, "value": b"no key", "timestamp": ts},
        {"key": b"tombstone", "value": None, "timestamp": ts + 1},
        {"key": b"", "value": b"", "timestamp": ts + 2},
        {"key": bytes(range(256)), "value": bytes(range(256)) * 1000, "timestamp": ts + 3},
    ]
    produce(producer(broker), name, records)
    msgs = consume(broker, name, count=len(records))
    for m, r in zip(msgs, records):
        assert (m.key(), m.value()) == (r["key"], r["value"])
        assert m.timestamp() == (1, r["timestamp"])  # (TIMESTAMP_CREATE_TIME, ms)


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_round_trip(broker, topic_name, codec):
    name = topic_name(codec)
    create_topic(broker, name)
    values = [f"{codec} {i:05} ".encode() + b"xyz" * 100 for i in range(500)]
    delivered = produce(producer(broker, **{"compression.type": codec, "linger.ms": 50}), name, values)
    assert delivered == [(0, i) for i in range(500)]
    assert [m.value() for m in consume(broker, name, count=500)] == values
    # Starting inside a compressed batch yields exactly the requested offset first.
    tail = consume(broker, name, offset=333, count=167)
    assert [m.offset() for m in tail] == list(range(333, 500))


def test_idempotent_producer(broker, topic_name):
    name = topic_name("idempotent")
    create_topic(broker, name, 2)
    expected = {0: [], 1: []}
    for instance in range(2):
        prod = producer(broker, **{"enable.idempotence": True, "linger.ms": 5, "batch.num.messages": 100})
        for partition in (0, 1):
            values = [f"i{instance}-p{partition}-{n}".encode() for n in range(1000)]
            start = len(expected[partition])
            delivered = produce(prod, name, values, partition=partition)
            assert delivered == [(partition, start + n) for n in range(1000)]
            expected[partition] += values
    for partition, values in expected.items():
        assert [m.value() for m in consume(broker, name, partition, count=len(values))] == values


def test_auto_create_on_produce(start_broker, topic_name):
    broker = start_broker("--num-partitions", "2")
    name = topic_name("auto")
    assert produce(producer(broker), name, [b"x"], partition=1) == [(1, 0)]
    assert len(admin(broker).list_topics(name, timeout=OP_TIMEOUT_S).topics[name].partitions) == 2


def test_no_auto_create(start_broker, topic_name):
    broker = start_broker("--auto-create-topics", "false")
    name = topic_name("absent")
    prod = producer(broker, **{"message.timeout.ms": 5000, "topic.metadata.propagation.max.ms": 1000})
    errors = []
    prod.produce(name, b"x", on_delivery=lambda err, msg: errors.append(err))
    assert prod.flush(OP_TIMEOUT_S) == 0
    assert len(errors) == 1 and errors[0] is not None
    assert errors[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
    assert name not in topic_names(broker)


# --- offsets -----------------------------------------------------------------------------------


def test_watermarks_offsets_for_times_and_list_offsets(broker, topic_name):
    name = topic_name("offsets")
    create_topic(broker, name)
    base = 1_700_000_000_000
    # L4's example: timestamps 100, 200, 200, 300 at offsets 0..3.
    records = [{"value": f"r{i}".encode(), "timestamp": base + t} for i, t in enumerate([100, 200, 200, 300])]
    prod = producer(broker)
    for r in records:  # one batch each
        produce(prod, name, [r])

    c = consumer(broker)
    try:
        assert c.get_watermark_offsets(TopicPartition(name, 0), timeout=OP_TIMEOUT_S) == (0, 4)
        for target, offset in [(base, 0), (base + 150, 1), (base + 200, 1), (base + 250, 3), (base + 301, -1)]:
            (tp,) = c.offsets_for_times([TopicPartition(name, 0, target)], timeout=OP_TIMEOUT_S)
            assert tp.error is None
            assert tp.offset == offset, f"offsets_for_times(base+{target - base})"
    finally:
        c.close()

    a = admin(broker)
    tp = TopicPartition(name, 0)

    def list_offset(spec):
        (f,) = a.list_offsets({tp: spec}, request_timeout=OP_TIMEOUT_S).values()
        return f.result(OP_TIMEOUT_S)

    assert list_offset(OffsetSpec.earliest()).offset == 0
    assert list_offset(OffsetSpec.latest()).offset == 4
    newest = list_offset(OffsetSpec.max_timestamp())
    assert (newest.offset, newest.timestamp) == (3, base + 300)
    found = list_offset(OffsetSpec.for_timestamp(base + 150))
    assert (found.offset, found.timestamp) == (1, base + 200)


def test_fetch_out_of_range_resets(broker, topic_name):
    name = topic_name("oor")
    create_topic(broker, name)
    produce(producer(broker), name, [b"only"])
    c = consumer(broker)
    try:
        c.assign([TopicPartition(name, 0, 50)])
        msg = None
        for _ in range(int(OP_TIMEOUT_S / 0.5)):
            msg = c.poll(0.5)
            if msg is not None:
                break
        assert msg is not None and msg.error() is not None, "no out-of-range error"
        assert msg.error().code() == KafkaError._AUTO_OFFSET_RESET
    finally:
        c.close()
    (m,) = consume(broker, name, offset=50, count=1, **{"auto.offset.reset": "earliest"})
    assert (m.offset(), m.value()) == (0, b"only")
