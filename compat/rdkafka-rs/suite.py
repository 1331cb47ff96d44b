"""compat suite `rdkafka-rs`: the integration tests of the `rdkafka` crate (rust-rdkafka, the Rust
binding of librdkafka), tests/*.rs of the crates.io package, run against the broker compat/run
started.

At run time (nothing of theirs is committed):
- the crate's source comes from the cargo registry: a throwaway project under
  compat/work/rdkafka-rs/fetch depends on rdkafka =VERSION and `cargo metadata` fetches it if the
  registry lacks it; it is copied to compat/work/rdkafka-rs/src-VERSION (with an empty
  [workspace] table appended to its Cargo.toml, so that the repository's workspace does not
  claim it);
- `cargo test --locked --no-run` builds its test binaries (the crate ships its Cargo.lock;
  default features: libz, tokio; librdkafka is compiled by rdkafka-sys) into
  CARGO_TARGET_DIR=compat/work/rdkafka-rs-target. A cold build takes about 5 minutes on 2 cores,
  a warm one a few seconds;
- each test binary of tests/ runs with KAFKA_HOST=ADDR (what tests/utils.rs reads); outcomes come
  from libtest's "test NAME ... ok|FAILED|ignored" lines, the names from `--list`. A test named in
  --list that reports nothing (the binary crashed or was killed) is a failure.

The tests were written for the crate's docker-compose broker (num.partitions=3, broker id 0 on
localhost:9092). compat/run starts both brokers with num.partitions=6, so both auto-create
topics alike (tests produce to partitions 1 and 2 of auto-created topics). Tests that need exactly 3 partitions, broker id 0 or port 9092
fail against Kafka too and are excluded on both (EXCLUDED).

Not in the CI subset: the cold build is over the CI budget (IN_CI below; the lead decides).
Test names: BINARY::TEST, BINARY a file of tests/ without .rs.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import time

NAME = "rdkafka-rs"
VERSION = "0.39.0"

# The cold build (librdkafka and ~150 crates) takes ~5 min on 2 cores: over what one suite may
# take in CI. With IN_CI false, `compat/run` without --full runs nothing of this suite
# (COMPAT_RDKAFKA_RS_IN_CI=1 runs its CI subset anyway, e.g. with a warm build cache).
IN_CI = os.environ.get("COMPAT_RDKAFKA_RS_IN_CI") == "1"
# CI subset when IN_CI: quick, stable tests of producing, consuming, groups, seeking, metadata.
CI_TESTS = [
    "test_high_producers::test_future_producer_send_full",
    "test_low_producers::test_base_producer_headers",
    "test_low_producers::test_threaded_producer_send",
    "test_low_producers::test_base_producer_queue_full",
    "test_high_consumers::test_produce_consume_base",
    "test_high_consumers::test_produce_consume_base_assign",
    "test_high_consumers::test_produce_consume_with_timestamp",
    "test_high_consumers::test_consume_partition_order",
    "test_low_consumers::test_produce_consume_seek",
    "test_low_consumers::test_produce_consume_iter",
    "test_metadata::test_subscription",
    "test_admin::test_groups",
    "utils::tests::test_populate_topic",
]


_NODE0 = "broker id 0"
_BOTH = {
    "test_admin::test_topics":
        "fails against Kafka too: creates a topic with replica assignment [[0],[0],[0]] and adds "
        "partitions assigned to broker 0 (the docker-compose broker's id); compat/kafka's node.id is "
        "1, so CreateTopics answers INVALID_REPLICA_ASSIGNMENT (39)",
    "test_admin::test_configs":
        "fails against Kafka too: DescribeConfigs for BROKER resource \"0\" (the docker-compose "
        "broker's id); compat/kafka's node.id is 1, and librdkafka times out after 60 s",
    "test_metadata::test_metadata":
        "fails against Kafka too: expects the broker to be id 0 on port 9092 and auto-created "
        "topics to have 3 partitions (the crate's docker-compose broker); compat/kafka is node 1 on "
        "a free port with num.partitions=6",
    "test_high_consumers::test_consumer_commit_message":
        "fails against Kafka too: expects the auto-created topic to have exactly 3 partitions "
        "(docker-compose num.partitions=3); compat/kafka creates 6",
    "test_high_consumers::test_consumer_store_offset_commit":
        "fails against Kafka too: expects the auto-created topic to have exactly 3 partitions "
        "(docker-compose num.partitions=3); compat/kafka creates 6",
    "test_high_consumers::test_consumer_commit_metadata":
        "fails against Kafka too: expects the auto-created topic to have exactly 3 partitions "
        "(docker-compose num.partitions=3); compat/kafka creates 6",
    "test_high_producers::test_future_producer_send":
        "fails against Kafka too: the test's producer has bootstrap.servers=localhost (port 9092) "
        "hard-coded and ignores KAFKA_HOST; nothing listens there, delivery times out",
    "test_high_producers::test_future_producer_send_fail":
        "fails against Kafka too: bootstrap.servers=localhost (port 9092) hard-coded, ignores "
        "KAFKA_HOST; expects UnknownPartition, gets MessageTimedOut",
}
_TXN = ("transactions are not served: the test hangs in init_transactions (a run of "
        "test_transaction_commit was still waiting after 120 s)")
EXCLUDED = {
    "kafka": dict(_BOTH),
    "sluice": dict(_BOTH, **{
        "test_transactions::test_transaction_abort": _TXN,
        "test_transactions::test_transaction_commit": _TXN,
        "test_transactions::test_transaction_misuse": _TXN,
    }),
}

BINARY_TIMEOUT_S = 900  # one test binary, all its tests; a hung test must not hang compat/run


def _crate_source(ctx, work):
    """The registry's unpacked rdkafka-VERSION, fetched with a throwaway project if absent."""
    fetch = os.path.join(work, "fetch")
    os.makedirs(os.path.join(fetch, "src"), exist_ok=True)
    manifest = os.path.join(fetch, "Cargo.toml")
    text = ("[package]\nname = \"rdkafka-rs-compat-fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n"
            f"publish = false\n\n[dependencies]\nrdkafka = \"={VERSION}\"\n\n[workspace]\n")
    if not os.path.exists(manifest) or open(manifest).read() != text:
        with open(manifest, "w") as f:
            f.write(text)
    open(os.path.join(fetch, "src", "lib.rs"), "a").close()
    r = subprocess.run(["cargo", "metadata", "--format-version", "1"], cwd=fetch,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise ctx.SetupError(f"cargo metadata (fetching rdkafka {VERSION}) failed: {r.stderr[-2000:]}")
    for p in json.loads(r.stdout)["packages"]:
        if p["name"] == "rdkafka" and p["version"] == VERSION:
            return os.path.dirname(p["manifest_path"])
    raise ctx.SetupError(f"rdkafka {VERSION} not found by cargo metadata")


def _prepare(ctx, out_dir):
    """Source copy and test binaries: {binary target name: executable path}."""
    work = os.path.join(ctx.here, "work", NAME)
    src = os.path.join(work, f"src-{VERSION}")
    stamp = os.path.join(src, ".compat-copied")
    if not os.path.exists(stamp):
        shutil.rmtree(src, ignore_errors=True)
        origin = _crate_source(ctx, work)
        ctx.log(f"{NAME}: copying {origin} to {os.path.relpath(src, ctx.repo)}")
        shutil.copytree(origin, src)
        if not os.path.isdir(os.path.join(src, "tests")):
            raise ctx.SetupError(f"no tests/ in {origin}")
        with open(os.path.join(src, "Cargo.toml"), "a") as f:
            f.write("\n[workspace]\n")  # not a member of the repository's workspace
        open(stamp, "w").close()
    target = os.path.join(ctx.here, "work", f"{NAME}-target")
    build_json = os.path.join(out_dir, "cargo-build.json")
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    ctx.log(f"{NAME}: cargo test --no-run in {os.path.relpath(src, ctx.repo)} "
            f"(target {os.path.relpath(target, ctx.repo)}; a cold build takes ~5 min)")
    t0 = time.monotonic()
    with open(build_json, "wb") as out, open(os.path.join(out_dir, "cargo-build.log"), "wb") as err:
        status = ctx.run_suite_cmd(["cargo", "test", "--locked", "--no-run", "--message-format=json"],
                                   cwd=src, env=env, stdout=out, stderr=err)
    build_s = time.monotonic() - t0
    ctx.log(f"{NAME}: build finished in {build_s:.0f} s (status {status})")
    if status != 0:
        raise ctx.SetupError(f"cargo test --no-run failed (see {os.path.relpath(out_dir, ctx.repo)}/cargo-build.log)")
    binaries = {}
    with open(build_json, errors="replace") as f:
        for line in f:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if (m.get("reason") == "compiler-artifact" and m.get("executable")
                    and m.get("profile", {}).get("test") and "test" in m["target"]["kind"]
                    and m["package_id"].find("rdkafka") >= 0):
                binaries[m["target"]["name"]] = m["executable"]
    if not binaries:
        raise ctx.SetupError("cargo test --no-run built no test binary")
    return binaries, build_s


_RESULT = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)\b")


def _list_tests(ctx, exe):
    r = subprocess.run([exe, "--list", "--format", "terse"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    if r.returncode != 0:
        raise ctx.SetupError(f"{exe} --list failed")
    return [line[:-len(": test")] for line in r.stdout.splitlines() if line.endswith(": test")]


def run(addr, ctx, full, out_dir):
    if not full and not IN_CI:
        ctx.log(f"{NAME}: not in the CI subset (cold build ~5 min); run it with --full")
        return {"tests": {}, "excluded": {},
                "detail": f"rdkafka {VERSION} tests/: not in the CI subset (build too long), see --full"}
    binaries, build_s = _prepare(ctx, out_dir)

    excluded_all = dict(EXCLUDED.get(ctx.broker, {}))
    excluded = {}
    tests = {}
    env = dict(os.environ, KAFKA_HOST=addr, RUST_BACKTRACE="1")
    env.pop("KAFKA_VERSION", None)  # unset: the tests assume the newest broker
    for binary in sorted(binaries):
        exe = binaries[binary]
        names = _list_tests(ctx, exe)
        wanted = [n for n in names if full or f"{binary}::{n}" in CI_TESTS]
        skip = [n for n in wanted if f"{binary}::{n}" in excluded_all]
        for n in skip:
            excluded[f"{binary}::{n}"] = excluded_all[f"{binary}::{n}"]
        run_names = [n for n in wanted if n not in skip]
        if not run_names:
            continue
        args = ["timeout", "-k", "10", str(BINARY_TIMEOUT_S), exe, "--exact"] + run_names
        stdout = os.path.join(out_dir, f"{binary}.out")
        ctx.log(f"{NAME}: {binary}: {len(run_names)} tests")
        with open(stdout, "wb") as out, open(os.path.join(out_dir, f"{binary}.stderr"), "wb") as err:
            status = ctx.run_suite_cmd(args, env=env, stdout=out, stderr=err)
        seen = {}
        with open(stdout, errors="replace") as f:
            for line in f:
                m = _RESULT.match(line)
                if m:
                    seen[m.group(1)] = {"ok": "pass", "FAILED": "fail", "ignored": "skip"}[m.group(2)]
        for n in run_names:
            tests[f"{binary}::{n}"] = seen.get(n, "fail")  # no result line: crashed or killed
        if status not in (0, 101):
            ctx.log(f"{NAME}: {binary} exited with status {status}")
    if not full:
        for n in CI_TESTS:  # a renamed CI test must not pass silently
            if n not in tests and n not in excluded:
                tests[n] = "fail"
    return {"tests": tests, "excluded": excluded,
            "detail": f"rdkafka {VERSION} (crates.io) tests/*.rs, "
                      + ("all tests" if full else f"{len(CI_TESTS)} named tests")
                      + f"; build {build_s:.0f} s"}
