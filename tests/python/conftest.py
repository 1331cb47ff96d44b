"""Fixtures that run a real `sluice serve` process for each test.

The binary comes from $SLUICE_BIN (default: target/release/sluice under the repository root).
Each broker listens on an ephemeral 127.0.0.1 port with a data directory under the test's
tmp_path, is ready once it printed its `sluice listening on ADDR` line, and is stopped at
teardown whatever the test's outcome. Its stderr goes to a file whose tail is printed when a
test fails.
"""

import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "sluice listening on "
READY_TIMEOUT_S = 30
SHUTDOWN_TIMEOUT_S = 20
# Deadline for client operations in tests.
OP_TIMEOUT_S = 30


def sluice_bin() -> Path:
    path = Path(os.environ.get("SLUICE_BIN", REPO_ROOT / "target" / "release" / "sluice"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not os.access(path, os.X_OK):
        pytest.fail(f"sluice binary not found at {path}: build it or set SLUICE_BIN", pytrace=False)
    return path


class Broker:
    """One `sluice serve` process (restartable on the same data directory)."""

    def __init__(self, tmp_path: Path, args=()):
        self.data_dir = tmp_path / "data"
        self.log_dir = tmp_path / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.args = list(args)
        self.proc = None
        self.addr = None
        self.runs = 0

    @property
    def bootstrap(self) -> str:
        return self.addr

    def start(self):
        assert self.proc is None, "broker already running"
        self.runs += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        stderr = open(self.log_dir / f"stderr.{self.runs}.log", "wb")
        cmd = [str(sluice_bin()), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir)]
        self.proc = subprocess.Popen(
            cmd + self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=env
        )
        stderr.close()
        line = self._read_ready_line()
        assert line.startswith(READY_PREFIX), f"unexpected first stdout line {line!r}"
        self.addr = line[len(READY_PREFIX):]
        assert self.addr.startswith("127.0.0.1:") and not self.addr.endswith(":0"), line
        # Keep draining stdout so that the broker never blocks on a full pipe.
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
        return self

    def _read_ready_line(self) -> str:
        result = {}

        def read():
            result["line"] = self.proc.stdout.readline()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT_S)
        if reader.is_alive() or not result.get("line"):
            self.kill9()
            why = "no ready line within %ds" % READY_TIMEOUT_S if reader.is_alive() else "stdout closed"
            pytest.fail(f"broker failed to start: {why}\n{self.log_tail()}", pytrace=False)
        return result["line"].decode().rstrip("\n")

    @staticmethod
    def _drain(pipe):
        for _ in iter(lambda: pipe.read(4096), b""):
            pass

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def terminate(self) -> int:
        """SIGTERM; returns the exit code (fails the test if the broker does not exit)."""
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"broker ignored SIGTERM for {SHUTDOWN_TIMEOUT_S}s\n{self.log_tail()}", pytrace=False)

    def restart(self):
        self.kill9()
        return self.start()

    def log_tail(self, lines=40) -> str:
        out = []
        for run in range(1, self.runs + 1):
            path = self.log_dir / f"stderr.{run}.log"
            text = path.read_text(errors="replace").splitlines() if path.exists() else []
            out.append(f"--- broker stderr, run {run} (last {min(lines, len(text))} lines) ---")
            out.extend(text[-lines:])
        return "\n".join(out)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def start_broker(tmp_path, request):
    """Factory: start_broker(*args) starts a broker with extra `serve` arguments."""
    brokers = []

    def start(*args):
        broker = Broker(tmp_path / f"broker{len(brokers)}", args).start()
        brokers.append(broker)
        return broker

    yield start
    failed = any(getattr(request.node, "rep_" + when, None) and getattr(request.node, "rep_" + when).failed
                 for when in ("setup", "call"))
    _stop_all(brokers, failed)


def _stop_all(brokers, failed):
    """SIGTERMs the brokers still running; a broker that exits badly fails the test unless the
    test already failed, in which case every broker's log tail is printed."""
    for broker in brokers:
        if broker.running():
            code = broker.terminate()
            assert code == 0 or failed, f"broker exited with {code} after SIGTERM\n{broker.log_tail()}"
        if failed:
            print(broker.log_tail())


@pytest.fixture(scope="module")
def start_module_broker(tmp_path_factory, request):
    """Factory like start_broker, but the brokers are shared by the tests of one module (for
    modules whose tests use their own topics and groups and would otherwise spend most of their
    time starting brokers). Extra `serve` flags are passed as arguments, e.g.
    start_module_broker("--group-initial-rebalance-delay-ms", "0")."""
    brokers = []
    failed_before = request.session.testsfailed

    def start(*args):
        tmp = tmp_path_factory.mktemp(f"module-broker{len(brokers)}")
        broker = Broker(tmp, args).start()
        brokers.append(broker)
        return broker

    yield start
    failed = request.session.testsfailed > failed_before
    _stop_all(brokers, failed)


@pytest.fixture
def broker(start_broker):
    """A broker with default settings."""
    return start_broker()


@pytest.fixture
def topic_name():
    """A fresh topic name per call."""
    return lambda prefix="t": f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(what, condition, timeout=OP_TIMEOUT_S):
    """Polls `condition` until true; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}", pytrace=False)
        time.sleep(0.05)
