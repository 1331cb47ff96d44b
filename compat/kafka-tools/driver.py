#!/usr/bin/env python3
"""Kafka's own command-line tools (kafka-tools 4.3.1) against one broker: the scenarios of the
`kafka-tools` suite of the compatibility matrix (compat/kafka-tools/suite.py runs this).

    driver.py --bootstrap HOST:PORT --out DIR --json FILE [--tests a,b,...] [--list]

- TopicCommand and ConsumerGroupCommand run in one shared JVM (ToolRunner.java: their `main` is
  called with Kafka's Exit procedure replaced, standard output and error captured), so each
  command does not pay a JVM start-up.
- VerifiableProducer and VerifiableConsumer run as separate JVMs (one per group member, so a
  member can be stopped cleanly with SIGTERM or killed with SIGKILL). Their JSON event lines are
  read by one thread per process; the scenarios wait for conditions on those events with
  deadlines (a condition variable, no fixed sleeps). The scenarios are those of Kafka's consumer
  system tests (tests/kafkatest/tests/client/consumer_test.py), written here from scratch.

Every child runs in the driver's process group, is killed at the end of each scenario (also on
failure), and the whole group is killed by compat/run if the driver is interrupted.
Per-process output: DIR/procs/NAME.stdout|stderr; the driver's own log: DIR/driver.log.
"""
import argparse
import base64
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
COMPAT = os.path.dirname(HERE)
KAFKA_SCRIPT = os.path.join(COMPAT, "kafka", "kafka")
TOOLS_LOG4J = os.path.join(COMPAT, "kafka", "log4j2-tools.properties")
DEBUG_LOG4J = os.path.join(HERE, "log4j2-debug.properties")

TOPIC_CMD = "org.apache.kafka.tools.TopicCommand"
GROUP_CMD = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
V_PRODUCER = "org.apache.kafka.tools.VerifiableProducer"
V_CONSUMER = "org.apache.kafka.tools.VerifiableConsumer"

ASSIGNORS = {
    "range": "org.apache.kafka.clients.consumer.RangeAssignor",
    "roundrobin": "org.apache.kafka.clients.consumer.RoundRobinAssignor",
    "sticky": "org.apache.kafka.clients.consumer.StickyAssignor",
    "cooperative_sticky": "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
}

SESSION_MS = 6000  # group.min.session.timeout.ms of both brokers
STATIC_SESSION_MS = 30000  # static members must restart (a JVM start) within it; Kafka's test uses 60 s
HEARTBEAT_MS = 1000

# JVM options for the short-lived client JVMs: quick start-up matters more than peak speed here.
JAVA = os.environ.get("JAVA", "java")  # as compat/kafka/kafka
CLIENT_JVM = ["-Xmx192M", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
              "-Djava.awt.headless=true"]

OUT = None
LOG_LOCK = threading.Lock()
COND = threading.Condition()  # every process event notifies it; scenarios wait on it
CLASSPATH = None
BOOTSTRAP = None
LOG4J = TOOLS_LOG4J


class Fail(Exception):
    pass


def log(msg):
    line = f"[{datetime.datetime.now().strftime('%H:%M:%S.%f')[:-3]}] {msg}"
    with LOG_LOCK:
        with open(os.path.join(OUT, "driver.log"), "a") as f:
            f.write(line + "\n")
    print(line, file=sys.stderr, flush=True)


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def await_cond(pred, timeout, what):
    """Waits until pred() (evaluated under COND) is true; Fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    with COND:
        while True:
            v = pred()
            if v:
                return v
            left = end - time.monotonic()
            if left <= 0:
                raise Fail(f"timed out after {timeout:.0f} s waiting for {what}")
            COND.wait(min(left, 1.0))  # re-evaluates process exits too


CDS_ARCHIVE = None  # class-data archive of the client JVMs (see make_cds_archive), when there is one


def java(main_class, args, jvm=CLIENT_JVM):
    cds = [f"-XX:SharedArchiveFile={CDS_ARCHIVE}"] if CDS_ARCHIVE and os.path.exists(CDS_ARCHIVE) else []
    return ([JAVA] + jvm + cds + [f"-Dlog4j2.configurationFile={LOG4J}", "-cp", CLASSPATH, main_class]
            + list(args))


def make_cds_archive(path):
    """A dynamic AppCDS archive of the classes a VerifiableConsumer loads (about 0.5 s less per JVM
    start-up, and there are dozens). Made once per classpath: a consumer reads one record of a
    warm-up topic with -XX:ArchiveClassesAtExit. Without it (failure) the JVMs just start slower."""
    global CDS_ARCHIVE
    if not os.path.exists(path):
        create_topic("kt-warmup", 1)
        TOOLS.produce("kt-warmup", 0, 1, int(time.time() * 1000), "warm-")
        tmp = f"{path}.{os.getpid()}.tmp"
        c = Consumer("cds-warmup", "kt-warmup", "kt-warmup-group", max_messages=1,
                     jvm_extra=[f"-XX:ArchiveClassesAtExit={tmp}"])
        try:
            await_cond(c.dead, 60, "the warm-up consumer")
        except Fail as e:
            log(f"no class-data archive: {e}")
        finally:
            kill_all()
        if c.proc.returncode == 0 and os.path.exists(tmp):
            os.replace(tmp, path)
            log(f"class-data archive {path} written")
        else:
            log(f"no class-data archive (status {c.proc.returncode})")
            return
    CDS_ARCHIVE = path


# ---------------------------------------------------------------------------------------------
# the shared tools JVM


class Tools:
    """ToolRunner: one JVM that runs TopicCommand / ConsumerGroupCommand / PRODUCE requests."""

    def __init__(self, classes_dir):
        self.classes_dir = classes_dir
        self.proc = None
        self.n = 0
        self.lock = threading.Lock()  # one request at a time (scenarios may run in threads)

    def start(self):
        self.n += 1
        err = open(os.path.join(OUT, "procs", f"tools-{self.n}.stderr"), "wb")
        cmd = ([JAVA, "-Xmx256M", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                f"-Dlog4j2.configurationFile={LOG4J}", "-cp", f"{self.classes_dir}:{CLASSPATH}", "ToolRunner"])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        self.lines = []
        self.eof = False
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        self._next_line(60, "ToolRunner start-up")

    def _read(self, proc):
        for raw in proc.stdout:
            with COND:
                if proc is self.proc:
                    self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                COND.notify_all()
        with COND:
            if proc is self.proc:
                self.eof = True
            COND.notify_all()

    def _next_line(self, timeout, what):
        def ready():
            return self.lines or self.eof
        await_cond(ready, timeout, what)
        with COND:
            if not self.lines:
                raise Fail(f"ToolRunner exited during {what} (status {self.proc.wait()})")
            return self.lines.pop(0)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def request(self, fields, timeout=60):
        with self.lock:
            return self._request(fields, timeout)

    def _request(self, fields, timeout):
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        line = "\t".join(fields)
        assert "\n" not in line
        what = " ".join(fields[:4])
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        try:
            res = self._next_line(timeout, what)
        except Fail:
            self.stop()  # a hung tool: the next request gets a fresh JVM
            raise
        _, status, out, err = res.split(" ")
        return int(status), base64.b64decode(out).decode(), base64.b64decode(err).decode()

    def run(self, cls, *args, timeout=60):
        status, out, err = self.request(["RUN", cls] + [str(a) for a in args], timeout)
        short = cls.rsplit(".", 1)[1]
        with LOG_LOCK, open(os.path.join(OUT, "tools.log"), "a") as f:
            f.write(f"$ {short} {' '.join(map(str, args))}\n[status {status}]\n{out}")
            if err:
                f.write(f"[stderr]\n{err}")
            f.write("\n")
        return status, out, err

    def topic(self, *args, **kw):
        return self.run(TOPIC_CMD, "--bootstrap-server", BOOTSTRAP, *args, **kw)

    def group(self, *args, **kw):
        return self.run(GROUP_CMD, "--bootstrap-server", BOOTSTRAP, *args, **kw)

    def produce(self, topic, partition, count, ts_ms, prefix):
        status, out, err = self.request(["PRODUCE", BOOTSTRAP, topic, str(partition), str(count),
                                         str(ts_ms), prefix])
        check(status == 0, f"PRODUCE to {topic}-{partition} failed: {err.strip()[-500:]}")
        first, last = map(int, out.split())
        return first, last


TOOLS = None


def create_topic(name, partitions, *configs):
    args = ["--create", "--topic", name, "--partitions", str(partitions), "--replication-factor", "1"]
    for c in configs:
        args += ["--config", c]
    status, out, err = TOOLS.topic(*args)
    check(status == 0 and f"Created topic {name}." in out,
          f"TopicCommand --create {name}: status {status}, {out.strip()} {err.strip()[-300:]}")


# ---------------------------------------------------------------------------------------------
# client JVMs: VerifiableProducer, VerifiableConsumer


ALL_PROCS = []  # every child of the driver (killed when it exits, whatever happens)
SCOPE = threading.local()  # .procs: every child started by the current scenario (killed at its end)


def my_procs():
    if not hasattr(SCOPE, "procs"):
        SCOPE.procs = []
    return SCOPE.procs


class Proc:
    """A JVM whose stdout is JSON event lines; a thread appends them to .events under COND."""

    def __init__(self, name, cmd):
        self.name = name
        self.events = []
        self.eof = False
        self.started = time.monotonic()
        base = os.path.join(OUT, "procs", name)
        self.stdout_log = open(base + ".stdout", "w")
        self.stderr_path = base + ".stderr"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=open(self.stderr_path, "wb"))
        my_procs().append(self)
        ALL_PROCS.append(self)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            self.stdout_log.write(line)
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with COND:
                ev["_t"] = time.monotonic()
                self.on_event(ev)
                self.events.append(ev)
                COND.notify_all()
        self.stdout_log.flush()
        with COND:
            self.eof = True
            COND.notify_all()

    def on_event(self, ev):
        pass

    def alive(self):
        return self.proc.poll() is None

    def dead(self):
        """Exited and all its output read."""
        return self.proc.poll() is not None and self.eof

    def stop(self):
        """SIGTERM (a clean shutdown through the tools' shutdown hooks)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()


class Producer(Proc):
    def __init__(self, name, topic, throughput=200, max_messages=-1):
        self.acked = {}  # partition -> set of offsets
        self.n_acked = 0
        self.n_failed = 0
        super().__init__(name, java(V_PRODUCER, [
            "--topic", topic, "--bootstrap-server", BOOTSTRAP, "--throughput", str(throughput),
            "--max-messages", str(max_messages), "--acks", "-1",
            # keys 0..11: records spread over the partitions (without keys the sticky partitioner
            # may fill one partition for a whole scenario)
            "--repeating-keys", "12"]))

    def on_event(self, ev):
        if ev.get("name") == "producer_send_success":
            self.acked.setdefault(ev["partition"], set()).add(ev["offset"])
            self.n_acked += 1
        elif ev.get("name") == "producer_send_error":
            self.n_failed += 1


CONFIG_LOCK = threading.Lock()


def consumer_config(session_ms):
    """The --command-config file of the consumers (written once per session timeout)."""
    path = os.path.join(OUT, f"consumer-{session_ms}.properties")
    with CONFIG_LOCK:
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(f"session.timeout.ms={session_ms}\nheartbeat.interval.ms={HEARTBEAT_MS}\n")
    return path


class Consumer(Proc):
    """One VerifiableConsumer process and what its events say."""

    def __init__(self, name, topic, group, assignor="range", instance_id=None, session_ms=SESSION_MS,
                 max_messages=-1, enable_autocommit=False, jvm_extra=()):
        self.assignment = set()
        self.joined = False
        self.n_assigned = 0  # partitions_assigned events (one per completed rebalance)
        self.n_revoked = 0  # partitions_revoked events with at least one partition
        self.consumed = {}  # partition -> list of (min, max)
        self.total = 0
        self.position = {}  # partition -> next offset after the last consumed record
        self.committed = {}  # partition -> last successfully committed offset
        self.failed_commits = []
        self.violations = []  # records consumed from a partition not assigned at that moment
        self.shutdown_complete = False
        args = ["--topic", topic, "--group-id", group, "--bootstrap-server", BOOTSTRAP,
                "--session-timeout", str(session_ms), "--reset-policy", "earliest",
                "--assignment-strategy", ASSIGNORS[assignor],
                "--command-config", consumer_config(session_ms), "--max-messages", str(max_messages)]
        if instance_id:
            args += ["--group-instance-id", instance_id]
        if enable_autocommit:
            args.append("--enable-autocommit")
        super().__init__(name, java(V_CONSUMER, args, CLIENT_JVM + list(jvm_extra)))

    def on_event(self, ev):
        n = ev.get("name")
        if n == "partitions_assigned":
            self.assignment |= {p["partition"] for p in ev["partitions"]}
            self.joined = True
            self.n_assigned += 1
        elif n == "partitions_revoked":
            self.assignment -= {p["partition"] for p in ev["partitions"]}
            if ev["partitions"]:
                self.n_revoked += 1
                self.joined = False
        elif n == "records_consumed":
            for s in ev.get("partitions", []):
                p = s["partition"]
                if p not in self.assignment:
                    self.violations.append(f"{self.name} consumed {p}:{s['minOffset']}-{s['maxOffset']} "
                                           f"while assigned {sorted(self.assignment)}")
                self.consumed.setdefault(p, []).append((s["minOffset"], s["maxOffset"]))
                self.total += s["count"]
                self.position[p] = s["maxOffset"] + 1
        elif n == "offsets_committed":
            if ev.get("success"):
                for o in ev.get("offsets", []):
                    self.committed[o["partition"]] = o["offset"]
            else:
                self.failed_commits.append(ev.get("error"))
        elif n == "shutdown_complete":
            self.shutdown_complete = True
            self.joined = False


class Group:
    """The members of one group over a scenario: slot i holds its current process, and every
    process ever started stays in .history (their records count for loss/duplicate checks)."""

    def __init__(self, prefix, topic, group, partitions, n, **kw):
        self.prefix, self.topic, self.group, self.partitions, self.kw = prefix, topic, group, partitions, kw
        self.slots = [None] * n
        self.history = []
        self.starts = 0

    def start(self, i, **extra):
        self.starts += 1
        kw = dict(self.kw, **extra)
        c = Consumer(f"{self.prefix}-m{i}-{self.starts}", self.topic, self.group, **kw)
        self.slots[i] = c
        self.history.append(c)
        return c

    def alive(self):
        return [c for c in self.slots if c is not None and c.alive()]

    def valid_assignment(self, n_members=None):
        """Every live member joined, and each partition assigned to exactly one of them."""
        members = self.alive()
        if n_members is not None and len(members) != n_members:
            return False
        if not all(c.joined for c in members):
            return False
        seen = []
        for c in members:
            seen += list(c.assignment)
        return sorted(seen) == list(range(self.partitions))

    def await_stable(self, n_members, timeout, what="a valid assignment"):
        await_cond(lambda: self.valid_assignment(n_members), timeout,
                   f"{what}: {n_members} members, each of {self.partitions} partitions owned once "
                   f"(now: {self.describe()})")

    def describe(self):
        return ", ".join(f"{c.name}{'' if c.alive() else '(dead)'}:{'J' if c.joined else '-'}"
                         f"{sorted(c.assignment)}" for c in self.slots if c is not None)

    def total(self):
        return sum(c.total for c in self.history)

    def await_consumed(self, n, timeout, what="consumption"):
        target = self.total() + n
        await_cond(lambda: self.total() >= target, timeout,
                   f"{what}: {n} more records consumed by the group (total {self.total()} of {target})")

    def stop(self, i, timeout=30):
        c = self.slots[i]
        c.stop()
        await_cond(c.dead, timeout, f"{c.name} to shut down on SIGTERM")
        check(c.shutdown_complete, f"{c.name} exited without shutdown_complete (status {c.proc.returncode})")

    def stop_all(self, timeout=30):
        for c in self.alive():
            c.stop()
        for c in self.slots:
            if c is not None:
                await_cond(c.dead, timeout, f"{c.name} to shut down on SIGTERM")

    def records(self):
        """partition -> {offset: times consumed} over every process of the group."""
        seen = {}
        for c in self.history:
            for p, ranges in c.consumed.items():
                d = seen.setdefault(p, {})
                for lo, hi in ranges:
                    for o in range(lo, hi + 1):
                        d[o] = d.get(o, 0) + 1
        return seen

    def check_no_loss(self, producer):
        """Every partition was consumed from offset 0 up to its position without a gap, and every
        offset the producer had acknowledged below that position was consumed."""
        seen = self.records()
        for p in range(self.partitions):
            d = seen.get(p, {})
            pos = max(d) + 1 if d else 0
            gaps = [o for o in range(pos) if o not in d]
            check(not gaps, f"partition {p}: {len(gaps)} offsets below position {pos} never consumed "
                            f"(first {gaps[:5]})")
            if producer:
                missing = [o for o in producer.acked.get(p, ()) if o < pos and o not in d]
                check(not missing, f"partition {p}: acknowledged offsets not consumed: {missing[:5]}")
        return seen

    def duplicates(self):
        return {p: sorted(o for o, k in d.items() if k > 1) for p, d in self.records().items()
                if any(k > 1 for k in d.values())}

    def check_violations(self):
        v = [x for c in self.history for x in c.violations]
        check(not v, f"records consumed from unassigned partitions: {v[:3]}")

    def check_final_commit(self):
        """After a clean stop of every member: the last commit of each partition == its position."""
        last = {}
        for c in self.history:
            for ev in c.events:
                if ev.get("name") == "offsets_committed" and ev.get("success"):
                    for o in ev["offsets"]:
                        if o["partition"] not in last or ev["_t"] >= last[o["partition"]][0]:
                            last[o["partition"]] = (ev["_t"], o["offset"])
        seen = self.records()
        for p, d in seen.items():
            pos = max(d) + 1
            got = last.get(p, (0, None))[1]
            check(got == pos, f"partition {p}: last committed offset {got} != consumed position {pos}")


def kill_all():
    procs = my_procs()
    for p in procs:
        if p.proc.poll() is None:
            p.proc.kill()
    for p in procs:
        try:
            p.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
    procs.clear()


# ---------------------------------------------------------------------------------------------
# TopicCommand


def parse_describe_topic(out):
    """TopicCommand --describe -> {name: {"PartitionCount": .., "Configs": {..}, "partitions": {p: {..}}}}"""
    topics = {}
    for line in out.splitlines():
        fields = dict(re.findall(r"(\w+): ?([^\t]*)", line))
        if "Topic" not in fields:
            continue
        t = topics.setdefault(fields["Topic"], {"partitions": {}})
        if "Partition" in fields:
            t["partitions"][int(fields["Partition"])] = fields
        else:
            t.update(fields)
            cfg = fields.get("Configs", "").strip()
            t["Configs"] = dict(kv.split("=", 1) for kv in cfg.split(",") if "=" in kv)
    return topics


def test_topic_create():
    # configs Sluice honours (README: cleanup.policy=compact is refused, compaction is not served)
    create_topic("kt-topic", 3, "retention.ms=123456789", "max.message.bytes=200000")


def test_topic_list():
    status, out, _ = TOOLS.topic("--list")
    check(status == 0, f"--list: status {status}")
    check("kt-topic" in out.split(), f"--list does not name kt-topic: {out!r}")
    status, out, _ = TOOLS.topic("--list", "--exclude-internal")
    check(status == 0 and "kt-topic" in out.split() and "__consumer_offsets" not in out.split(),
          f"--list --exclude-internal: status {status}: {out!r}")


def test_topic_list_internal():
    """Once a group has committed offsets, __consumer_offsets exists: TopicCommand --list (Admin
    listTopics with internal topics, a Metadata request for all topics) names it, and --describe
    shows it (Kafka: one partition here, offsets.topic.num.partitions=1)."""
    # a group's first offset commit (here through --reset-offsets --execute on a new group)
    # creates __consumer_offsets on Kafka
    TOOLS.topic("--create", "--topic", "kt-internal", "--partitions", "1", "--if-not-exists")
    status, out, err = TOOLS.group("--reset-offsets", "--group", "kt-internal-group", "--topic", "kt-internal",
                                   "--to-earliest", "--execute")
    check(status == 0 and "kt-internal-group" in out, f"--reset-offsets on a new group: {out} {err[-300:]}")
    status, out, _ = TOOLS.topic("--list")
    check(status == 0 and "__consumer_offsets" in out.split(),
          f"--list does not name __consumer_offsets after offsets were committed: {out!r}")
    status, out, err = TOOLS.topic("--describe", "--topic", "__consumer_offsets")
    t = parse_describe_topic(out).get("__consumer_offsets")
    check(status == 0 and t and t["partitions"], f"--describe --topic __consumer_offsets: status {status}: "
                                                 f"{out.strip()[-300:]} {err.strip()[-300:]}")


def test_topic_describe():
    status, out, err = TOOLS.topic("--describe", "--topic", "kt-topic")
    check(status == 0, f"--describe: status {status}: {err.strip()[-300:]}")
    t = parse_describe_topic(out).get("kt-topic")
    check(t, f"no description of kt-topic in {out!r}")
    check(t.get("PartitionCount") == "3", f"PartitionCount {t.get('PartitionCount')!r}, expected 3")
    check(t.get("ReplicationFactor") == "1", f"ReplicationFactor {t.get('ReplicationFactor')!r}")
    check(re.fullmatch(r"[A-Za-z0-9_-]{22}", t.get("TopicId", "")) is not None, f"TopicId {t.get('TopicId')!r}")
    check(t["Configs"].get("retention.ms") == "123456789", f"Configs {t['Configs']}: retention.ms missing")
    check(t["Configs"].get("max.message.bytes") == "200000", f"Configs {t['Configs']}: max.message.bytes missing")
    check(sorted(t["partitions"]) == [0, 1, 2], f"partitions {sorted(t['partitions'])}")
    for p, f in t["partitions"].items():
        leader = f.get("Leader", "").strip()
        check(re.fullmatch(r"\d+", leader) is not None, f"partition {p}: Leader {leader!r}")
        check(f.get("Replicas", "").strip() == leader, f"partition {p}: Replicas {f.get('Replicas')!r} != leader {leader}")
        check(f.get("Isr", "").strip() == leader, f"partition {p}: Isr {f.get('Isr')!r} != leader {leader}")
    # the configs of a topic as Kafka's kafka-configs would show them are the same DescribeConfigs
    status, out, _ = TOOLS.topic("--describe", "--topic", "kt-topic", "--topics-with-overrides")
    check(status == 0 and "kt-topic" in out, f"--topics-with-overrides does not show kt-topic: {out!r}")


def test_topic_alter_partitions():
    status, out, err = TOOLS.topic("--alter", "--topic", "kt-topic", "--partitions", "5")
    check(status == 0, f"--alter --partitions 5: status {status}: {out.strip()} {err.strip()[-300:]}")

    def five():
        s, o, _ = TOOLS.topic("--describe", "--topic", "kt-topic")
        t = parse_describe_topic(o).get("kt-topic", {})
        return t.get("PartitionCount") == "5" and sorted(t["partitions"]) == [0, 1, 2, 3, 4]
    poll_until(five, 15, "kt-topic described with 5 partitions")


def test_topic_alter_decrease_refused():
    status, out, err = TOOLS.topic("--alter", "--topic", "kt-topic", "--partitions", "2")
    check(status != 0, f"decreasing partitions 5 -> 2 succeeded (status 0): {out}")
    check("Error while executing topic command" in out, f"no error printed: {out.strip()} {err.strip()[-300:]}")
    _, out, _ = TOOLS.topic("--describe", "--topic", "kt-topic")
    pc = parse_describe_topic(out).get("kt-topic", {}).get("PartitionCount")
    check(pc == "5", f"PartitionCount {pc} after a refused decrease, expected 5")


def test_topic_create_existing():
    status, out, err = TOOLS.topic("--create", "--topic", "kt-topic", "--partitions", "1")
    check(status != 0, f"creating an existing topic: status 0: {out}")
    check("already exists" in out + err, f"no 'already exists' in {out.strip()} {err.strip()[-300:]}")
    status, out, err = TOOLS.topic("--create", "--topic", "kt-topic", "--partitions", "1", "--if-not-exists")
    check(status == 0, f"--create --if-not-exists of an existing topic: status {status}: {out} {err[-300:]}")


def test_topic_describe_unknown():
    status, out, err = TOOLS.topic("--describe", "--topic", "kt-no-such-topic")
    check(status != 0, f"--describe of an unknown topic: status 0: {out!r}")
    check("kt-no-such-topic" in out + err and ("does not exist" in out + err or "UnknownTopicOrPartition" in out + err),
          f"no 'does not exist' error naming the topic in {out.strip()} {err.strip()[-300:]}")


def test_topic_create_invalid():
    """CreateTopics refused by the broker: a replication factor above the number of brokers
    (INVALID_REPLICATION_FACTOR), an unknown topic config (INVALID_CONFIG); nothing is created."""
    status, out, err = TOOLS.topic("--create", "--topic", "kt-bad-rf", "--partitions", "1", "--replication-factor", "2")
    check(status != 0 and "Error while executing topic command" in out,
          f"--replication-factor 2 on one broker: status {status}: {out.strip()} {err.strip()[-300:]}")
    status, out, err = TOOLS.topic("--create", "--topic", "kt-bad-config", "--partitions", "1",
                                   "--config", "no.such.config=1")
    check(status != 0 and "Error while executing topic command" in out,
          f"--config no.such.config=1: status {status}: {out.strip()} {err.strip()[-300:]}")
    status, out, err = TOOLS.topic("--create", "--topic", "kt-bad-value", "--partitions", "1",
                                   "--config", "retention.ms=not-a-number")
    check(status != 0 and "Error while executing topic command" in out,
          f"--config retention.ms=not-a-number: status {status}: {out.strip()} {err.strip()[-300:]}")
    _, out, _ = TOOLS.topic("--list")
    made = [t for t in ("kt-bad-rf", "kt-bad-config", "kt-bad-value") if t in out.split()]
    check(not made, f"refused topics were created anyway: {made}")


def test_topic_delete():
    status, out, err = TOOLS.topic("--delete", "--topic", "kt-topic")
    check(status == 0, f"--delete: status {status}: {out} {err[-300:]}")

    def gone():
        _, o, _ = TOOLS.topic("--list")
        return "kt-topic" not in o.split()
    poll_until(gone, 20, "kt-topic gone from --list")
    status, out, err = TOOLS.topic("--delete", "--topic", "kt-topic")
    check(status != 0, f"--delete of a deleted topic: status 0: {out}")


def poll_until(fn, timeout, what):
    """Repeats a tool request until it shows the expected state (the request is the wait)."""
    end = time.monotonic() + timeout
    while True:
        if fn():
            return
        if time.monotonic() > end:
            raise Fail(f"timed out after {timeout} s waiting for {what}")


# ---------------------------------------------------------------------------------------------
# ConsumerGroupCommand

CG_TOPIC = "kt-cg"
CG_GROUP = "kt-cg-group"
CG_PARTS = 3
T0 = 1577836800000  # 2020-01-01T00:00:00Z: the first 20 records of each partition
T1 = 1609459200000  # 2021-01-01T00:00:00Z: the next 20
BOUNDARY = "2020-07-01T00:00:00.000"  # between them (given with a Z: UTC)
CG = {}


def parse_table(out, first_col="GROUP"):
    """The table printed by ConsumerGroupCommand -> list of {column: value}."""
    rows, header = [], None
    for line in out.splitlines():
        cols = line.split()
        if not cols:
            continue
        if cols[0] == first_col and len(cols) > 2 and cols[1].isupper():
            header = cols
            continue
        if header and len(cols) == len(header):
            rows.append(dict(zip(header, cols)))
    return rows


def offsets(group=CG_GROUP, topic=CG_TOPIC):
    """partition -> CURRENT-OFFSET (int, or None for '-') from --describe."""
    status, out, err = TOOLS.group("--describe", "--group", group)
    check(status == 0, f"--describe --group {group}: status {status}: {out.strip()} {err.strip()[-300:]}")
    res = {}
    for r in parse_table(out):
        if r.get("TOPIC") == topic:
            v = r["CURRENT-OFFSET"]
            res[int(r["PARTITION"])] = None if v == "-" else int(v)
    return res


def cg_setup():
    """40 records in each of 3 partitions (20 at T0, 20 at T1), and a group that consumed them all
    with VerifiableConsumer (member still running: CG['member'])."""
    if CG.get("ready"):
        return
    create_topic(CG_TOPIC, CG_PARTS)
    for p in range(CG_PARTS):
        check(TOOLS.produce(CG_TOPIC, p, 20, T0, "old-") == (0, 19), "first 20 records not at offsets 0..19")
        check(TOOLS.produce(CG_TOPIC, p, 20, T1, "new-") == (20, 39), "next 20 records not at offsets 20..39")
    CG["ready"] = True


def cg_member():
    c = CG["member"] = Consumer("cg-member", CG_TOPIC, CG_GROUP)
    await_cond(lambda: all(c.committed.get(p) == 40 for p in range(CG_PARTS)), 60,
               f"cg-member to consume and commit 40 records of each partition (committed {c.committed})")
    CG["consumed"] = True
    return c


def test_group_describe_active():
    cg_setup()
    c = cg_member()
    status, out, err = TOOLS.group("--describe", "--group", CG_GROUP)
    check(status == 0, f"--describe: status {status}: {err.strip()[-300:]}")
    rows = [r for r in parse_table(out) if r.get("TOPIC") == CG_TOPIC]
    check(sorted(int(r["PARTITION"]) for r in rows) == [0, 1, 2], f"partitions in --describe: {out!r}")
    for r in rows:
        check(r["CURRENT-OFFSET"] == "40" and r["LOG-END-OFFSET"] == "40" and r["LAG"] == "0",
              f"row {r}: expected offset 40, end 40, lag 0")
        check(r["CONSUMER-ID"] != "-" and r["HOST"] != "-" and r["CLIENT-ID"] != "-",
              f"row {r}: the active member's id/host/client-id are missing")
    status, out, _ = TOOLS.group("--describe", "--group", CG_GROUP, "--state")
    st = parse_table(out)
    check(st and st[0].get("STATE") == "Stable" and st[0].get("#MEMBERS") == "1"
          and st[0].get("ASSIGNMENT-STRATEGY") == "range", f"--state: {out!r}")
    status, out, _ = TOOLS.group("--describe", "--group", CG_GROUP, "--members", "--verbose")
    m = parse_table(out)
    check(len(m) == 1 and m[0].get("#PARTITIONS") == "3" and f"{CG_TOPIC}:0,1,2" in out,
          f"--members --verbose: {out!r}")
    status, out, _ = TOOLS.group("--list")
    check(CG_GROUP in out.split(), f"--list does not name {CG_GROUP}: {out!r}")


def active_member():
    c = CG.get("member")
    if c is None or not c.alive():
        cg_setup()
        c = cg_member()
    return c


def test_group_reset_refused_active():
    active_member()
    status, out, err = TOOLS.group("--reset-offsets", "--group", CG_GROUP, "--topic", CG_TOPIC,
                                   "--to-earliest", "--execute")
    text = out + err
    check("inactive" in text and "Stable" in text,
          f"reset of an active group not refused with 'can only be reset if the group is inactive': {text.strip()[-400:]}")
    check(offsets() == {0: 40, 1: 40, 2: 40}, f"offsets changed by a refused reset: {offsets()}")


def test_group_delete_refused_nonempty():
    active_member()
    status, out, err = TOOLS.group("--delete", "--group", CG_GROUP)
    text = out + err
    check(status != 0 or "NON_EMPTY_GROUP" in text or "not empty" in text.lower(), f"--delete of a non-empty group: {text!r}")
    check("NonEmptyGroup" in text or "not empty" in text.lower() or "NON_EMPTY_GROUP" in text,
          f"no 'group is not empty' error: {text.strip()[-400:]}")
    status, out, _ = TOOLS.group("--list")
    check(CG_GROUP in out.split(), "the group is gone after a refused --delete")


def stop_active_member():
    """The group with its offsets at 40 committed and no member left (Empty)."""
    c = CG.pop("member", None)
    if c is None and not CG.get("consumed"):
        cg_setup()
        c = cg_member()
    if c is not None and c.alive():
        c.stop()
        await_cond(c.dead, 30, f"{c.name} to shut down")

    def empty():
        _, o, _ = TOOLS.group("--describe", "--group", CG_GROUP, "--state")
        st = parse_table(o)
        return st and st[0].get("STATE") == "Empty"
    poll_until(empty, 20, f"{CG_GROUP} to be Empty")


def test_group_describe_empty():
    stop_active_member()
    status, out, err = TOOLS.group("--describe", "--group", CG_GROUP)
    check(status == 0, f"status {status}")
    check(f"Consumer group '{CG_GROUP}' has no active members." in out + err,
          f"no 'has no active members': {out!r} {err[-300:]!r}")
    rows = [r for r in parse_table(out) if r.get("TOPIC") == CG_TOPIC]
    check(len(rows) == 3 and all(r["CURRENT-OFFSET"] == "40" and r["LAG"] == "0" and r["CONSUMER-ID"] == "-"
                                 for r in rows), f"rows {rows}")


def reset(*how, execute=True, expect=None, what=""):
    """--reset-offsets HOW on the whole topic; checks the NEW-OFFSET column == expect (dict)."""
    args = ["--reset-offsets", "--group", CG_GROUP, "--topic", CG_TOPIC] + list(how)
    if execute:
        args.append("--execute")
    status, out, err = TOOLS.group(*args)
    check(status == 0, f"--reset-offsets {' '.join(how)}: status {status}: {out.strip()} {err.strip()[-400:]}")
    rows = parse_table(out)
    got = {int(r["PARTITION"]): int(r["NEW-OFFSET"]) for r in rows if r.get("TOPIC") == CG_TOPIC}
    if expect is not None:
        check(got == expect, f"--reset-offsets {' '.join(how)}{'' if execute else ' (preview)'}: "
                             f"NEW-OFFSET {got}, expected {expect}")
    return got


def all_parts(v):
    return {p: v for p in range(CG_PARTS)}


def test_group_reset_preview():
    stop_active_member()
    before = offsets()
    reset("--to-earliest", execute=False, expect=all_parts(0))
    check(offsets() == before, f"a preview (no --execute) changed the offsets: {before} -> {offsets()}")
    reset("--to-offset", "3", "--dry-run", execute=False, expect=all_parts(3))
    check(offsets() == before, f"--dry-run changed the offsets: {before} -> {offsets()}")


def test_group_reset_to_earliest():
    stop_active_member()
    reset("--to-earliest", expect=all_parts(0))
    check(offsets() == all_parts(0), f"committed offsets after --to-earliest --execute: {offsets()}")


def test_group_reset_to_latest():
    stop_active_member()
    reset("--to-earliest")
    reset("--to-latest", expect=all_parts(40))
    check(offsets() == all_parts(40), f"committed offsets after --to-latest: {offsets()}")


def test_group_reset_to_offset():
    stop_active_member()
    reset("--to-offset", "7", expect=all_parts(7))
    check(offsets() == all_parts(7), f"committed offsets after --to-offset 7: {offsets()}")
    reset("--to-offset", "1000", expect=all_parts(40))  # beyond the end: clamped to the end


def test_group_reset_shift_by():
    stop_active_member()
    reset("--to-offset", "7")
    reset("--shift-by", "5", expect=all_parts(12))
    check(offsets() == all_parts(12), f"after --shift-by 5 from 7: {offsets()}")
    reset("--shift-by", "-20", expect=all_parts(0))  # before the start: clamped to the earliest
    check(offsets() == all_parts(0), f"after --shift-by -20 from 12: {offsets()}")


def test_group_reset_to_datetime():
    """ListOffsets by timestamp: the first record at or after 2020-07-01 is offset 20; then a
    VerifiableConsumer of the group starts exactly there."""
    stop_active_member()
    reset("--to-earliest")
    reset("--to-datetime", BOUNDARY + "Z", expect=all_parts(20))
    check(offsets() == all_parts(20), f"after --to-datetime: {offsets()}")
    reset("--to-datetime", "2019-01-01T00:00:00.000Z", expect=all_parts(0))
    reset("--to-datetime", "2030-01-01T00:00:00.000Z", expect=all_parts(40))
    reset("--to-datetime", BOUNDARY + "Z", expect=all_parts(20))
    c = Consumer("cg-verify", CG_TOPIC, CG_GROUP, max_messages=60)
    await_cond(c.dead, 60, "cg-verify to consume 60 records and exit")
    firsts = {p: r[0][0] for p, r in c.consumed.items()}
    check(firsts == all_parts(20), f"a consumer of the group started at {firsts}, expected 20 on each partition")
    check(c.total == 60 and all(c.position.get(p) == 40 for p in range(CG_PARTS)),
          f"consumed {c.total} records, positions {c.position}")


def test_group_reset_by_duration():
    stop_active_member()
    reset("--to-earliest")
    boundary = datetime.datetime(2020, 7, 1, tzinfo=datetime.timezone.utc)
    secs = int((datetime.datetime.now(datetime.timezone.utc) - boundary).total_seconds())
    reset("--by-duration", f"PT{secs}S", expect=all_parts(20))
    check(offsets() == all_parts(20), f"after --by-duration: {offsets()}")


def test_group_delete_offsets():
    stop_active_member()
    reset("--to-offset", "5")
    status, out, err = TOOLS.group("--delete-offsets", "--group", CG_GROUP, "--topic", f"{CG_TOPIC}:0")
    check(status == 0, f"--delete-offsets: status {status}: {out} {err[-300:]}")
    rows = parse_table(out, "TOPIC")
    check(any(r.get("PARTITION") == "0" and r.get("STATUS") == "Successful" for r in rows),
          f"--delete-offsets did not report partition 0 Successful: {out!r}")
    got = offsets()
    check(got.get(0) is None and got.get(1) == 5 and got.get(2) == 5,
          f"after deleting partition 0's offset: {got} (expected no offset for 0, 5 for 1 and 2)")


def test_group_delete_offsets_refused_subscribed():
    """OffsetDelete for a topic the active group subscribes to: GROUP_SUBSCRIBED_TO_TOPIC per
    partition, the offsets stay."""
    active_member()
    status, out, err = TOOLS.group("--delete-offsets", "--group", CG_GROUP, "--topic", CG_TOPIC)
    text = out + err
    check("subscribed to the topic" in text or "GroupSubscribedToTopic" in text,
          f"--delete-offsets of a subscribed topic not refused with GROUP_SUBSCRIBED_TO_TOPIC: {text.strip()[-500:]}")
    check(offsets() == all_parts(40), f"offsets changed by a refused --delete-offsets: {offsets()}")


def test_group_list_filters():
    """ListGroups with filters: --list --state Stable names the active group, --state Empty does
    not; --list --type classic names it; --describe --all-groups covers it."""
    active_member()
    status, out, err = TOOLS.group("--list", "--state", "Stable")
    check(status == 0 and CG_GROUP in out.split(), f"--list --state Stable: {out!r} {err[-300:]}")
    status, out, err = TOOLS.group("--list", "--state", "Empty")
    check(status == 0 and CG_GROUP not in out.split(), f"--list --state Empty names the active group: {out!r}")
    status, out, err = TOOLS.group("--list", "--type", "classic")
    check(status == 0 and CG_GROUP in out.split(), f"--list --type classic: {out!r} {err[-300:]}")
    status, out, err = TOOLS.group("--describe", "--all-groups", "--state")
    st = {r["GROUP"]: r for r in parse_table(out)}
    check(st.get(CG_GROUP, {}).get("STATE") == "Stable", f"--describe --all-groups --state: {out!r} {err[-300:]}")


def test_group_reset_export_import():
    """--reset-offsets --export (a dry run printing CSV) and --from-file --execute; partition
    lists (--topic T:1,2)."""
    stop_active_member()
    reset("--to-offset", "10")
    status, out, err = TOOLS.group("--reset-offsets", "--group", CG_GROUP, "--topic", f"{CG_TOPIC}:1,2",
                                   "--to-offset", "4", "--export")
    check(status == 0, f"--export: status {status}: {err[-300:]}")
    lines = sorted(l.strip() for l in out.splitlines() if l.strip())
    want = [f"{CG_TOPIC},1,4", f"{CG_TOPIC},2,4"]  # one group: TOPIC,PARTITION,OFFSET
    check(lines == want, f"--export printed {lines}, expected {want}")
    check(offsets() == all_parts(10), f"--export changed the offsets: {offsets()}")
    path = os.path.join(OUT, "reset.csv")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    status, out, err = TOOLS.group("--reset-offsets", "--group", CG_GROUP, "--from-file", path, "--execute")
    check(status == 0, f"--from-file: status {status}: {out} {err[-300:]}")
    check(offsets() == {0: 10, 1: 4, 2: 4}, f"after --from-file: {offsets()}, expected {{0: 10, 1: 4, 2: 4}}")
    reset("--to-current", expect={0: 10, 1: 4, 2: 4})


def test_group_delete_empty():
    stop_active_member()
    status, out, err = TOOLS.group("--delete", "--group", CG_GROUP)
    check(status == 0 and "successful" in out.lower(), f"--delete of the empty group: status {status}: {out} {err[-300:]}")
    _, out, _ = TOOLS.group("--list")
    check(CG_GROUP not in out.split(), f"{CG_GROUP} still listed after --delete")
    status, out, err = TOOLS.group("--describe", "--group", CG_GROUP)
    # Kafka 4.3.1: GROUP_ID_NOT_FOUND, GroupIdNotFoundException with the broker's message
    # ("Group G not found."; older tools: "Consumer group 'G' does not exist.")
    check("GroupIdNotFoundException" in out + err or f"Consumer group '{CG_GROUP}' does not exist" in out + err,
          f"--describe of the deleted group: {out} {err[-300:]}")
    CG.clear()


# ---------------------------------------------------------------------------------------------
# VerifiableProducer / VerifiableConsumer: the scenarios of Kafka's consumer system tests


def test_consumer_rolling_bounce(bounces):
    """test_consumer_bounce (rolling, clean shutdown): members restarted one at a time while a
    producer writes; no record lost or consumed twice, each partition owned once at a time,
    consumption continues after each rejoin; the member kept alive sees eager revocations."""
    topic = f"kt-bounce-{bounces}"
    create_topic(topic, 3)
    prod = Producer(f"bounce{bounces}-producer", topic)
    await_cond(lambda: prod.n_acked >= 100, 60, "100 records acknowledged to the producer")
    g = Group(f"bounce{bounces}", topic, f"{topic}-group", 3, 3)
    for i in range(3):
        g.start(i)
    g.await_stable(3, 60, "3 members joined")
    g.await_consumed(1, 30)
    keep = g.slots[0]
    revokes0 = keep.n_revoked
    for _ in range(bounces):
        for i in (1, 2):
            g.stop(i)
            g.start(i)
            g.await_stable(3, 60, f"member {i} back in the group")
            g.await_consumed(1, 30, f"consumption after member {i} rejoined")
    check(keep.n_revoked > revokes0, "the member kept alive saw no revocation while others were bounced "
                                     "(eager protocol: every rebalance revokes all)")
    g.stop_all()
    prod.stop()
    check(prod.n_failed == 0, f"{prod.n_failed} failed sends")
    g.check_violations()
    g.check_no_loss(prod)
    dups = g.duplicates()
    check(not dups, f"records consumed twice after clean shutdowns: { {p: v[:5] for p, v in dups.items()} }")
    g.check_final_commit()


def test_consumer_hard_bounce():
    """test_consumer_failure (clean_shutdown=False): the owner of partition 0 is killed with
    SIGKILL; its partitions move to the others only after the session timeout; no record is lost
    and the only duplicates are records it consumed after its last commit."""
    create_topic("kt-kill", 3)
    prod = Producer("kill-producer", "kt-kill")
    g = Group("kill", "kt-kill", "kt-kill-group", 3, 3)
    for i in range(3):
        g.start(i)
    g.await_stable(3, 60, "3 members joined")
    await_cond(lambda: prod.n_acked >= 100, 60, "100 records acknowledged to the producer")
    g.await_consumed(100, 30)
    victim_i = next(i for i, c in enumerate(g.slots) if 0 in c.assignment)
    victim = g.slots[victim_i]
    owned = set(victim.assignment)
    victim.kill()
    t_kill = time.monotonic()
    await_cond(victim.dead, 10, "the killed member's output to end")
    last_commit = dict(victim.committed)
    position = dict(victim.position)
    g.slots[victim_i] = None
    g.await_stable(2, 2 * SESSION_MS / 1000 + 5, "the partitions of the killed member to move to the other two")
    moved_after = time.monotonic() - t_kill
    log(f"hard_bounce: partitions {sorted(owned)} moved {moved_after:.1f} s after SIGKILL")
    check(moved_after >= (SESSION_MS - 2 * HEARTBEAT_MS) / 1000 - 1,
          f"the killed member's partitions moved {moved_after:.1f} s after SIGKILL, before its session "
          f"timeout ({SESSION_MS} ms) could expire")
    g.await_consumed(300, 60, "consumption after the partitions moved")
    g.stop_all()
    prod.stop()
    g.check_violations()
    g.check_no_loss(prod)
    dups = g.duplicates()
    for p, offs in dups.items():
        lo, hi = last_commit.get(p, 0), position.get(p, 0)
        bad = [o for o in offs if not (p in owned and lo <= o < hi)]
        check(not bad, f"partition {p}: duplicates {bad[:5]} outside the killed member's uncommitted "
                       f"range [{lo}, {hi})")
    g.check_final_commit()


def test_static_bounce_no_rebalance():
    """test_static_consumer_bounce_with_eager_assignment (static, rolling): static members
    (group.instance.id) stopped and restarted within the session timeout cause no rebalance: the
    member kept alive sees no revocation and no new assignment, each restarted member gets its
    partitions back; no loss, no duplicates."""
    create_topic("kt-static", 3)
    prod = Producer("static-producer", "kt-static")
    g = Group("static", "kt-static", "kt-static-group", 3, 3, session_ms=STATIC_SESSION_MS)
    for i in range(3):
        g.start(i, instance_id=f"static-{i}")
    g.await_stable(3, 60, "3 static members joined")
    g.await_consumed(1, 30)
    keep = g.slots[0]
    before = (keep.n_assigned, keep.n_revoked)
    for i in (1, 2):
        old = set(g.slots[i].assignment)
        t0 = time.monotonic()
        g.stop(i)
        c = g.start(i, instance_id=f"static-{i}")
        await_cond(lambda: c.joined, STATIC_SESSION_MS / 1000, f"static member {i} to rejoin")
        log(f"static: member {i} back {time.monotonic() - t0:.1f} s after its stop")
        check(c.assignment == old, f"static member {i} got {sorted(c.assignment)} back, had {sorted(old)}")
        g.await_stable(3, 30)
        g.await_consumed(1, 30, f"consumption after static member {i} rejoined")
    check((keep.n_assigned, keep.n_revoked) == before,
          f"the member kept alive went through a rebalance (assigned/revoked events {before} -> "
          f"{(keep.n_assigned, keep.n_revoked)}) while static members restarted")
    g.stop_all()
    prod.stop()
    g.check_violations()
    g.check_no_loss(prod)
    dups = g.duplicates()
    check(not dups, f"records consumed twice: { {p: v[:5] for p, v in dups.items()} }")
    g.check_final_commit()


def test_static_fenced_by_duplicate():
    """test_fencing_static_consumer (classic protocol, stable stage): a second process with the
    group.instance.id of a running static member joins; the old one is fenced
    (FencedInstanceIdException: FENCED_INSTANCE_ID) and exits; the group goes on with the new one."""
    create_topic("kt-fence", 2)
    prod = Producer("fence-producer", "kt-fence")
    g = Group("fence", "kt-fence", "kt-fence-group", 2, 3, session_ms=STATIC_SESSION_MS)
    g.start(0, instance_id="fence-0")
    g.start(1, instance_id="fence-1")
    g.await_stable(2, 60, "2 static members joined")
    g.await_consumed(1, 30)
    old = g.slots[0]
    new = g.start(2, instance_id="fence-0")
    await_cond(lambda: new.joined, 30, "the duplicate static member to join")
    await_cond(old.dead, 30, "the fenced static member to exit")
    err = old.stderr()
    check("FencedInstanceIdException" in err or "FENCED_INSTANCE_ID" in err,
          f"the old member exited without FencedInstanceIdException (stderr: {err.strip()[-400:]!r})")
    g.slots[0] = None
    g.await_stable(2, 30, "the group with the new static member")
    g.await_consumed(50, 30, "consumption after the fencing")
    g.stop_all()
    prod.stop()
    g.check_violations()
    g.check_no_loss(prod)


def test_consumer_bounce_all(bounces):
    """test_consumer_bounce (bounce_mode=all, clean shutdown): every member stopped, then all
    restarted; the group resumes at the committed offsets: no loss, no duplicates."""
    topic = f"kt-bounceall-{bounces}"
    create_topic(topic, 3)
    prod = Producer(f"bounceall{bounces}-producer", topic)
    await_cond(lambda: prod.n_acked >= 100, 60, "100 records acknowledged to the producer")
    g = Group(f"bounceall{bounces}", topic, f"{topic}-group", 3, 3)
    for i in range(3):
        g.start(i)
    g.await_stable(3, 60, "3 members joined")
    g.await_consumed(1, 30)
    for _ in range(bounces):
        g.stop_all()
        for i in range(3):
            check(g.slots[i].shutdown_complete, f"{g.slots[i].name} exited without shutdown_complete")
            g.start(i)
        g.await_stable(3, 60, "3 restarted members joined")
        g.await_consumed(1, 30, "consumption after the restart")
    g.stop_all()
    prod.stop()
    g.check_violations()
    g.check_no_loss(prod)
    dups = g.duplicates()
    check(not dups, f"records consumed twice after clean shutdowns: { {p: v[:5] for p, v in dups.items()} }")
    g.check_final_commit()


def test_group_consumption():
    """test_group_consumption: one partition; members started one by one, then stopped one by one;
    the partition is consumed after every rebalance; no loss, no duplicates, last commit ==
    position."""
    create_topic("kt-groupcons", 1)
    prod = Producer("groupcons-producer", "kt-groupcons")
    g = Group("groupcons", "kt-groupcons", "kt-groupcons-group", 1, 3)
    for i in range(3):
        g.start(i)
        await_cond(lambda: len(g.alive()) == i + 1 and all(c.joined for c in g.alive())
                   and g.valid_assignment(), 60, f"{i + 1} members joined")
        g.await_consumed(1, 30, f"consumption with {i + 1} members")
    for i in range(3):
        g.stop(i)
        if i < 2:
            g.await_stable(2 - i, 60, f"{2 - i} members after a clean leave")
            g.await_consumed(1, 30, f"consumption with {2 - i} members")
    prod.stop()
    g.check_violations()
    g.check_no_loss(prod)
    dups = g.duplicates()
    check(not dups, f"records consumed twice: { {p: v[:5] for p, v in dups.items()} }")
    g.check_final_commit()


def test_consumer_failure_autocommit():
    """test_consumer_failure (clean_shutdown=True, enable_autocommit=True): the owner of
    partition 0 stops cleanly (auto-commit on close); the others take its partitions; no loss, no
    duplicates; ConsumerGroupCommand --describe then shows CURRENT-OFFSET == consumed position."""
    create_topic("kt-autocommit", 3)
    g = Group("autocommit", "kt-autocommit", "kt-autocommit-group", 3, 3)
    for i in range(3):
        g.start(i, **{"enable_autocommit": True})
    g.await_stable(3, 60, "3 members joined")
    prod = Producer("autocommit-producer", "kt-autocommit")
    g.await_consumed(100, 60)
    victim = next(i for i, c in enumerate(g.slots) if 0 in c.assignment)
    g.stop(victim)
    g.slots[victim] = None
    g.await_stable(2, 2 * SESSION_MS / 1000 + 5, "the partitions of the stopped member to move")
    g.await_consumed(300, 60, "consumption after the partitions moved")
    g.stop_all()
    prod.stop()
    g.check_violations()
    seen = g.check_no_loss(prod)
    dups = g.duplicates()
    check(not dups, f"records consumed twice with auto-commit and clean shutdowns: "
                    f"{ {p: v[:5] for p, v in dups.items()} }")
    got = offsets("kt-autocommit-group", "kt-autocommit")
    want = {p: max(seen[p]) + 1 if seen.get(p) else 0 for p in range(3)}
    check(got == want, f"committed offsets (--describe) {got} != consumed positions {want}")


def test_static_fenced_at_startup():
    """test_fencing_static_consumer (classic protocol, fencing_stage=all): two static members and
    a third with the group.instance.id of the first start together; exactly one of the two with
    that id is fenced (FencedInstanceIdException) and exits, two members stay."""
    create_topic("kt-fence2", 2)
    g = Group("fence2", "kt-fence2", "kt-fence2-group", 2, 3, session_ms=STATIC_SESSION_MS)
    a = g.start(0, instance_id="fence2-0")
    g.start(1, instance_id="fence2-1")
    b = g.start(2, instance_id="fence2-0")

    def settled():
        return (a.dead() != b.dead()) and g.valid_assignment(2)
    await_cond(settled, 2 * STATIC_SESSION_MS / 1000, "one of the two members with the same "
               f"group.instance.id fenced and 2 members with a valid assignment ({g.describe()})")
    loser = a if a.dead() else b
    err = loser.stderr()
    check("FencedInstanceIdException" in err or "FENCED_INSTANCE_ID" in err,
          f"{loser.name} exited without FencedInstanceIdException (stderr: {err.strip()[-400:]!r})")
    g.stop_all()
    g.check_violations()


# ---------------------------------------------------------------------------------------------
# broker restart: the state the tools see survives a (clean) restart of the broker


def snapshot():
    """What TopicCommand and ConsumerGroupCommand show: topics with their partition counts and
    configs, every group's committed offsets and log-end offsets."""
    snap = {"topics": {}, "groups": {}}
    status, out, _ = TOOLS.topic("--describe", "--exclude-internal")
    check(status == 0, f"TopicCommand --describe: status {status}")
    for name, t in parse_describe_topic(out).items():
        snap["topics"][name] = {"partitions": t.get("PartitionCount"), "configs": t.get("Configs")}
    status, out, _ = TOOLS.group("--list")
    check(status == 0, f"ConsumerGroupCommand --list: status {status}")
    for g in sorted(out.split()):
        _, o, _ = TOOLS.group("--describe", "--group", g)
        snap["groups"][g] = sorted([r["TOPIC"], r["PARTITION"], r["CURRENT-OFFSET"], r["LOG-END-OFFSET"]]
                                   for r in parse_table(o) if "CURRENT-OFFSET" in r)
    return snap


SNAPSHOT_IN = None
RESTART_GROUP = "kt-bounce-1-group"  # left by consumer_rolling_bounce: committed offsets, and lag


def test_broker_restart_state():
    """After the broker was stopped and started again (same data directory): the topics, their
    configs, every group's committed offsets and the log-end offsets are what they were; a
    VerifiableConsumer of an old group resumes exactly at its committed offsets."""
    check(SNAPSHOT_IN and os.path.exists(SNAPSHOT_IN), "no snapshot from before the restart")
    before = json.load(open(SNAPSHOT_IN))
    after = snapshot()
    for name, t in before["topics"].items():
        check(after["topics"].get(name) == t, f"topic {name}: before the restart {t}, after {after['topics'].get(name)}")
    for g, rows in before["groups"].items():
        check(after["groups"].get(g) == rows, f"group {g}: before the restart {rows}, after {after['groups'].get(g)}")
    rows = before["groups"].get(RESTART_GROUP)
    if not rows:
        return  # consumer_rolling_bounce did not run before
    topic = rows[0][0]
    committed = {int(p): int(o) for _, p, o, _ in rows if o != "-"}
    end = {int(p): int(e) for _, p, _, e in rows}
    behind = {p: end[p] - committed.get(p, 0) for p in end}
    n = sum(min(b, 10) for b in behind.values())
    check(n > 0, f"group {RESTART_GROUP} has no lag to consume: {rows}")
    c = Consumer("restart-verify", topic, RESTART_GROUP, max_messages=n)
    await_cond(c.dead, 60, f"restart-verify to consume {n} records and exit")
    firsts = {p: r[0][0] for p, r in c.consumed.items()}
    want = {p: committed.get(p, 0) for p, b in behind.items() if b > 0 and p in firsts}
    check(firsts and firsts == want, f"after the restart the group resumed at {firsts}, committed were {committed}")


def assignor_test(name):
    def test():
        """AssignmentValidationTest.test_valid_assignment: 3 members with the assignor, started
        one by one, on 6 partitions; after each start each partition is owned by exactly one."""
        topic = f"kt-assign-{name}"
        create_topic(topic, 6)
        g = Group(f"assign-{name}", topic, f"{topic}-group", 6, 3, assignor=name)
        for i in range(3):
            g.start(i)
            g.await_stable(i + 1, 60, f"{i + 1} members with {name}")
        counts = sorted(len(c.assignment) for c in g.slots)
        check(counts == [2, 2, 2], f"{name}: 6 partitions over 3 members as {counts}, expected 2 each")
        g.stop(2)
        g.await_stable(2, 60, f"2 members with {name} after one left")
        g.stop_all()
        g.check_violations()
    test.__name__ = f"test_assign_{name}"
    return test


TESTS = {
    "topic_create": test_topic_create,
    "topic_list": test_topic_list,
    "topic_describe": test_topic_describe,
    "topic_create_existing": test_topic_create_existing,
    "topic_describe_unknown": test_topic_describe_unknown,
    "topic_alter_partitions": test_topic_alter_partitions,
    "topic_alter_decrease_refused": test_topic_alter_decrease_refused,
    "topic_create_invalid": test_topic_create_invalid,
    "topic_delete": test_topic_delete,
    "group_describe_active": test_group_describe_active,
    "group_reset_refused_active": test_group_reset_refused_active,
    "group_delete_refused_nonempty": test_group_delete_refused_nonempty,
    "group_delete_offsets_refused_subscribed": test_group_delete_offsets_refused_subscribed,
    "group_list_filters": test_group_list_filters,
    "group_describe_empty": test_group_describe_empty,
    "group_reset_preview": test_group_reset_preview,
    "group_reset_to_earliest": test_group_reset_to_earliest,
    "group_reset_to_latest": test_group_reset_to_latest,
    "group_reset_to_offset": test_group_reset_to_offset,
    "group_reset_shift_by": test_group_reset_shift_by,
    "group_reset_to_datetime": test_group_reset_to_datetime,
    "group_reset_by_duration": test_group_reset_by_duration,
    "group_reset_export_import": test_group_reset_export_import,
    "group_delete_offsets": test_group_delete_offsets,
    "group_delete_empty": test_group_delete_empty,
    "topic_list_internal": test_topic_list_internal,
    "consumer_rolling_bounce": lambda: test_consumer_rolling_bounce(1),
    "consumer_rolling_bounce_x3": lambda: test_consumer_rolling_bounce(3),
    "consumer_bounce_all": lambda: test_consumer_bounce_all(1),
    "consumer_bounce_all_x3": lambda: test_consumer_bounce_all(3),
    "consumer_group_consumption": test_group_consumption,
    "consumer_hard_bounce": test_consumer_hard_bounce,
    "consumer_failure_autocommit": test_consumer_failure_autocommit,
    "static_bounce_no_rebalance": test_static_bounce_no_rebalance,
    "static_fenced_by_duplicate": test_static_fenced_by_duplicate,
    "static_fenced_at_startup": test_static_fenced_at_startup,
    "broker_restart_state": test_broker_restart_state,
}
for _a in ASSIGNORS:
    TESTS[f"assign_{_a}"] = assignor_test(_a)


def run_test(name):
    log(f"=== {name}")
    t0 = time.monotonic()
    try:
        TESTS[name]()
        ok, error = True, None
    except Fail as e:
        ok, error = False, str(e)
    except Exception as e:
        ok, error = False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    finally:
        if not name.startswith("group_") or name == "group_delete_empty":  # group_*: one shared member
            kill_all()
    secs = time.monotonic() - t0
    log(f"--- {name}: {'PASS' if ok else 'FAIL'} in {secs:.1f} s" + (f": {error}" if error else ""))
    return {"ok": ok, "error": error, "seconds": round(secs, 1)}


def main():
    global OUT, CLASSPATH, BOOTSTRAP, TOOLS, LOG4J, SNAPSHOT_IN
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap")
    ap.add_argument("--out")
    ap.add_argument("--json")
    ap.add_argument("--classes", help="directory with the compiled ToolRunner")
    ap.add_argument("--tests", help="comma-separated names (default: all)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--snapshot-out", help="after the tests: write what the tools show (for broker_restart_state)")
    ap.add_argument("--snapshot-in", help="the snapshot broker_restart_state compares with")
    ap.add_argument("--cds", help="class-data archive of the client JVMs (made when missing)")
    ap.add_argument("--debug", action="store_true", help="client DEBUG logging (log4j2-debug.properties)")
    a = ap.parse_args()
    if a.list:
        print("\n".join(TESTS))
        return 0
    OUT, BOOTSTRAP, SNAPSHOT_IN = a.out, a.bootstrap, a.snapshot_in
    os.makedirs(os.path.join(OUT, "procs"), exist_ok=True)
    if a.debug:
        LOG4J = DEBUG_LOG4J
    CLASSPATH = subprocess.run([KAFKA_SCRIPT, "classpath"], stdout=subprocess.PIPE, text=True,
                               check=True).stdout.strip()
    names = a.tests.split(",") if a.tests else list(TESTS)
    unknown = [n for n in names if n not in TESTS]
    if unknown:
        print(f"unknown tests: {unknown}", file=sys.stderr)
        return 2

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)

    TOOLS = Tools(a.classes)
    results = {}
    # consecutive assign_* scenarios run concurrently (independent groups and topics, no timing
    # assertions): they are mostly JVM start-ups
    batches = []
    for n in names:
        if n.startswith("assign_") and batches and batches[-1][0].startswith("assign_"):
            batches[-1].append(n)
        else:
            batches.append([n])
    try:
        if a.cds:
            make_cds_archive(a.cds)
        for batch in batches:
            if len(batch) == 1:
                results[batch[0]] = run_test(batch[0])
            else:
                threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, run_test(n)), daemon=True)
                           for n in batch]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            with open(a.json, "w") as f:
                json.dump({"tests": results}, f, indent=1)
        if a.snapshot_out:
            kill_all()
            try:
                snap = snapshot()
                with open(a.snapshot_out, "w") as f:
                    json.dump(snap, f, indent=1)
            except Fail as e:
                log(f"no snapshot: {e}")
    finally:
        for p in ALL_PROCS:
            if p.proc.poll() is None:
                p.proc.kill()
        TOOLS.stop()
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
