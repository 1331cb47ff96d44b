"""kcat (Debian's 1.7.1, built on librdkafka 2.0.2): an older librdkafka that negotiates older
API versions (ListOffsets v2, Fetch v11, ...) than the current clients do. `scripts/test`
installs it from Debian when it is missing."""

import shutil
import subprocess

import pytest

KCAT_TIMEOUT_S = 60


def kcat(broker, *args, stdin=None):
    exe = shutil.which("kcat") or shutil.which("kafkacat")
    if exe is None:
        pytest.fail("kcat is not installed (scripts/test installs Debian's kcat package)", pytrace=False)
    done = subprocess.run(
        [exe, "-b", broker.bootstrap, *args],
        input=stdin, capture_output=True, timeout=KCAT_TIMEOUT_S,
    )
    assert done.returncode == 0, f"kcat {' '.join(args)} failed:\n{done.stderr.decode()}"
    return done.stdout.decode()


def test_kcat_produces_and_consumes_keyed_records(broker, topic_name):
    name = topic_name("kcat")
    lines = [f"key{i}:value{i}" for i in range(100)]
    kcat(broker, "-P", "-t", name, "-K:", "-p", "0", stdin=("\n".join(lines) + "\n").encode())
    out = kcat(broker, "-C", "-t", name, "-p", "0", "-o", "beginning", "-e", "-f", "%o %k %s\n")
    assert out.splitlines() == [f"{i} key{i} value{i}" for i in range(100)]
    # From the end minus 3 (ListOffsets latest, then a fetch in the middle of the log).
    out = kcat(broker, "-C", "-t", name, "-p", "0", "-o", "-3", "-e", "-f", "%o\n")
    assert out.splitlines() == ["97", "98", "99"]


def test_kcat_metadata_lists_the_topic_and_this_broker(broker, topic_name):
    name = topic_name("kmeta")
    kcat(broker, "-P", "-t", name, stdin=b"x\n")
    out = kcat(broker, "-L", "-t", name)
    assert f'topic "{name}" with 1 partitions' in out
    assert f"broker 1 at {broker.bootstrap}" in out
    assert "leader 1, replicas: 1, isrs: 1" in out
