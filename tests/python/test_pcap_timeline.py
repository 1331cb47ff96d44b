"""bench/lib/pcap_timeline.py on a capture written here with known timings: frames split across
packets, a retransmission, produce and fetch connections, and a loss at a frame boundary."""

import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "lib"))
import pcap_timeline  # noqa: E402

BROKER = 9092


class Capture:
    """Writes an Ethernet/IPv4/TCP pcap; each direction of a connection keeps its own sequence."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.seq = {}

    def send(self, t, sport, dport, payload, seq=None):
        if seq is None:
            seq = self.seq.get((sport, dport), 1000)
            self.seq[(sport, dport)] = seq + len(payload)
        tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x18, 65535, 0, 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, b"\x7f\0\0\1", b"\x7f\0\0\1")
        frame = b"\0" * 12 + b"\x08\x00" + ip + tcp
        sec = int(t)
        self.f.write(struct.pack("<IIII", sec, round((t - sec) * 1e6), len(frame), len(frame)))
        self.f.write(frame)
        return seq

    def close(self):
        self.f.close()


def request(api_key, corr, body=b"x" * 40):
    payload = struct.pack(">hhi", api_key, 9, corr) + body
    return struct.pack(">i", len(payload)) + payload


def response(corr, body=b"y" * 100):
    payload = struct.pack(">i", corr) + body
    return struct.pack(">i", len(payload)) + payload


def test_produce_and_fetch_shares(tmp_path):
    path = tmp_path / "c.pcap"
    cap = Capture(path)
    # Produce, client port 5000: request i arrives in two packets (t, t + 1 ms), the broker
    # answers 2 ms after its last byte; the next request comes 10 ms after the previous one.
    for i in range(10):
        t = 1.0 + i * 0.010
        frame = request(0, i)
        first = cap.send(t, 5000, BROKER, frame[:20])
        if i == 3:
            cap.send(t + 0.0005, 5000, BROKER, frame[:20], seq=first)  # retransmission
        cap.send(t + 0.001, 5000, BROKER, frame[20:])
        cap.send(t + 0.003, BROKER, 5000, response(i))
    # Fetch, client port 5001: first byte 1 ms after the request, last byte 4 ms later.
    for i in range(10):
        t = 2.0 + i * 0.010
        cap.send(t, 5001, BROKER, request(1, 100 + i))
        body = response(100 + i, b"z" * 5000)
        cap.send(t + 0.001, BROKER, 5001, body[:3000])
        cap.send(t + 0.005, BROKER, 5001, body[3000:])
    cap.close()

    result = pcap_timeline.analyse(str(path), BROKER)
    assert result["warnings"] == []
    [produce] = result["produce"]
    assert produce["requests"] == 10
    assert produce["broker_holds_ms"]["p50"] == pytest.approx(2.0, abs=0.01)
    # window: first request's last byte (1.001) to last response (1.093); held 10 × 2 ms
    assert produce["share_broker_holds_none"] == pytest.approx(1 - 0.020 / 0.092, abs=0.002)
    [fetch] = result["fetch"]
    assert fetch["fetches"] == 10
    assert fetch["first_byte_ms"]["p50"] == pytest.approx(1.0, abs=0.01)
    # window 2.000 to 2.095: waiting 10 × 1 ms, in transit 10 × 4 ms, idle 9 × 5 ms
    assert fetch["share_waiting_for_broker"] == pytest.approx(0.010 / 0.095, abs=0.002)
    assert fetch["share_response_in_transit"] == pytest.approx(0.040 / 0.095, abs=0.002)
    assert fetch["share_no_fetch_outstanding"] == pytest.approx(0.045 / 0.095, abs=0.002)


def test_a_loss_at_a_frame_boundary_is_reported_not_guessed(tmp_path):
    path = tmp_path / "lost.pcap"
    cap = Capture(path)
    for i in range(25):
        frame = request(0, i)
        if i == 15:
            cap.seq[(5000, BROKER)] += len(frame)  # this whole request is missing from the capture
            continue
        cap.send(1.0 + i * 0.01, 5000, BROKER, frame)
        cap.send(1.002 + i * 0.01, BROKER, 5000, response(i))
    cap.close()
    result = pcap_timeline.analyse(str(path), BROKER)
    assert any("missing from the capture at a frame boundary" in w for w in result["warnings"])
    # the fifteen requests before the loss are still paired; nothing after it is
    [produce] = result["produce"]
    assert produce["requests"] == 15
