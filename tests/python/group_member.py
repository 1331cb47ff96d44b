"""One consumer-group member, run as a child process by test_groups.py.

    group_member.py --client confluent|kafka-python --bootstrap HOST:PORT --group G --topic T
                    [--assignor range|roundrobin] [--session-timeout-ms N] [--heartbeat-interval-ms N]

It subscribes to T in group G with auto-commit off and auto.offset.reset=earliest, and loops:
poll a batch, print every record, then commit the positions after the batch synchronously.
Every event is one JSON line on stdout, flushed at once, with the wall-clock time `ts`:

    {"event": "started", "name": ..., "client": ..., "pid": ...}
    {"event": "assigned", "partitions": [...], "member_id": ...}   (the whole new assignment)
    {"event": "revoked", "partitions": [...]}            (or "lost")
    {"event": "consumed", "p": P, "o": O}
    {"event": "committed", "offsets": {"P": next offset, ...}}   after the commit succeeded
    {"event": "commit_failed", "error": "...", "offsets": {...}}
    {"event": "holding"}                                 see `hold` below
    {"event": "closed"}

Commands, one per line on stdin:
    hold   stop committing (keep consuming and printing), then print "holding": whatever the
           member prints as consumed after that is consumed but never committed.
    close  leave the loop, close() the consumer (a LeaveGroup), print "closed" and exit 0.
End of stdin counts as `close`, so a member never outlives the test that started it.
"""

import argparse
import json
import os
import sys
import threading
import time

_out_lock = threading.Lock()


def emit(event, **fields):
    line = json.dumps({"event": event, "ts": time.time(), **fields})
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Commands:
    """Reads stdin on a thread; the consuming loop checks the flags between batches."""

    def __init__(self):
        self.hold = False
        self.close = False
        self._hold_acked = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "hold":
                self.hold = True
            elif cmd == "close":
                break
        self.close = True

    def ack_hold(self):
        """True once `hold` arrived; prints "holding" the first time (from the consuming loop,
        so after the last commit the member will ever make)."""
        if self.hold and not self._hold_acked:
            self._hold_acked = True
            emit("holding")
        return self.hold


def offsets_json(positions):
    return {str(p): o for p, o in sorted(positions.items())}


def run_confluent(args, commands):
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": args.name,
        "partition.assignment.strategy": args.assignor,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": args.heartbeat_interval_ms,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        "socket.timeout.ms": 10000,
    })
    # Positions consumed (printed) but not yet committed, by partition.
    pending = {}

    def commit(positions):
        if not positions or commands.hold:
            return
        tps = [TopicPartition(args.topic, p, o) for p, o in sorted(positions.items())]
        try:
            result = consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as e:
            emit("commit_failed", error=str(e), offsets=offsets_json(positions))
            return
        errors = [f"{tp.partition}: {tp.error}" for tp in result if tp.error is not None]
        if errors:
            emit("commit_failed", error="; ".join(errors), offsets=offsets_json(positions))
            return
        emit("committed", offsets=offsets_json(positions))
        for p in positions:
            pending.pop(p, None)

    def on_assign(_consumer, partitions):
        emit("assigned", partitions=sorted(tp.partition for tp in partitions), member_id=consumer.memberid())

    def on_revoke(_consumer, partitions):
        # A poll() may have returned records of these partitions before this callback ran;
        # commit them while the generation is still ours.
        revoked = {tp.partition for tp in partitions}
        commit({p: o for p, o in pending.items() if p in revoked})
        for p in revoked:
            pending.pop(p, None)
        emit("revoked", partitions=sorted(revoked))

    def on_lost(_consumer, partitions):
        for tp in partitions:
            pending.pop(tp.partition, None)
        emit("lost", partitions=sorted(tp.partition for tp in partitions))

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    while not commands.close:
        batch = 0
        while batch < args.batch:
            msg = consumer.poll(0.1)
            if msg is None:
                break
            if msg.error() is not None:
                emit("error", error=str(msg.error()))
                break
            emit("consumed", p=msg.partition(), o=msg.offset())
            pending[msg.partition()] = msg.offset() + 1
            batch += 1
        commands.ack_hold()
        commit(dict(pending))
    consumer.close()
    emit("closed")


def run_kafka_python(args, commands):
    from kafka import KafkaConsumer, TopicPartition
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    assignor = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}[args.assignor]
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.name,
        partition_assignment_strategy=[assignor],
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        request_timeout_ms=30000,
    )

    class Listener(ConsumerRebalanceListener):
        # Runs on kafka-python's IO thread, where blocking consumer calls are not allowed; no
        # commit is needed here: rebalances happen inside poll(), and every batch poll()
        # returned has been committed before the next poll().
        def on_partitions_revoked(self, revoked):
            emit("revoked", partitions=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned):
            # (the coordinator's generation is private, but there is no public member id getter
            # that does not take a lock the IO thread may hold)
            member_id = consumer._coordinator._generation.member_id
            emit("assigned", partitions=sorted(tp.partition for tp in assigned), member_id=member_id)

        def on_partitions_lost(self, lost):
            emit("lost", partitions=sorted(tp.partition for tp in lost))

    # Load the topic's metadata before joining. Otherwise a leader may assign before it knows the
    # topic, and the rejoin that its metadata update then triggers can be lost: in kafka-python
    # 3.0.12, when poll()'s timeout expires while that JoinGroup is in flight, the completed
    # assignment is never applied (need_rejoin() turns false once the leader has assigned), and
    # the member sits in REBALANCING without heartbeats until the session expires.
    assert consumer.partitions_for_topic(args.topic), f"no metadata for {args.topic}"
    consumer.subscribe(topics=[args.topic], listener=Listener())
    while not commands.close:
        positions = {}
        for tp, records in consumer.poll(timeout_ms=100, max_records=args.batch).items():
            for rec in records:
                emit("consumed", p=rec.partition, o=rec.offset)
                positions[rec.partition] = rec.offset + 1
        if commands.ack_hold():
            continue
        if positions:
            offsets = {TopicPartition(args.topic, p): OffsetAndMetadata(o, "", -1) for p, o in positions.items()}
            try:
                consumer.commit(offsets)
            except KafkaError as e:
                emit("commit_failed", error=repr(e), offsets=offsets_json(positions))
                continue
            emit("committed", offsets=offsets_json(positions))
    consumer.close()
    emit("closed")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", choices=["confluent", "kafka-python"], required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--name", default="member")
    ap.add_argument("--assignor", choices=["range", "roundrobin"], default="range")
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    ap.add_argument("--heartbeat-interval-ms", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=50, help="records per poll/commit at most")
    args = ap.parse_args()
    commands = Commands()
    emit("started", name=args.name, client=args.client, pid=os.getpid())
    if args.client == "confluent":
        run_confluent(args, commands)
    else:
        run_kafka_python(args, commands)


if __name__ == "__main__":
    main()
