"""kafka-tools: Kafka's own command-line tools from kafka-tools 4.3.1 (compat/kafka's classpath)
against the broker: TopicCommand, ConsumerGroupCommand, and VerifiableProducer/VerifiableConsumer
driven through the scenarios of Kafka's consumer system tests. The scenarios are ours
(driver.py, ToolRunner.java); see compat/kafka-tools/README.md."""
import hashlib
import json
import os
import shutil
import subprocess
import sys

NAME = "kafka-tools"
HERE = os.path.dirname(os.path.abspath(__file__))

# CI subset: every scenario except the *_x3 ones, which only repeat consumer_rolling_bounce and
# consumer_bounce_all three times (as Kafka's system tests bounce several times).
CI_TESTS = [
    "topic_create", "topic_list", "topic_describe", "topic_create_existing",
    "topic_describe_unknown", "topic_alter_partitions", "topic_alter_decrease_refused",
    "topic_create_invalid", "topic_delete",
    "group_describe_active", "group_reset_refused_active", "group_delete_refused_nonempty",
    "group_delete_offsets_refused_subscribed", "group_list_filters",
    "group_describe_empty", "group_reset_preview", "group_reset_to_earliest",
    "group_reset_to_latest", "group_reset_to_offset", "group_reset_shift_by",
    "group_reset_to_datetime", "group_reset_by_duration", "group_reset_export_import", "group_delete_offsets",
    "group_delete_empty", "topic_list_internal",
    "consumer_rolling_bounce", "consumer_bounce_all", "consumer_group_consumption",
    "consumer_hard_bounce", "consumer_failure_autocommit", "static_bounce_no_rebalance",
    "static_fenced_by_duplicate", "static_fenced_at_startup",
    "assign_range", "assign_roundrobin", "assign_sticky", "assign_cooperative_sticky",
    "broker_restart_state",  # after the others, and a restart of the broker (see run)
]
RESTART_TEST = "broker_restart_state"

# broker -> {test: reason}: tests not run (see compat/KNOWN_GAPS.md for Sluice's).
EXCLUDED = {"sluice": {}, "kafka": {}}


def build(ctx):
    """Compiles ToolRunner.java into compat/work/kafka-tools-build/<source hash>/ (cached)."""
    src = os.path.join(HERE, "ToolRunner.java")
    digest = hashlib.sha256(open(src, "rb").read()).hexdigest()[:16]
    out = os.path.join(ctx.here, "work", "kafka-tools-build", digest)
    if os.path.exists(os.path.join(out, "ToolRunner.class")):
        return out
    cp = subprocess.run([os.path.join(ctx.here, "kafka", "kafka"), "classpath"], stdout=subprocess.PIPE,
                        text=True)
    if cp.returncode != 0:
        raise ctx.SetupError("compat/kafka/kafka classpath failed (Kafka's jars could not be fetched)")
    tmp = out + ".tmp"
    os.makedirs(tmp, exist_ok=True)
    ctx.log("kafka-tools: javac ToolRunner.java")
    try:
        r = subprocess.run(["nice", "-n", "10", "javac", "-d", tmp, "-cp", cp.stdout.strip(), src])
    except FileNotFoundError:
        raise ctx.SetupError("javac not found (a JDK 17+ is needed)")
    if r.returncode != 0:
        raise ctx.SetupError("javac ToolRunner.java failed")
    os.rename(tmp, out)
    return out


def cds_key(ctx):
    cp = subprocess.run([os.path.join(ctx.here, "kafka", "kafka"), "classpath"], stdout=subprocess.PIPE,
                        text=True).stdout
    jdk = subprocess.run(["java", "-version"], stderr=subprocess.PIPE, text=True).stderr
    return hashlib.sha256((cp + jdk).encode()).hexdigest()[:12]


def drive(ctx, addr, out_dir, classes, names, json_name, extra):
    """Runs driver.py for `names`; returns {name: pass|fail} (a test the driver never reached fails)."""
    raw = os.path.join(out_dir, json_name)
    cmd = [sys.executable, os.path.join(HERE, "driver.py"), "--bootstrap", addr, "--out", out_dir,
           "--json", raw, "--classes", classes, "--tests", ",".join(names),
           # AppCDS archive of the client JVMs, per classpath (compat/kafka/lib) and JDK
           "--cds", os.path.join(classes, f"client-{cds_key(ctx)}.jsa")] + extra
    if os.environ.get("KT_DEBUG"):
        cmd.append("--debug")
    with open(os.path.join(out_dir, "driver.stderr"), "ab") as err:
        status = ctx.run_suite_cmd(cmd, stderr=err)
    tests = {}
    if os.path.exists(raw):
        for n, r in json.load(open(raw))["tests"].items():
            tests[n] = "pass" if r["ok"] else "fail"
    for n in names:
        tests.setdefault(n, "fail")
    if status not in (0, 1):
        ctx.log(f"kafka-tools: driver exited with status {status}")
    return tests


def run(addr, ctx, full, out_dir):
    classes = build(ctx)
    driver = os.path.join(HERE, "driver.py")
    names = subprocess.run([sys.executable, driver, "--list"], stdout=subprocess.PIPE, text=True,
                           check=True).stdout.split()
    excluded = dict(EXCLUDED.get(ctx.broker, {}))
    wanted = [n for n in (names if full else CI_TESTS) if n not in excluded]
    if not full:
        excluded = {n: why for n, why in excluded.items() if n in CI_TESTS}
    # phase 1: every scenario but the restart one, then a snapshot of what the tools show
    restart = RESTART_TEST in wanted
    phase1 = [n for n in wanted if n != RESTART_TEST]
    snap = os.path.join(out_dir, "snapshot.json")
    tests = {}
    tests.update(drive(ctx, addr, out_dir, classes, phase1, "scenario.json",
                       ["--snapshot-out", snap] if restart else []))
    if restart:
        # phase 2: the broker stopped (SIGTERM) and started again on the same data directory
        ctx.log("kafka-tools: restarting the broker")
        blog = os.path.join(out_dir, "sluice.log")
        if os.path.exists(blog):  # Sluice's log is rewritten by its next start: keep phase 1's
            shutil.copyfile(blog, os.path.join(out_dir, "sluice-before-restart.log"))
        try:
            ctx.broker_obj.stop()
            addr2 = ctx.broker_obj.start()
        except Exception as e:  # a broker that does not come back fails the test, not the run
            ctx.log(f"kafka-tools: the broker did not restart: {e}")
            tests[RESTART_TEST] = "fail"
        else:
            ctx.log(f"kafka-tools: broker back at {addr2}")
            tests.update(drive(ctx, addr2, out_dir, classes, [RESTART_TEST], "scenario-restart.json",
                               ["--snapshot-in", snap]))
    return {"tests": tests, "excluded": excluded,
            "detail": "kafka-tools 4.3.1 (TopicCommand, ConsumerGroupCommand, VerifiableProducer/"
                      "VerifiableConsumer) through scenarios of our own after Kafka's consumer system tests, "
                      + ("all scenarios" if full else f"{len(CI_TESTS)} named scenarios")}
