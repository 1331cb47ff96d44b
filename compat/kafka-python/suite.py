"""compat suite `kafka-python`: kafka-python's own integration tests (test/integration of its PyPI
sdist, the version tests/python pins), run with pytest against the broker compat/run started.

At run time, under compat/work/kafka-python/ (gitignored, reused when present):
- sdist/: `pip download kafka-python==VERSION --no-binary :all:`, unpacked;
- venv/: pytest and the codecs from requirements.txt beside this file, plus kafka-python itself
  installed from that same sdist.
Their conftest.py supports an external broker (KAFKA_URI=PLAINTEXT://HOST:PORT: the fixtures
then start nothing); our pytest plugin external_broker.py supplies the two pieces of the test tree
the sdist lacks (the `test` package, `test.service`). KAFKA_VERSION=4.3.1 is what the tests read
for the broker's version (client api_version, version-dependent expectations). Per-test outcomes
come from pytest's JUnit XML (compat/work/BROKER/kafka-python/junit.xml; full pytest output with
the client debug logs of failures in pytest.log there).
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET

NAME = "kafka-python"
VERSION = "3.0.12"  # as tests/python/requirements.txt
KAFKA_VERSION = "4.3.1"  # the reference broker (compat/kafka)

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(HERE, "requirements.txt")

# Test names are MODULE::[CLASS::]TEST, MODULE a file of test/integration without .py.
# CI subset: stable tests of a second or less each that pass against Kafka and Sluice, covering
# produce (every codec, idempotence), consume (fetch limits, seek, offsets for times, commits,
# pause), a group with heartbeats, and the topic/group/config admin calls Sluice serves.
# The client's subscribe-during-Metadata race (KNOWN_GAPS.md) is patched, on both brokers, by
# external_broker.py; the tests it used to fail now and then are back in the subset.
CI_TESTS = [
    "test_producer_integration::test_end_to_end[None]",
    "test_producer_integration::test_end_to_end[gzip]",
    "test_producer_integration::test_end_to_end[snappy]",
    "test_producer_integration::test_end_to_end[lz4]",
    "test_producer_integration::test_end_to_end[zstd]",
    "test_producer_integration::test_kafka_producer_proper_record_metadata[None]",
    "test_producer_integration::test_idempotent_producer",
    "test_producer_integration::test_idempotent_producer_high_throughput",
    "test_producer_integration::test_idempotent_producer_max_in_flight[1]",
    "test_producer_integration::test_idempotent_producer_max_in_flight[5]",
    "test_consumer_integration::test_consumer",
    "test_consumer_integration::test_consumer_topics",
    "test_consumer_integration::test_paused",
    "test_consumer_integration::test_kafka_consumer",
    "test_consumer_integration::test_kafka_consumer__blocking",
    "test_consumer_integration::test_kafka_consumer__offset_commit_resume",
    "test_consumer_integration::test_kafka_consumer_max_bytes_one_msg",
    "test_consumer_integration::test_kafka_consumer_max_bytes_simple",
    "test_consumer_integration::test_kafka_consumer_offsets_for_time",
    "test_consumer_integration::test_kafka_consumer_offsets_search_many_partitions",
    "test_consumer_integration::test_kafka_consumer_position_after_seek_to_end",
    "test_consumer_integration::test_heartbeat_thread",
    "test_admin_integration::test_create_delete_topics",
    "test_admin_integration::test_describe_configs_topic_resource_returns_configs",
    "test_admin_integration::test_describe_group_exists",
    "test_admin_integration::test_delete_groups",
    "test_admin_integration::test_list_partition_offsets",
]

_SSL = ("launches its own Kafka with an SSL listener from a Kafka distribution (the fixture's "
        "servers/ resources are not in the sdist); this suite runs against an already-running "
        "PLAINTEXT broker")
_BOTH = {
    "test_admin_integration::test_create_describe_delete_acls":
        "fails against Kafka too: compat/kafka configures no authorizer, so DescribeAcls answers "
        "SECURITY_DISABLED (54); ACLs are not served by Sluice either",
    "test_admin_integration::test_create_partitions":
        "fails against Kafka too: the test assigns the new partitions to broker id 0 (the id its "
        "own fixture gives the broker it launches); compat/kafka's node.id is 1, so CreatePartitions "
        "answers INVALID_REPLICA_ASSIGNMENT (39) 'no such broker is registered'",
    "test_consumer_integration::test_group":
        "fails against Kafka too: session_timeout_ms=3000 is below group.min.session.timeout.ms "
        "(6000, Kafka's default, kept by compat/kafka), so JoinGroup answers "
        "INVALID_SESSION_TIMEOUT (26); the fixture's own broker config (not in the sdist) lowers it",
    "test_ssl_integration::TestSSLConnection::test_ssl_handshake": _SSL,
    "test_ssl_integration::TestSSLConnection::test_legacy_kafka_client_ssl": _SSL,
}
EXCLUDED = {
    "kafka": dict(_BOTH),
    "sluice": dict(_BOTH, **{
        "test_producer_integration::test_transactional_producer_messages":
            "transactions are not served: KafkaProducer.init_transactions() fails with "
            "KafkaTimeoutError after 60 s ('Timeout expired while initializing transactional state')",
        "test_producer_integration::test_transactional_producer_offsets":
            "transactions are not served: KafkaProducer.init_transactions() fails with "
            "KafkaTimeoutError after 60 s ('Timeout expired while initializing transactional state')",
    }),
}


def _nodeid(name):
    mod, rest = name.split("::", 1)
    return f"test/integration/{mod}.py::{rest}"


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()[:16]


def _prepare(ctx):
    """The unpacked sdist and a venv to run it; both reused when they match."""
    work = os.path.join(ctx.here, "work", NAME)
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, "sdist", f"kafka_python-{VERSION}")
    tarball = os.path.join(work, "sdist", f"kafka_python-{VERSION}.tar.gz")
    if not os.path.isdir(os.path.join(src, "test", "integration")):
        shutil.rmtree(os.path.join(work, "sdist"), ignore_errors=True)
        os.makedirs(os.path.join(work, "sdist"))
        ctx.log(f"{NAME}: pip download kafka-python=={VERSION} (sdist)")
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", f"kafka-python=={VERSION}",
                            "--no-deps", "--no-binary", ":all:", "-d", os.path.dirname(tarball)])
        if r.returncode != 0 or not os.path.exists(tarball):
            raise ctx.SetupError(f"pip download kafka-python=={VERSION} --no-binary :all: failed")
        with tarfile.open(tarball) as t:
            t.extractall(os.path.dirname(tarball), filter="data")
        if not os.path.isdir(os.path.join(src, "test", "integration")):
            raise ctx.SetupError(f"no test/integration in {tarball}")
    venv = os.path.join(work, "venv")
    py = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".compat-stamp")
    want = f"{VERSION} {_sha(REQUIREMENTS)}"
    if not (os.path.exists(py) and os.path.exists(stamp) and open(stamp).read() == want):
        shutil.rmtree(venv, ignore_errors=True)
        ctx.log(f"{NAME}: creating {os.path.relpath(venv, ctx.repo)}")
        if subprocess.run([sys.executable, "-m", "venv", venv]).returncode != 0:
            raise ctx.SetupError(f"python3 -m venv {venv} failed")
        r = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            "-r", REQUIREMENTS, tarball])
        if r.returncode != 0:
            raise ctx.SetupError(f"pip install into {venv} failed")
        with open(stamp, "w") as f:
            f.write(want)
    # a directory for KAFKA_ROOT: the fixture insists one exists, though it launches nothing
    no_dist = os.path.join(work, "no-kafka-distribution")
    os.makedirs(no_dist, exist_ok=True)
    return src, py, no_dist


def parse_junit(path):
    """MODULE::[CLASS::]TEST -> pass/fail/skip from pytest's JUnit XML (error = fail)."""
    tests = {}
    root = ET.parse(path).getroot()
    for tc in root.iter("testcase"):
        parts = tc.get("classname", "").split(".")
        # classname is test.integration.MODULE[.CLASS]
        i = next((k for k, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
        name = "::".join(parts[i:] + [tc.get("name")])
        state = "pass"
        for ch in tc:
            if ch.tag in ("failure", "error"):
                state = "fail"
            elif ch.tag == "skipped" and state != "fail":
                state = "skip"
        # a test that passed but errored in teardown appears twice: a failure wins
        if tests.get(name) != "fail":
            tests[name] = state
    return tests


def run(addr, ctx, full, out_dir):
    src, py, no_dist = _prepare(ctx)
    excluded = dict(EXCLUDED.get(ctx.broker, {}))
    junit = os.path.join(out_dir, "junit.xml")
    args = [py, "-m", "pytest", "-p", "external_broker", "-p", "no:cacheprovider", "-q",
            "-W", "ignore::DeprecationWarning", f"--junitxml={junit}", "-o", "junit_family=xunit2"]
    if full:
        args.append("test/integration")
        args += [f"--deselect={_nodeid(n)}" for n in sorted(excluded)]
    else:
        excluded = {n: why for n, why in excluded.items() if n in CI_TESTS}
        args += [_nodeid(n) for n in CI_TESTS if n not in excluded]
    env = dict(os.environ, KAFKA_URI=f"PLAINTEXT://{addr}", KAFKA_VERSION=KAFKA_VERSION,
               KAFKA_ROOT=no_dist, KPY_SDIST_DIR=src,
               PYTHONPATH=os.pathsep.join([HERE, src]), PYTHONDONTWRITEBYTECODE="1")
    env.pop("ZOOKEEPER_URI", None)
    if os.path.exists(junit):
        os.remove(junit)
    ctx.log(f"{NAME}: pytest ({'all of test/integration' if full else f'{len(CI_TESTS)} named tests'}) "
            f"against {addr}")
    with open(os.path.join(out_dir, "pytest.log"), "wb") as log:
        status = ctx.run_suite_cmd(args, cwd=src, env=env, stdout=log, stderr=subprocess.STDOUT)
    tests = parse_junit(junit) if os.path.exists(junit) else {}
    if status not in (0, 1) and not any(v == "fail" for v in tests.values()):
        tests["(pytest)"] = "fail"  # usage error, collection error or an interrupted run
    if not full:
        missing = [n for n in CI_TESTS if n not in excluded and n not in tests]
        for n in missing:  # a renamed or uncollected CI test must not pass silently
            tests[n] = "fail"
    return {"tests": tests, "excluded": excluded,
            "detail": f"kafka-python {VERSION} test/integration (PyPI sdist), KAFKA_VERSION={KAFKA_VERSION}, "
                      + ("all tests" if full else f"{len(CI_TESTS)} named tests")}
