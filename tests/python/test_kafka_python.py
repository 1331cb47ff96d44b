"""kafka-python (pure Python protocol implementation) against a real sluice process."""

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
from kafka.errors import (
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

from conftest import OP_TIMEOUT_S, wait_until

TIMEOUT_MS = OP_TIMEOUT_S * 1000


@pytest.fixture
def kadmin(broker):
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS)
    yield client
    client.close()


def make_producer(broker, **conf):
    return KafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS, **conf)


def make_consumer(broker, **conf):
    # No group_id: kafka-python then never talks to a group coordinator or commits.
    return KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False, **conf)


def read(broker, topic, partition, count, **conf):
    """assign() + seek_to_beginning, then poll until `count` records arrived."""
    c = make_consumer(broker, **conf)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + OP_TIMEOUT_S
        while len(out) < count:
            assert time.monotonic() < deadline, f"read {len(out)} of {count} records from {topic}/{partition}"
            for records in c.poll(timeout_ms=500).values():
                out.extend(records)
        return out
    finally:
        c.close()


def send_all(prod, topic, values, partition=0, **kwargs):
    futures = [prod.send(topic, value=v, partition=partition, **kwargs) for v in values]
    prod.flush(OP_TIMEOUT_S)
    return [f.get(timeout=OP_TIMEOUT_S) for f in futures]


def test_admin_topic_lifecycle(broker, kadmin, topic_name):
    name = topic_name("kp")
    result = kadmin.create_topics([NewTopic(name, 2, 1, topic_configs={"retention.ms": "123456"})])
    (created,) = result["topics"]
    assert (created["name"], created["error_code"], created["num_partitions"]) == (name, 0, 2)
    wait_until(f"{name} listed", lambda: name in kadmin.list_topics())

    with pytest.raises(TopicAlreadyExistsError):
        kadmin.create_topics([NewTopic(name, 1, 1)])
    with pytest.raises(InvalidTopicError):
        kadmin.create_topics([NewTopic("has space", 1, 1)])
    with pytest.raises(InvalidPartitionsError):
        kadmin.create_topics([NewTopic(topic_name("zero"), 0, 1)])
    with pytest.raises(InvalidReplicationFactorError):
        kadmin.create_topics([NewTopic(topic_name("rf"), 1, 3)])

    (desc,) = kadmin.describe_topics([name])
    assert desc["error_code"] == 0
    assert [p["partition_index"] for p in desc["partitions"]] == [0, 1]
    cluster = kadmin.describe_cluster()
    (node,) = cluster["brokers"]
    assert f"{node['host']}:{node['port']}" == broker.bootstrap
    assert all(p["leader_id"] == node["broker_id"] for p in desc["partitions"])

    kadmin.create_partitions({name: NewPartitions(3)})
    wait_until("3 partitions", lambda: len(kadmin.describe_topics([name])[0]["partitions"]) == 3)
    with pytest.raises(InvalidPartitionsError):
        kadmin.create_partitions({name: NewPartitions(1)})

    kadmin.delete_topics([name])
    wait_until(f"{name} gone", lambda: name not in kadmin.list_topics())
    with pytest.raises(UnknownTopicOrPartitionError):
        kadmin.delete_topics([name])


def test_admin_configs(kadmin, topic_name):
    name = topic_name("kcfg")
    kadmin.create_topics([NewTopic(name, 1, 1, topic_configs={"retention.ms": "123456"})])
    res = ConfigResource(ConfigResourceType.TOPIC, name)
    modified = kadmin.describe_configs([res])["topic"][name]
    assert modified["retention.ms"]["value"] == "123456"
    assert modified["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    everything = kadmin.describe_configs([res], config_filter="all")["topic"][name]
    assert everything["retention.bytes"]["value"] == "-1"
    assert everything["retention.bytes"]["config_source"] == "DEFAULT_CONFIG"

    out = kadmin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs={"retention.ms": "999"})])
    assert out["topic"][name] == "OK"
    wait_until(
        "retention.ms=999",
        lambda: kadmin.describe_configs([res])["topic"][name]["retention.ms"]["value"] == "999",
    )
    out = kadmin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs={"retention.ms": "soon"})])
    assert "InvalidConfigurationError" in out["topic"][name]
    assert kadmin.describe_configs([res])["topic"][name]["retention.ms"]["value"] == "999"


@pytest.mark.parametrize("acks", [0, 1, "all"])
def test_produce_consume_acks(broker, kadmin, topic_name, acks):
    name = topic_name(f"kacks{acks}")
    kadmin.create_topics([NewTopic(name, 1, 1)])
    prod = make_producer(broker, acks=acks)
    values = [f"v{i}".encode() for i in range(25)]
    futures = [
        prod.send(name, key=f"k{i}".encode(), value=v, headers=[("n", str(i).encode())], partition=0,
                  timestamp_ms=1_700_000_000_000 + i)
        for i, v in enumerate(values)
    ]
    prod.flush(OP_TIMEOUT_S)
    metas = [f.get(timeout=OP_TIMEOUT_S) for f in futures]
    if acks != 0:
        assert [m.offset for m in metas] == list(range(25))
    prod.close()
    recs = read(broker, name, 0, 25)
    assert [r.offset for r in recs] == list(range(25))
    assert [(r.key, r.value, r.headers, r.timestamp) for r in recs] == [
        (f"k{i}".encode(), v, [("n", str(i).encode())], 1_700_000_000_000 + i) for i, v in enumerate(values)
    ]


def assert_round_trip(broker, kadmin, name, values, **producer_config):
    """Creates a one-partition topic, sends `values` with acks=all, and checks they got offsets
    0..n-1 and read back unchanged."""
    kadmin.create_topics([NewTopic(name, 1, 1)])
    prod = make_producer(broker, acks="all", **producer_config)
    metas = send_all(prod, name, values)
    prod.close()
    assert [m.offset for m in metas] == list(range(len(values)))
    assert [r.value for r in read(broker, name, 0, len(values))] == values


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression(broker, kadmin, topic_name, codec):
    values = [f"{codec}-{i:04}-".encode() + b"q" * 200 for i in range(300)]
    assert_round_trip(broker, kadmin, topic_name(f"k{codec}"), values, compression_type=codec, linger_ms=20)


def test_idempotent_producer(broker, kadmin, topic_name):
    values = [f"idem-{i}".encode() for i in range(500)]
    assert_round_trip(broker, kadmin, topic_name("kidem"), values, enable_idempotence=True)


def test_offsets(broker, kadmin, topic_name):
    name = topic_name("koff")
    kadmin.create_topics([NewTopic(name, 1, 1)])
    prod = make_producer(broker, acks="all")
    base = 1_700_000_000_000
    for t in [100, 200, 200, 300]:
        send_all(prod, name, [b"x"], timestamp_ms=base + t)
    prod.close()
    c = make_consumer(broker)
    try:
        tp = TopicPartition(name, 0)
        assert c.beginning_offsets([tp]) == {tp: 0}
        assert c.end_offsets([tp]) == {tp: 4}
        found = c.offsets_for_times({tp: base + 150})[tp]
        assert (found.offset, found.timestamp) == (1, base + 200)
        assert c.offsets_for_times({tp: base + 301})[tp] is None
        c.assign([tp])
        c.seek(tp, 2)
        deadline = time.monotonic() + OP_TIMEOUT_S
        recs = []
        while len(recs) < 2:
            assert time.monotonic() < deadline
            for batch in c.poll(timeout_ms=500).values():
                recs.extend(batch)
        assert [r.offset for r in recs] == [2, 3]
    finally:
        c.close()
