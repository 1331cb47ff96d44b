"""Small helpers around confluent-kafka shared by the tests."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import OP_TIMEOUT_S


def admin(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 10000})


def create_topic(broker, name, partitions=1, config=None):
    client = admin(broker)  # must outlive the futures
    futures = client.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=OP_TIMEOUT_S,
        request_timeout=OP_TIMEOUT_S,
    )
    assert futures[name].result(OP_TIMEOUT_S) is None


def producer(broker, **conf) -> Producer:
    base = {
        "bootstrap.servers": broker.bootstrap,
        "acks": "all",
        "enable.idempotence": False,
        "message.timeout.ms": 20000,
        "socket.timeout.ms": 10000,
    }
    base.update(conf)
    return Producer(base)


def produce(prod: Producer, topic, records, partition=0):
    """Sends `records` (dicts of Producer.produce keyword arguments, or plain values) and waits
    for every delivery report. Returns the delivered (partition, offset) pairs in send order;
    fails the test on any delivery error."""
    results = [None] * len(records)

    def on_delivery(index):
        def report(err, msg):
            results[index] = err if err is not None else (msg.partition(), msg.offset())
        return report

    for i, rec in enumerate(records):
        kwargs = rec if isinstance(rec, dict) else {"value": rec}
        kwargs = {"partition": partition, **kwargs}
        while True:
            try:
                prod.produce(topic, on_delivery=on_delivery(i), **kwargs)
                break
            except BufferError:
                prod.poll(0.1)
    remaining = prod.flush(OP_TIMEOUT_S)
    assert remaining == 0, f"{remaining} records not delivered within {OP_TIMEOUT_S}s"
    errors = [r for r in results if isinstance(r, KafkaError)]
    assert not errors, f"delivery errors: {errors[:3]}"
    return results


def consumer(broker, **conf) -> Consumer:
    # confluent-kafka requires a group.id even for assign(); with explicit offsets and no
    # commits the group is never used, so the broker needs no group coordinator.
    base = {
        "bootstrap.servers": broker.bootstrap,
        "group.id": f"assign-only-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "fetch.wait.max.ms": 100,
        "socket.timeout.ms": 10000,
    }
    base.update(conf)
    return Consumer(base)


def consume(broker, topic, partition=0, offset=0, count=1, **conf):
    """Assigns topic/partition at `offset` and returns `count` messages (fails on errors or
    when they do not arrive within OP_TIMEOUT_S)."""
    c = consumer(broker, **conf)
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        out = []
        deadline = time.monotonic() + OP_TIMEOUT_S
        while len(out) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"consumed {len(out)} of {count} records from {topic}/{partition}")
            msg = c.poll(min(left, 0.5))
            if msg is None:
                continue
            assert msg.error() is None, f"consumer error: {msg.error()}"
            out.append(msg)
        return out
    finally:
        c.close()


def topic_names(broker):
    md = admin(broker).list_topics(timeout=OP_TIMEOUT_S)
    return set(md.topics)
