"""Who waits for whom: Kafka request/response timing from a packet capture of one broker port.

    pcap_timeline.py PCAP BROKER_PORT [--json]

Reads a tcpdump capture (`tcpdump -i lo -s 0 -w PCAP tcp port BROKER_PORT`; Ethernet framing,
IPv4, full payloads), rebuilds each connection's two byte streams into Kafka frames, pairs
requests with responses by correlation id, and reports per connection:

- Produce: how long the broker held each request (last request byte → first response byte),
  and the share of the window (first request → last response) in which the broker held none:
  the time the client, not the broker, decided the pace.
- Fetch: the share of the window spent waiting for the broker (request sent, no response byte
  yet), with the response in transit (first → last byte; paced by the client's reading), and
  with no fetch outstanding (the client was busy with data it already had).

Invariants: a frame is timed by the packets that carry its first and last bytes; bytes lost
from the capture inside a frame only shorten it; a loss that breaks the framing ends that
stream's analysis with a warning instead of guessing.
"""
import json
import struct
import sys
from collections import defaultdict

API_PRODUCE, API_FETCH = 0, 1


def packets(path):
    """(time, src_port, dst_port, seq, payload) of each TCP/IPv4 packet in an Ethernet pcap."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            raise ValueError(f"{path}: not a pcap file")
        magic = struct.unpack("<I", head[:4])[0]
        if magic not in (0xA1B2C3D4, 0xA1B23C4D):
            raise ValueError(f"{path}: not a little-endian pcap file (magic {magic:#x})")
        scale = 1e9 if magic == 0xA1B23C4D else 1e6
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            sec, frac, incl, _ = struct.unpack("<IIII", rec)
            data = f.read(incl)
            if len(data) < 34 or data[12:14] != b"\x08\x00":
                continue  # not IPv4
            ip = data[14:]
            if ip[9] != 6:
                continue  # not TCP
            ihl = (ip[0] & 15) * 4
            total = struct.unpack(">H", ip[2:4])[0]
            tcp = ip[ihl:total]
            sport, dport, seq = struct.unpack(">HHI", tcp[:8])
            yield sec + frac / scale, sport, dport, seq, tcp[(tcp[12] >> 4) * 4:]


class Stream:
    """One direction of one connection, cut into Kafka frames (size-prefixed)."""

    def __init__(self, name):
        self.name = name
        self.next_seq = None
        self.prefix = bytearray()
        self.need = None  # bytes of the current frame still to come
        self.start = None
        self.head = bytearray()  # the frame's first 8 bytes
        self.frames = []  # (first byte time, last byte time, first 8 bytes)
        self.broken = None

    def feed(self, t, seq, payload):
        if self.broken or not payload:
            return
        if self.next_seq is not None:
            gap = (seq - self.next_seq) % 2**32
            if gap > 2**31:
                return  # a retransmission of bytes already seen
            if gap:
                if self.need is not None and self.need >= gap:
                    self.need -= gap
                else:
                    self.broken = f"{gap} bytes missing from the capture at a frame boundary"
                    return
        self.next_seq = (seq + len(payload)) % 2**32
        i = 0
        while i < len(payload):
            if self.need is None:
                take = min(4 - len(self.prefix), len(payload) - i)
                self.prefix += payload[i:i + take]
                i += take
                if len(self.prefix) == 4:
                    self.need = struct.unpack(">i", bytes(self.prefix))[0]
                    self.prefix.clear()
                    self.start, self.head = t, bytearray()
                    if self.need < 0:
                        self.broken = "a negative frame length"
                        return
            else:
                take = min(self.need, len(payload) - i)
                if len(self.head) < 8:
                    self.head += payload[i:i + min(take, 8 - len(self.head))]
                self.need -= take
                i += take
            if self.need == 0:
                self.frames.append((self.start, t, bytes(self.head)))
                self.need = None


def connections(path, broker_port):
    """client port → (requests, responses) Streams."""
    streams = {}
    for t, sport, dport, seq, payload in packets(path):
        if dport == broker_port:
            key = (sport, "request")
        elif sport == broker_port:
            key = (dport, "response")
        else:
            continue
        if key not in streams:
            streams[key] = Stream(f"{key[0]} {key[1]}s")
        streams[key].feed(t, seq, payload)
    out = {}
    for (port, kind), s in streams.items():
        out.setdefault(port, {})[kind] = s
    return out


def pairs(conn, api_key):
    """(request last byte, response first byte, response last byte) for each answered request."""
    reqs = {}
    for start, end, head in conn["request"].frames:
        if len(head) >= 8:
            key, _, corr = struct.unpack(">hhi", head[:8])
            if key == api_key:
                reqs[corr] = end
    out = []
    for start, end, head in conn.get("response", Stream("")).frames:
        if len(head) >= 4:
            corr = struct.unpack(">i", head[:4])[0]
            if corr in reqs:
                out.append((reqs[corr], start, end))
    return sorted(out)


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else None


def share_by_outstanding(events, lo, hi):
    """events: (time, +1 | -1); the fraction of [lo, hi] spent at each outstanding count."""
    spent = defaultdict(float)
    level, last = 0, lo
    for t, step in sorted(events):
        t = min(max(t, lo), hi)
        spent[level] += t - last
        last, level = t, level + step
    spent[level] += hi - last
    span = hi - lo
    return {k: v / span for k, v in sorted(spent.items()) if span > 0}


def produce_report(rows):
    lo, hi = rows[0][0], rows[-1][1]
    held = [(b - a) * 1000 for a, b, _ in rows]
    shares = share_by_outstanding([(a, 1) for a, _, _ in rows] + [(b, -1) for _, b, _ in rows], lo, hi)
    return {
        "requests": len(rows),
        "window_s": round(hi - lo, 3),
        "broker_holds_ms": {q: round(quantile(held, v), 3) for q, v in (("p50", .5), ("p90", .9), ("p99", .99))},
        "share_broker_holds_none": round(shares.get(0, 0.0), 3),
        "share_by_requests_held": {str(k): round(v, 3) for k, v in shares.items()},
    }


def fetch_report(rows):
    """Each instant of the window counts once: response in transit if any is, else waiting for
    the broker if a fetch is outstanding, else no fetch outstanding (fetches may overlap)."""
    lo, hi = rows[0][0], rows[-1][2]
    span = hi - lo
    events = []
    for a, b, c in rows:
        events += [(a, "wait", 1), (b, "wait", -1), (b, "transit", 1), (c, "transit", -1)]
    events.sort()
    spent = {"wait": 0.0, "transit": 0.0, "idle": 0.0}
    level = {"wait": 0, "transit": 0}
    last = lo
    for t, kind, step in events:
        state = "transit" if level["transit"] else "wait" if level["wait"] else "idle"
        spent[state] += t - last
        last = t
        level[kind] += step
    return {
        "fetches": len(rows),
        "window_s": round(span, 3),
        "first_byte_ms": {q: round(quantile([(b - a) * 1000 for a, b, _ in rows], v), 3)
                          for q, v in (("p50", .5), ("p90", .9))},
        "share_waiting_for_broker": round(spent["wait"] / span, 3) if span > 0 else None,
        "share_response_in_transit": round(spent["transit"] / span, 3) if span > 0 else None,
        "share_no_fetch_outstanding": round(spent["idle"] / span, 3) if span > 0 else None,
    }


def analyse(path, broker_port):
    """{"produce": [report per connection], "fetch": [...], "warnings": [...]}"""
    out = {"produce": [], "fetch": [], "warnings": []}
    for port, conn in sorted(connections(path, broker_port).items()):
        for s in conn.values():
            if s.broken:
                out["warnings"].append(f"{s.name}: {s.broken}; later frames not analysed")
        if "request" not in conn:
            continue
        produce = pairs(conn, API_PRODUCE)
        if len(produce) >= 10:
            out["produce"].append(dict(client_port=port, **produce_report(produce)))
        fetch = pairs(conn, API_FETCH)
        if len(fetch) >= 10:
            out["fetch"].append(dict(client_port=port, **fetch_report(fetch)))
    return out


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    result = analyse(argv[1], int(argv[2]))
    if "--json" in argv:
        print(json.dumps(result, indent=1))
        return 0
    for r in result["produce"]:
        print(f"produce, client port {r['client_port']}: {r['requests']} requests in {r['window_s']} s; broker held "
              f"each p50 {r['broker_holds_ms']['p50']} ms, p90 {r['broker_holds_ms']['p90']} ms; broker held none "
              f"{r['share_broker_holds_none']:.1%} of the window")
    for r in result["fetch"]:
        print(f"fetch, client port {r['client_port']}: {r['fetches']} fetches in {r['window_s']} s; waiting for the "
              f"broker {r['share_waiting_for_broker']:.1%} (first byte p50 {r['first_byte_ms']['p50']} ms), response "
              f"in transit {r['share_response_in_transit']:.1%}, no fetch outstanding "
              f"{r['share_no_fetch_outstanding']:.1%}")
    for w in result["warnings"]:
        print(f"warning: {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
