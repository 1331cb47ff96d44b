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

One patch to the client, the same against both brokers: kafka-python 3.0.12 loses a topic
subscribed while a Metadata request is in flight (`ClusterMetadata.set_topics`: "TODO: handle
future when old metadata request is currently in-flight"). The answer to the older request
clears the update flag that the subscription set, and the consumer then sees no partitions until
`metadata_max_age_ms` (300 s) has passed. Whether `subscribe()` lands before or after that answer
is a matter of a millisecond; the consumer tests failed that way now and then against Sluice
(traced in compat/KNOWN_GAPS.md). `_keep_topics_added_in_flight` does what the TODO asks: a
topic added after a request was built keeps the update flag set. COMPAT_KPY_UNPATCHED=1 leaves
the client as published.
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


def _keep_topics_added_in_flight():
    from kafka.cluster import ClusterMetadata

    if getattr(ClusterMetadata, "_compat_patched", False) or os.environ.get("COMPAT_KPY_UNPATCHED") == "1":
        return
    build, apply = ClusterMetadata.metadata_request, ClusterMetadata.update_metadata

    def metadata_request(self):
        # the topics this request asks about (None: all of them)
        self._compat_asked = None if self.need_all_topic_metadata else set(self._topics)
        return build(self)

    def update_metadata(self, metadata):
        result = apply(self, metadata)
        asked = getattr(self, "_compat_asked", None)
        if asked is not None and set(self._topics) - asked:
            self.request_update()  # a topic came after the request: ask again
        return result

    ClusterMetadata.metadata_request = metadata_request
    ClusterMetadata.update_metadata = update_metadata
    ClusterMetadata._compat_patched = True


_install()
_keep_topics_added_in_flight()
