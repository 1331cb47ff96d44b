"""compat suite `rdkafka-rs`: the integration tests of the `rdkafka` crate (rust-rdkafka, the Rust
binding of librdkafka), tests/*.rs of the crates.io package, run against the broker compat/run
started.

At run time (nothing of theirs is committed):
- the crate's source comes from the cargo registry: a throwaway project under
  compat/work/rdkafka-rs/fetch depends on rdkafka =VERSION and `cargo metadata` fetches it if the
  registry lacks it; it is copied to compat/work/rdkafka-rs/src-VERSION (with an empty
  [workspace] table appended to its Cargo.toml, so that the repository's workspace does not
  claim it);
- its test binaries (tests/*.rs) are built, by default reusing the librdkafka (rdkafka-sys) that
  the repository's own `cargo test --release --workspace` compiled into
  ${CARGO_TARGET_DIR:-REPO/target} (crates/cli's dev-dependency on rdkafka): a second copy,
  compat/work/rdkafka-rs/ws-src-VERSION, gets a Cargo.lock seeded from the repository's and the
  workspace's features and profile for rdkafka-sys and its dependencies, and `cargo test
  --release --no-run` in that target dir finds rdkafka-sys fresh (see _prepare_workspace). About
  a minute on 2 cores when only the workspace is built, a few seconds once built;
- when that target dir holds no release build of rdkafka-sys (or COMPAT_RDKAFKA_RS_REUSE=0), the
  isolated build instead: `cargo test --locked --no-run` in src-VERSION with the crate's shipped
  Cargo.lock (default features: libz, tokio) into CARGO_TARGET_DIR=compat/work/rdkafka-rs-target;
  a cold build compiles librdkafka and takes about 5 minutes on 2 cores, a warm one a few seconds;
- each test binary of tests/ runs with KAFKA_HOST=ADDR (what tests/utils.rs reads); outcomes come
  from libtest's "test NAME ... ok|FAILED|ignored" lines, the names from `--list`. A test named in
  --list that reports nothing (the binary crashed or was killed) is a failure.

The tests were written for the crate's docker-compose broker (num.partitions=3, broker id 0 on
localhost:9092). compat/run starts both brokers with num.partitions=6, so both auto-create
topics alike (tests produce to partitions 1 and 2 of auto-created topics). Tests that need exactly 3 partitions, broker id 0 or port 9092
fail against Kafka too and are excluded on both (EXCLUDED).

Test names: BINARY::TEST, BINARY a file of tests/ without .rs.
"""
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import time

NAME = "rdkafka-rs"
VERSION = "0.39.0"

# In CI the tests are built reusing the workspace's release build of librdkafka (see
# _prepare_workspace): about a minute of building instead of ~5. COMPAT_RDKAFKA_RS_IN_CI=0 leaves
# the suite out of `compat/run` without --full; COMPAT_RDKAFKA_RS_REUSE=0 forces the isolated
# build (debug, the crate's own Cargo.lock, compat/work/rdkafka-rs-target).
IN_CI = os.environ.get("COMPAT_RDKAFKA_RS_IN_CI", "1") != "0"
REUSE_WORKSPACE_BUILD = os.environ.get("COMPAT_RDKAFKA_RS_REUSE", "1") != "0"
# CI subset: quick, stable tests of producing, consuming, groups, seeking, metadata.
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
    "test_low_consumers::test_produce_consume_message_queue_nonempty_callback":
        "intermittent against Kafka too (1 of 2 full runs there, 2 of 6 on Sluice): asserts that an "
        "empty partition's queue wakes its callback 0 times within 1 s and sees 1; librdkafka's "
        "debug logs show the same requests and answers in passing and failing runs, only the "
        "client's internal thread order differs",
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


def _source(ctx, work):
    """compat/work/rdkafka-rs/src-VERSION: the crate's source, its own workspace root."""
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
    return src


def _test_binaries(ctx, build_json):
    """{binary target name: executable} from cargo's JSON messages, and whether the rdkafka-sys
    library was fresh (None when cargo did not report it)."""
    binaries = {}
    sys_fresh = None
    with open(build_json, errors="replace") as f:
        for line in f:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if m.get("reason") != "compiler-artifact":
                continue
            if m["target"]["name"] == "rdkafka_sys" and "lib" in m["target"]["kind"]:
                sys_fresh = m.get("fresh")
            if (m.get("executable") and m.get("profile", {}).get("test")
                    and "test" in m["target"]["kind"] and m["package_id"].find("rdkafka") >= 0):
                binaries[m["target"]["name"]] = m["executable"]
    return binaries, sys_fresh


def _cargo_build(ctx, cmd, cwd, target, out_dir, what):
    build_json = os.path.join(out_dir, "cargo-build.json")
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    ctx.log(f"{NAME}: {' '.join(cmd)} in {os.path.relpath(cwd, ctx.repo)} "
            f"(target {os.path.relpath(target, ctx.repo)}; {what})")
    t0 = time.monotonic()
    with open(build_json, "wb") as out, open(os.path.join(out_dir, "cargo-build.log"), "ab") as err:
        status = ctx.run_suite_cmd(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
    build_s = time.monotonic() - t0
    ctx.log(f"{NAME}: build finished in {build_s:.0f} s (status {status})")
    if status != 0:
        return None, None, build_s
    binaries, sys_fresh = _test_binaries(ctx, build_json)
    if not binaries:
        raise ctx.SetupError("cargo built no test binary")
    return binaries, sys_fresh, build_s


# ---------------------------------------------------------------------------------------------
# Reusing the workspace's librdkafka build.
#
# The repository's own `cargo build/test --release --workspace` (scripts/test, CI) already compiles
# rdkafka VERSION and librdkafka (rdkafka-sys) in release mode into ${CARGO_TARGET_DIR:-REPO/target}
# (crates/cli's dev-dependency). Cargo reuses a compiled unit when its metadata hash matches: same
# package versions, features, profile and the same hashes for all its dependencies, recursively.
# So the tests are built (cargo test --release) in that target dir from a second copy of the
# crate, compat/work/rdkafka-rs/ws-src-VERSION, whose build reproduces the workspace's rdkafka-sys
# unit:
# - Cargo.lock seeded from the repository's Cargo.lock (`cargo update --workspace` then resolves
#   only what the tests add), so every shared package has the workspace's version;
# - [workspace] resolver = "2" and the repository's [profile.*] tables;
# - the features: cargo's resolver enables on each package the union of what its dependents ask
#   for, and the tests' dependencies ask for a different union than the workspace's members do.
#   For every package rdkafka-sys's build depends on (its closure, from `cargo metadata` of the
#   repository) the copy asks for exactly the workspace's features: target-side packages as
#   dev-dependencies, host-side ones (build scripts, proc-macros and their dependencies) as
#   dependencies of a small empty proc-macro crate, compat-host-features (a proc-macro's
#   dependencies are built for the host). Features can only be added this way: where the tests
#   alone enable more than the workspace does, rdkafka-sys is rebuilt (once; the log says so);
# - to keep the rest short: the dev-dependencies that only the crate's examples use (async-std,
#   smol, clap...) are dropped from the copy, and every package outside that closure (the crate
#   itself, the tests' dependencies) is compiled with opt-level 0 (profile overrides by
#   name@version), which cannot change the closure's units.
# When the target dir holds no release build of rdkafka-sys (the workspace's tests were not built
# in release there), the isolated build below is used instead.

HOST_CRATE = "compat-host-features"


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise ValueError(f"unsupported TOML value {v!r}")


def _dep_tables(section, pkgs, features):
    """[section.KEY] tables asking for exactly these versions and features; KEY is the package's
    name (as the crate itself names its dependencies: cargo refuses one package under two names),
    with the version appended where two versions of a package are listed."""
    names = [p["name"] for p in pkgs]
    out = []
    for p in sorted(pkgs, key=lambda p: (p["name"], p["version"])):
        key = p["name"]
        if names.count(key) > 1:
            key += "-" + re.sub(r"[^A-Za-z0-9_-]", "_", p["version"])
        version = p["version"].split("+")[0]  # cargo ignores (and warns about) build metadata
        out.append(f"\n[{section}.{key}]\npackage = {json.dumps(p['name'])}\nversion = \"={version}\"\n"
                   f"default-features = false\nfeatures = {_toml_value(sorted(features[p['id']]))}\n")
    return out


def _workspace_plan(ctx, src):
    """(plan, None): what the copy ws-src-VERSION is made of, or (None, reason)."""
    target = os.path.abspath(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ctx.repo, "target"))
    if not glob.glob(os.path.join(target, "release", ".fingerprint", "rdkafka-sys-*", "lib-rdkafka_sys.json")):
        return None, f"{target} holds no release build of rdkafka-sys"
    host = None
    r = subprocess.run(["rustc", "-vV"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in r.stdout.splitlines():
        if line.startswith("host: "):
            host = line.split()[1]
    if not host:
        return None, "rustc -vV printed no host triple"
    r = subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", host],
                       cwd=ctx.repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        return None, f"cargo metadata of the repository failed: {r.stderr[-500:]}"
    meta = json.loads(r.stdout)
    pkgs = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    registry = "registry+https://github.com/rust-lang/crates.io-index"
    ours = [i for i in nodes if pkgs[i]["name"] == "rdkafka" and pkgs[i]["version"] == VERSION
            and pkgs[i].get("source") == registry]
    if not ours:
        return None, f"the workspace does not depend on rdkafka {VERSION} from crates.io"
    sys_ids = [d["pkg"] for d in nodes[ours[0]]["deps"] if pkgs[d["pkg"]]["name"] == "rdkafka-sys"]
    if not sys_ids:
        return None, "rdkafka-sys not found among rdkafka's dependencies"

    def proc_macro(i):
        return any("proc-macro" in t["kind"] for t in pkgs[i]["targets"])

    target_side, host_side = set(), set()

    def walk(i, on_host):
        side = host_side if on_host else target_side
        if i in side:
            return
        side.add(i)
        for d in nodes[i]["deps"]:
            kinds = {k["kind"] for k in d["dep_kinds"]}
            if "build" in kinds:
                walk(d["pkg"], True)
            if None in kinds:
                walk(d["pkg"], on_host or proc_macro(d["pkg"]))
    walk(sys_ids[0], False)
    for i in target_side | host_side:
        if pkgs[i].get("source") != registry:
            return None, f"{pkgs[i]['name']} in rdkafka-sys's closure is not from crates.io"

    import tomllib
    with open(os.path.join(ctx.repo, "Cargo.toml"), "rb") as f:
        profiles = tomllib.load(f).get("profile", {})
    with open(os.path.join(src, "Cargo.toml")) as f:
        manifest = f.read()
    manifest, dropped = _prune_dev_dependencies(src, manifest)
    dev_keys = set(tomllib.loads(manifest).get("dev-dependencies", {}))
    clash = sorted(dev_keys & ({pkgs[i]["name"] for i in target_side} | {HOST_CRATE}))
    if clash:
        return None, f"the crate's [dev-dependencies] already name {', '.join(clash)}"
    features = {i: n["features"] for i, n in nodes.items()}
    manifest += ''.join(['resolver = "2"\n', f"\n[dev-dependencies.{HOST_CRATE}]\npath = \"{HOST_CRATE}\"\n"]
                        + _dep_tables("dev-dependencies", [pkgs[i] for i in target_side], features))
    host_manifest = [f"[package]\nname = \"{HOST_CRATE}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n"
                     "publish = false\n\n[lib]\nproc-macro = true\npath = \"lib.rs\"\n"]
    host_manifest += _dep_tables("dependencies", [pkgs[i] for i in host_side], features)
    return {
        "target": target,
        "manifest": manifest,  # without [profile]: see _profiles
        "files": {
            f"{HOST_CRATE}/Cargo.toml": "".join(host_manifest),
            f"{HOST_CRATE}/lib.rs": "// Empty: only its dependencies' features matter (compat/rdkafka-rs/suite.py).\n",
        },
        "profiles": profiles,
        "closure": sorted({f"{pkgs[i]['name']}@{pkgs[i]['version']}" for i in target_side | host_side}),
        "dropped": dropped,
    }, None


def _prune_dev_dependencies(src, manifest):
    """The crate's (normalized) manifest without the dev-dependencies that no file of tests/ names
    (those of its examples: async-std, smol, clap...), which the test binaries do not need."""
    tests = ""
    for path in glob.glob(os.path.join(src, "tests", "*.rs")):
        with open(path, errors="replace") as f:
            tests += f.read()
    dropped = []
    for m in list(re.finditer(r"^\[dev-dependencies\.([A-Za-z0-9_-]+)\]\n(?:[^\[\n].*\n|\n)*", manifest, re.M)):
        key = m.group(1)
        if not re.search(r"\b" + re.escape(key.replace("-", "_")) + r"\b", tests):
            dropped.append(key)
    for key in dropped:
        manifest = re.sub(r"^\[dev-dependencies\." + re.escape(key) + r"\]\n(?:[^\[\n].*\n|\n)*", "",
                          manifest, count=1, flags=re.M)
    return manifest, dropped


def _profiles(profiles, lock_text, closure):
    """The repository's [profile.*] tables (the closure's units must get the workspace's profile),
    plus opt-level 0 and line tables only for every other package of the copy's Cargo.lock (the
    test binaries and the tests' dependencies: compiled optimized, the build takes twice as long)."""
    import copy
    import tomllib
    profiles = copy.deepcopy(profiles)
    release = profiles.setdefault("release", {})
    overrides = release.setdefault("package", {})
    for p in tomllib.loads(lock_text).get("package", []):
        spec = f"{p['name']}@{p['version']}"
        if spec not in closure and p["name"] != HOST_CRATE:
            overrides.setdefault(spec, {"opt-level": 0, "debug": "line-tables-only"})
    out = []
    for name, table in profiles.items():
        out.append(f"\n[profile.{json.dumps(name)}]\n")
        out += [f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in table.items()]
    return "".join(out)


def _prepare_workspace(ctx, work, src, out_dir):
    """Test binaries built in the workspace's target dir, or None (with the reason logged) when
    the workspace's rdkafka-sys build cannot be reused."""
    plan, reason = _workspace_plan(ctx, src)
    if plan is None:
        ctx.log(f"{NAME}: not reusing the workspace's librdkafka build: {reason}")
        return None
    ws = os.path.join(work, f"ws-src-{VERSION}")
    with open(os.path.join(ctx.repo, "Cargo.lock")) as f:
        repo_lock = f.read()
    key = hashlib.sha256(json.dumps([dict(plan, target=None), repo_lock], sort_keys=True).encode()).hexdigest()
    stamp = os.path.join(ws, ".compat-seeded")
    if not os.path.exists(stamp) or open(stamp).read() != key:
        ctx.log(f"{NAME}: preparing {os.path.relpath(ws, ctx.repo)} (Cargo.lock seeded from the "
                f"repository's; dev-dependencies of the examples dropped: {', '.join(plan['dropped'])})")
        shutil.rmtree(ws, ignore_errors=True)
        shutil.copytree(src, ws, ignore=shutil.ignore_patterns(".compat-copied", "Cargo.lock"))
        for rel, text in dict(plan["files"], **{"Cargo.toml": plan["manifest"], "Cargo.lock": repo_lock}).items():
            os.makedirs(os.path.dirname(os.path.join(ws, rel)), exist_ok=True)
            with open(os.path.join(ws, rel), "w") as f:
                f.write(text)
        # Locks only what the repository's lock lacks; offline first (the local registry usually
        # has it all), then online.
        for extra in (["--offline"], []):
            with open(os.path.join(out_dir, "cargo-build.log"), "ab") as err:
                status = ctx.run_suite_cmd(["cargo", "update", "--workspace"] + extra, cwd=ws,
                                           stdout=subprocess.DEVNULL, stderr=err)
            if status == 0:
                break
        else:
            ctx.log(f"{NAME}: cargo update --workspace failed in {os.path.relpath(ws, ctx.repo)}")
            return None
        with open(os.path.join(ws, "Cargo.lock")) as f:
            profiles = _profiles(plan["profiles"], f.read(), set(plan["closure"]))
        with open(os.path.join(ws, "Cargo.toml"), "a") as f:
            f.write(profiles)
        with open(stamp, "w") as f:
            f.write(key)
    cmd = ["cargo", "test", "--release", "--locked", "--no-run", "--test", "*", "--message-format=json"]
    binaries, sys_fresh, build_s = _cargo_build(
        ctx, cmd, ws, plan["target"], out_dir, "reusing the workspace's release build of rdkafka-sys")
    if binaries is None:
        ctx.log(f"{NAME}: the build reusing the workspace's target dir failed; falling back")
        return None
    if sys_fresh is False:
        ctx.log(f"{NAME}: WARNING: rdkafka-sys was rebuilt, not reused: its features or those of a "
                f"dependency differ from the workspace's (cargo build -v shows which unit was dirty)")
    how = ("workspace target dir, its rdkafka-sys build reused" if sys_fresh
           else "workspace target dir, rdkafka-sys rebuilt")
    return binaries, build_s, how


def _prepare(ctx, out_dir):
    """Source copy and test binaries: ({binary target name: executable path}, build seconds, how)."""
    work = os.path.join(ctx.here, "work", NAME)
    src = _source(ctx, work)
    open(os.path.join(out_dir, "cargo-build.log"), "wb").close()
    if REUSE_WORKSPACE_BUILD:
        built = _prepare_workspace(ctx, work, src, out_dir)
        if built:
            return built
    target = os.path.join(ctx.here, "work", f"{NAME}-target")
    cmd = ["cargo", "test", "--locked", "--no-run", "--test", "*", "--message-format=json"]
    binaries, _, build_s = _cargo_build(ctx, cmd, src, target, out_dir,
                                        "isolated, the crate's Cargo.lock; a cold build takes ~5 min")
    if binaries is None:
        raise ctx.SetupError(f"cargo test --no-run failed (see {os.path.relpath(out_dir, ctx.repo)}/cargo-build.log)")
    return binaries, build_s, "debug, isolated build"


_RESULT = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)\b")


def _list_tests(ctx, exe):
    r = subprocess.run([exe, "--list", "--format", "terse"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    if r.returncode != 0:
        raise ctx.SetupError(f"{exe} --list failed")
    return [line[:-len(": test")] for line in r.stdout.splitlines() if line.endswith(": test")]


def run(addr, ctx, full, out_dir):
    if not full and not IN_CI:
        ctx.log(f"{NAME}: not in the CI subset (COMPAT_RDKAFKA_RS_IN_CI=0); run it with --full")
        return {"tests": {}, "excluded": {},
                "detail": f"rdkafka {VERSION} tests/: CI subset not run (COMPAT_RDKAFKA_RS_IN_CI=0), see --full"}
    binaries, build_s, how = _prepare(ctx, out_dir)

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
                      + f"; build {build_s:.0f} s ({how})"}
