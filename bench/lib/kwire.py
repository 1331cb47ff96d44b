"""Just enough of the Kafka wire protocol for the bench harness, with no client library, so that
the first-acknowledged-produce probe costs nothing to start: Metadata v4 (with auto-creation),
CreateTopics v4 and Produce v3 with one v2 record batch (CRC32C computed here)."""
import socket
import struct
import time

# ---------------------------------------------------------------------------------------------
# CRC32C (Castagnoli), table-driven; only tiny batches are checksummed here


def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# encoding


def _string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _varint(n):
    n = (n << 1) ^ (n >> 63)  # zigzag
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def record_batch(value, timestamp_ms=None):
    """One uncompressed v2 batch holding one record with a null key."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    body = b"\x00" + _varint(0) + _varint(0) + _varint(-1) + _varint(len(value)) + value + _varint(0)
    record = _varint(len(body)) + body
    after_crc = (
        struct.pack(">hiqqqhii", 0, 0, ts, ts, -1, -1, -1, 1)  # attributes .. record count
        + record
    )
    header_after_length = struct.pack(">ib", -1, 2) + struct.pack(">I", crc32c(after_crc))
    batch_length = len(header_after_length) + len(after_crc)
    return struct.pack(">qi", 0, batch_length) + header_after_length + after_crc


class Reader:
    def __init__(self, data):
        self.d, self.i = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.i)
        self.i += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.d[self.i : self.i + n].decode()
        self.i += n
        return s


# ---------------------------------------------------------------------------------------------
# connection


class Connection:
    def __init__(self, host, port, timeout=10.0, client_id="sluice-bench"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client_id = client_id
        self.correlation = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            buf += chunk
        return bytes(buf)

    def request(self, api_key, version, body):
        self.correlation += 1
        header = struct.pack(">hhi", api_key, version, self.correlation) + _string(self.client_id)
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        (size,) = struct.unpack(">i", self._recv_exact(4))
        resp = self._recv_exact(size)
        (correlation,) = struct.unpack_from(">i", resp)
        if correlation != self.correlation:
            raise ConnectionError(f"correlation id {correlation}, expected {self.correlation}")
        return Reader(resp[4:])

    def metadata(self, topics, auto_create=True):
        """Metadata v4 → {topic: (error, {partition: (error, leader)})}."""
        body = struct.pack(">i", len(topics)) + b"".join(_string(t) for t in topics)
        body += struct.pack(">?", auto_create)
        r = self.request(3, 4, body)
        r.take(">i")  # throttle
        for _ in range(r.take(">i")):  # brokers
            r.take(">i"), r.string(), r.take(">i"), r.string()
        r.string()  # cluster id
        r.take(">i")  # controller
        out = {}
        for _ in range(r.take(">i")):
            err = r.take(">h")
            name = r.string()
            r.take(">?")
            parts = {}
            for _ in range(r.take(">i")):
                perr, idx, leader = r.take(">hii")
                for _ in range(2):  # replicas, isr
                    for _ in range(r.take(">i")):
                        r.take(">i")
                parts[idx] = (perr, leader)
            out[name] = (err, parts)
        return out

    def create_topic(self, name, partitions, replication=1, timeout_ms=30000):
        """CreateTopics v4 → error code (0, or 36 TOPIC_ALREADY_EXISTS, ...)."""
        body = struct.pack(">i", 1) + _string(name) + struct.pack(">ihii", partitions, replication, 0, 0)
        body += struct.pack(">i?", timeout_ms, False)
        r = self.request(19, 4, body)
        r.take(">i")
        r.take(">i")
        r.string()
        err = r.take(">h")
        msg = r.string()
        return err, msg

    def produce(self, topic, partition, batch, acks=-1, timeout_ms=30000):
        """Produce v3 of one batch → (error code, base offset)."""
        body = struct.pack(">hhi", -1, acks, timeout_ms)
        body += struct.pack(">i", 1) + _string(topic) + struct.pack(">ii", 1, partition)
        body += struct.pack(">i", len(batch)) + batch
        r = self.request(0, 3, body)
        r.take(">i")
        r.string()
        r.take(">i")
        _, err, offset, _ = r.take(">ihqq")
        return err, offset


def wait_topic(host, port, topic, partitions, timeout=60.0):
    """Polls Metadata until every partition of `topic` has a leader (Kafka creates partitions
    asynchronously after CreateTopics answers)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with Connection(host, port) as c:
                err, parts = c.metadata([topic], auto_create=False).get(topic, (3, {}))
                if err == 0 and len(parts) == partitions and all(
                    e == 0 and leader >= 0 for e, leader in parts.values()
                ):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} has no leader for all {partitions} partitions after {timeout:.0f} s")
        time.sleep(0.05)


def create_topic(host, port, topic, partitions):
    with Connection(host, port) as c:
        err, msg = c.create_topic(topic, partitions)
    if err not in (0, 36):
        raise RuntimeError(f"CreateTopics {topic}: error {err} {msg or ''}")
    wait_topic(host, port, topic, partitions)


class ProcessExited(Exception):
    pass


def first_ack(host, port, topic, deadline, value=b"first", alive=None):
    """Loops until a produce with acks=all to partition 0 of `topic` (auto-created through
    Metadata) is acknowledged; returns the number of attempts. Connection refused → retry after
    2 ms (this loop is the measurement: how soon the broker acknowledges after its start).
    `alive()` returning False (the broker exited) raises ProcessExited."""
    attempts = 0
    while True:
        attempts += 1
        if alive is not None and not alive():
            raise ProcessExited()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no acknowledged produce after {attempts} attempts")
        try:
            with Connection(host, port, timeout=10.0) as c:
                while time.monotonic() < deadline:
                    err, parts = c.metadata([topic], auto_create=True).get(topic, (3, {}))
                    if err == 0 and 0 in parts and parts[0][0] == 0 and parts[0][1] >= 0:
                        perr, _ = c.produce(topic, 0, record_batch(value))
                        if perr == 0:
                            return attempts
                    attempts += 1
                    time.sleep(0.002)
        except (OSError, ConnectionError, struct.error):
            time.sleep(0.002)
