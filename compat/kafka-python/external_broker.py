"""pytest plugin of ours (loaded with `-p external_broker`) that lets kafka-python's integration
tests, unpacked from its PyPI sdist, run against a broker that is already running.

Their conftest.py already supports an external broker: with KAFKA_URI=PLAINTEXT://HOST:PORT its
`kafka_broker_factory` returns `KafkaFixture.instance(0, host, port, external=True)`, which starts
nothing. Two pieces of the test tree are not in the sdist though, and this plugin stands in for
them:

- the `test` package itself (test/__init__.py is not shipped, so `from test.testutil import ...`
  would find Python's own regression-test package `test`): we register a package `test` whose
  path is the sdist's test/ directory (the current directory's, or $KPY_SDIST_DIR's);
- `test.service` (ExternalService, SpawnedService), imported by test/integration/fixtures.py: an
  external broker needs only a placeholder "child" for it; launching a broker is refused with a
  clear error, since this plugin is only for an already-running one.

The broker address comes from KAFKA_URI; KAFKA_ROOT must name an existing directory (the fixture
checks for a Kafka distribution there even when it starts none).
"""
import os
import sys
import types


class ExternalService:
    """The fixture's handle for a broker it did not start: nothing to dump or stop."""

    def __init__(self, host, port):
        self.host = host
        self.port = port

    def start(self):
        pass

    def stop(self):
        pass

    def dump_logs(self):
        pass

    def wait_for(self, pattern, timeout=30):
        return True


class SpawnedService:
    """Launching a broker from a distribution is not what this suite does."""

    def __init__(self, args=None, env=None):
        raise RuntimeError(
            "compat/kafka-python runs against an already-running broker (KAFKA_URI); "
            "this test wants to launch its own Kafka from a distribution")


def _install():
    sdist = os.environ.get("KPY_SDIST_DIR") or os.getcwd()
    test_dir = os.path.join(sdist, "test")
    if not os.path.isdir(os.path.join(test_dir, "integration")):
        raise RuntimeError(f"external_broker: no kafka-python test tree at {test_dir}")
    pkg = sys.modules.get("test")
    if pkg is None or list(getattr(pkg, "__path__", [])) != [test_dir]:
        pkg = types.ModuleType("test")
        pkg.__path__ = [test_dir]
        pkg.__file__ = None
        sys.modules["test"] = pkg
    service = types.ModuleType("test.service")
    service.ExternalService = ExternalService
    service.SpawnedService = SpawnedService
    sys.modules["test.service"] = service
    pkg.service = service


_install()
