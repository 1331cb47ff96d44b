//! The `sluice` client commands run as a user runs them, as processes, against a real broker:
//! `group reset-offsets|delete|describe`, `consume` (partitions, offsets, timestamps, JSON),
//! `produce` (headers, rate limit, progress) and `bench`.
//!
//! With `SLUICE_TEST_KAFKA=1` the same tests run against the reference broker (Apache Kafka
//! via `compat/kafka/kafka`, one instance for the whole test binary, stopped at exit) instead
//! of a `sluice serve` per test.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{unique_topic, Broker};
use serde_json::Value;
use sluice_client::admin::OffsetSpec;
use sluice_client::{
    Admin, Bytes, ClientConfig, Consumer, ConsumerConfig, NewTopic, Producer, ProducerConfig, ProducerRecord,
    TopicPartition,
};

/// The broker under test: a `sluice serve` of this test, or the shared Kafka.
enum Server {
    Sluice(Broker),
    Kafka(&'static str),
}

impl Server {
    fn addr(&self) -> &str {
        match self {
            Server::Sluice(b) => b.addr(),
            Server::Kafka(a) => a,
        }
    }
}

static KAFKA_DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

extern "C" fn stop_kafka() {
    if let Some(dir) = KAFKA_DIR.get() {
        let _ = Command::new(kafka_script()).arg("stop").arg(dir).stdout(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn kafka_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat/kafka/kafka")
}

fn server() -> Server {
    if std::env::var("SLUICE_TEST_KAFKA").is_ok_and(|v| v == "1") {
        static ADDR: OnceLock<String> = OnceLock::new();
        let addr = ADDR.get_or_init(|| {
            let dir = tempfile::Builder::new().prefix("sluice-cli-kafka-").tempdir().expect("tempdir").keep();
            KAFKA_DIR.set(dir.clone()).expect("set once");
            // SAFETY: registering a plain extern "C" fn with no captured state.
            unsafe { libc::atexit(stop_kafka) };
            let out = Command::new(kafka_script())
                .arg("start")
                .arg(&dir)
                .args(["--group-initial-rebalance-delay-ms", "0"])
                .stderr(Stdio::inherit())
                .output()
                .expect("run compat/kafka/kafka start");
            assert!(out.status.success(), "kafka start failed");
            String::from_utf8(out.stdout).expect("utf-8").lines().last().expect("address line").trim().to_string()
        });
        Server::Kafka(addr)
    } else {
        Server::Sluice(Broker::start_with(&["--group-initial-rebalance-delay-ms", "0"]))
    }
}

/// Runs `sluice ARGS --bootstrap-server ADDR` with `stdin`.
fn sluice(server: &Server, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .args(["--bootstrap-server", server.addr()])
        .env_remove("SLUICE_BOOTSTRAP")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(stdin.as_bytes());
    });
    let out = child.wait_with_output().expect("wait for sluice");
    writer.join().expect("stdin writer");
    out
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(out: Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} should fail, printed:\n{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).expect("utf-8 stderr")
}

async fn admin(server: &Server) -> Admin {
    Admin::connect(ClientConfig::new(server.addr())).await.expect("admin connects")
}

/// Creates `topic` and waits until each partition has a leader (Kafka publishes them a moment
/// after CreateTopics returns).
async fn create(server: &Server, topic: &str, partitions: i32) {
    let admin = admin(server).await;
    admin.create_topic(NewTopic::new(topic, partitions, 1)).await.expect("create topic");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(t) = admin.describe_topics(&[topic]).await {
            if t[0].num_partitions() == partitions && t[0].partitions.iter().all(|p| p.leader >= 0) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{topic} has no leaders after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends the records and waits for every acknowledgement.
async fn produce(server: &Server, records: Vec<ProducerRecord>) {
    let mut config = ProducerConfig::new(server.addr());
    config.linger_ms = 0;
    let producer = Producer::new(config).await.expect("producer");
    let mut pending = Vec::new();
    for r in records {
        pending.push(producer.send(r).await.expect("send"));
    }
    for d in pending {
        d.await.expect("delivered");
    }
    producer.close().await.expect("close producer");
}

/// Committed offsets of `group` (empty map when none).
async fn committed(server: &Server, group: &str) -> BTreeMap<TopicPartition, i64> {
    admin(server).await.group_offsets(group).await.expect("group offsets")
}

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

/// The rows of a table printed by sluice whose first column is `topic`, split on whitespace.
fn rows<'a>(stdout: &'a str, topic: &str) -> Vec<Vec<&'a str>> {
    stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(topic))
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// 10 records on each of 2 partitions, record i of a partition stamped `base + i s`.
async fn two_partitions_of_ten(server: &Server, topic: &str, base: i64) {
    create(server, topic, 2).await;
    let mut records = Vec::new();
    for p in 0..2 {
        for i in 0..10i64 {
            records.push(ProducerRecord::new(topic).partition(p).value(format!("p{p}-{i}")).timestamp(base + i * 1000));
        }
    }
    produce(server, records).await;
}

// SEMANTICS §9 (CLI): reset-offsets previews by default, changes offsets only with --execute,
// clamps to the log, and resolves times to the first record at or after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_reset_offsets_previews_then_executes_every_target() {
    let server = server();
    let topic = unique_topic("reset");
    let group = format!("{topic}-g");
    let base = sluice_now_ms() - 3_600_000; // an hour ago: older than --by-duration PT30M
    two_partitions_of_ten(&server, &topic, base).await;
    // Commit 4 on partition 0 and 4 on partition 1 by consuming 8 through a group (1 member).
    let out = sluice(
        &server,
        &["consume", &topic, "--group", &group, "--from-beginning", "--max", "8", "--timeout-ms", "10000"],
        "",
    );
    ok(out, "consume --group");
    let before = committed(&server, &group).await;
    assert_eq!(before.values().sum::<i64>(), 8, "{before:?}");

    // Preview: a table of current and new offsets; nothing changes.
    let stdout =
        ok(sluice(&server, &["group", "reset-offsets", &group, "--topic", &topic, "--to-earliest"], ""), "preview");
    let table = rows(&stdout, &topic);
    assert_eq!(table.len(), 2, "{stdout}");
    for row in &table {
        let p: i32 = row[1].parse().expect("partition");
        let current = before.get(&tp(&topic, p)).map_or("-".to_string(), |c| c.to_string());
        assert_eq!(row[2], current, "CURRENT-OFFSET column: {stdout}");
        assert_eq!(row[3], "0", "NEW-OFFSET column: {stdout}");
    }
    assert_eq!(committed(&server, &group).await, before, "a preview must change nothing");

    let reset = |extra: &[&str]| {
        let mut args = vec!["group", "reset-offsets", group.as_str()];
        args.extend_from_slice(extra);
        args.push("--execute");
        ok(sluice(&server, &args, ""), &format!("reset-offsets {extra:?}"))
    };
    let both = |a: i64, b: i64| BTreeMap::from([(tp(&topic, 0), a), (tp(&topic, 1), b)]);

    reset(&["--topic", &topic, "--to-earliest"]);
    assert_eq!(committed(&server, &group).await, both(0, 0));
    reset(&["--topic", &format!("{topic}:1"), "--shift-by", "3"]);
    assert_eq!(committed(&server, &group).await, both(0, 3), "only partition 1 moves");
    reset(&["--all-topics", "--shift-by", "-5"]);
    assert_eq!(committed(&server, &group).await, both(0, 0), "shifts are clamped at the log start");
    reset(&["--topic", &topic, "--to-offset", "100"]);
    assert_eq!(committed(&server, &group).await, both(10, 10), "offsets are clamped at the log end");
    reset(&["--topic", &topic, "--to-offset", "7"]);
    assert_eq!(committed(&server, &group).await, both(7, 7));
    reset(&["--topic", &topic, "--to-datetime", &(base + 4500).to_string()]);
    assert_eq!(committed(&server, &group).await, both(5, 5), "first record at or after the time");
    let iso = iso_utc(base + 2000);
    reset(&["--topic", &topic, "--to-datetime", &iso]);
    assert_eq!(committed(&server, &group).await, both(2, 2), "ISO date-time {iso}");
    reset(&["--topic", &topic, "--by-duration", "P1D"]);
    assert_eq!(committed(&server, &group).await, both(0, 0), "a day ago is before every record");
    reset(&["--topic", &topic, "--by-duration", "PT30M"]);
    assert_eq!(committed(&server, &group).await, both(10, 10), "no record in the last 30 min: the end");
    reset(&["--topic", &topic, "--to-latest"]);
    assert_eq!(committed(&server, &group).await, both(10, 10));

    // Errors say what to do.
    let err = fails(
        sluice(&server, &["group", "reset-offsets", &group, "--topic", "no-such-topic", "--to-earliest"], ""),
        "unknown topic",
    );
    assert!(err.contains("unknown topic no-such-topic"), "{err}");
    let err = fails(sluice(&server, &["group", "reset-offsets", &group, "--topic", &topic], ""), "no target");
    assert!(err.contains("--to-earliest"), "clap names the targets: {err}");
}

// SEMANTICS §9: a group with members refuses reset-offsets and delete; empty, it can be deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_members_refuses_reset_and_delete_and_describe_shows_them() {
    let server = server();
    let topic = unique_topic("members");
    let group = format!("{topic}-g");
    let base = sluice_now_ms() - 60_000;
    two_partitions_of_ten(&server, &topic, base).await;

    let mut config = ConsumerConfig::new(server.addr()).group(&group);
    config.auto_offset_reset = sluice_client::AutoOffsetReset::Earliest;
    config.enable_auto_commit = false;
    config.max_poll_records = 3;
    let mut member = Consumer::new(config).await.expect("consumer");
    member.subscribe(vec![topic.clone()]).await.expect("subscribe");
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < 3 {
        got += member.poll(Duration::from_secs(1)).await.expect("poll").len();
        assert!(Instant::now() < deadline, "the member read nothing in 30 s");
    }
    member.commit_sync().await.expect("commit");
    let before = committed(&server, &group).await;
    assert_eq!(before.values().sum::<i64>(), 3, "{before:?}");

    // describe: state, the member with its assignment, LAG and LAG-TIME per partition.
    let stdout = ok(sluice(&server, &["group", "describe", &group], ""), "describe");
    assert!(stdout.contains("state Stable") && stdout.contains("members 1"), "{stdout}");
    let member_id = member.member_id();
    let member_line = stdout.lines().find(|l| l.starts_with(&member_id)).unwrap_or_else(|| panic!("{stdout}"));
    assert!(member_line.contains(&format!("{topic}-0")) && member_line.contains(&format!("{topic}-1")), "{stdout}");
    let header = stdout.lines().find(|l| l.starts_with("TOPIC")).expect("table header");
    let cols: Vec<&str> = header.split_whitespace().collect();
    let col = |name: &str| cols.iter().position(|c| *c == name).unwrap_or_else(|| panic!("no {name} in {header}"));
    for row in rows(&stdout, &topic) {
        let p: i32 = row[col("PARTITION")].parse().expect("partition");
        let current = before.get(&tp(&topic, p)).copied().unwrap_or(0);
        assert_eq!(row[col("LOG-END-OFFSET")], "10", "{stdout}");
        assert_eq!(row[col("LAG")], (10 - current).to_string(), "{stdout}");
        // The next record to read was stamped base + current s, about 60 - current s ago.
        let lag_s: f64 = row[col("LAG-TIME")].trim_end_matches('s').parse().expect("LAG-TIME in seconds");
        let expected = (sluice_now_ms() - (base + current * 1000)) as f64 / 1000.0;
        assert!((lag_s - expected).abs() < 10.0, "LAG-TIME {lag_s} s, expected about {expected} s:\n{stdout}");
        assert_eq!(row[col("CONSUMER-ID")], member_id, "{stdout}");
    }

    let err = fails(
        sluice(&server, &["group", "reset-offsets", &group, "--all-topics", "--to-earliest", "--execute"], ""),
        "reset of a live group",
    );
    assert!(err.contains("group not empty: stop its consumers first"), "{err}");
    let err = fails(sluice(&server, &["group", "delete", &group], ""), "delete of a live group");
    assert!(err.contains("group not empty: stop its consumers first"), "{err}");
    assert_eq!(committed(&server, &group).await, before, "refused commands change nothing");

    member.close().await.expect("close (LeaveGroup)");
    let stdout = ok(sluice(&server, &["group", "delete", &group], ""), "delete of an empty group");
    assert!(stdout.contains(&format!("deleted group {group}")), "{stdout}");
    assert!(committed(&server, &group).await.is_empty(), "deleting a group deletes its offsets");
    let err = fails(sluice(&server, &["group", "describe", &group], ""), "describe of a deleted group");
    assert!(err.contains("does not exist"), "{err}");
    let err = fails(sluice(&server, &["group", "delete", &group], ""), "delete of a deleted group");
    assert!(err.contains("does not exist"), "{err}");
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

// JSON output parses and is what was produced, from a chosen partition and offset, from a
// timestamp, and to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_json_from_partitions_offsets_and_timestamps() {
    let server = server();
    let topic = unique_topic("json");
    create(&server, &topic, 2).await;
    let base = sluice_now_ms() - 100_000;
    let mut records = Vec::new();
    for i in 0..6i64 {
        let mut r = ProducerRecord::new(&topic)
            .partition(1)
            .key(format!("k{i}"))
            .value(format!("v{i} \"quoted\" ü"))
            .timestamp(base + i * 1000)
            .header("trace", Some(Bytes::from(format!("t{i}"))))
            .header("null", None);
        if i == 5 {
            r = r.value(vec![0xff, 0x00, 0x80]).header("bin", Some(Bytes::from_static(&[0xfe])));
        }
        records.push(r);
    }
    records.push(ProducerRecord::new(&topic).partition(0).value("other").timestamp(base));
    produce(&server, records).await;

    let stdout = ok(
        sluice(
            &server,
            &[
                "consume",
                &topic,
                "--partition",
                "1",
                "--offset",
                "2",
                "--format",
                "json",
                "--max",
                "3",
                "--timeout-ms",
                "10000",
            ],
            "",
        ),
        "consume --format json",
    );
    let got = json_lines(&stdout);
    assert_eq!(got.len(), 3, "{stdout}");
    for (j, v) in got.iter().enumerate() {
        let i = j as i64 + 2;
        assert_eq!(v["topic"], topic.as_str());
        assert_eq!(v["partition"], 1);
        assert_eq!(v["offset"], i);
        assert_eq!(v["timestamp"], base + i * 1000);
        assert_eq!(v["key"], format!("k{i}").as_str());
        assert_eq!(v["value"], format!("v{i} \"quoted\" ü").as_str());
        assert_eq!(
            v["headers"],
            serde_json::json!([{"key": "trace", "value": format!("t{i}")}, {"key": "null", "value": null}])
        );
    }

    // From a timestamp to the end: records 4 and 5; 5 is binary and comes as base64.
    let stdout = ok(
        sluice(
            &server,
            &[
                "consume",
                &topic,
                "--partition",
                "1",
                "--from-timestamp",
                &iso_utc(base + 3500),
                "--to-end",
                "--format",
                "json",
                "--timeout-ms",
                "10000",
            ],
            "",
        ),
        "consume --from-timestamp --to-end",
    );
    let got = json_lines(&stdout);
    assert_eq!(got.iter().map(|v| v["offset"].as_i64().unwrap()).collect::<Vec<_>>(), [4, 5], "{stdout}");
    assert_eq!(got[1]["value"], serde_json::json!({"base64": "/wCA"}));
    assert_eq!(got[1]["headers"][2], serde_json::json!({"key": "bin", "value": {"base64": "/g=="}}));

    // Every partition from the beginning to the end, as text with keys.
    let stdout = ok(
        sluice(
            &server,
            &["consume", &topic, "--offset", "earliest", "--to-end", "--key-separator", "=", "--timeout-ms", "10000"],
            "",
        ),
        "consume --to-end",
    );
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    assert_eq!(lines.len(), 7, "{stdout}");
    assert_eq!(lines[0], "=other", "a null key prints as nothing: {stdout}");
    assert_eq!(lines[1], "k0=v0 \"quoted\" ü");

    // A partition the topic does not have.
    let err =
        fails(sluice(&server, &["consume", &topic, "--partition", "7", "--timeout-ms", "100"], ""), "partition 7");
    assert!(err.contains("has no partition 7"), "{err}");
}

// Headers given on the command line and per line round-trip; --rate holds the pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_headers_round_trip_and_rate_is_respected() {
    let server = server();
    let topic = unique_topic("headers");
    create(&server, &topic, 1).await;
    let input = "x=1,y=2|k1:v1\n|k2:v2\nflag|k3:v3\n";
    let out = sluice(
        &server,
        &[
            "produce",
            &topic,
            "--header",
            "app=cli",
            "--header",
            "empty=",
            "--headers-delimiter",
            "|",
            "--key-separator",
            ":",
        ],
        input,
    );
    ok(out, "produce with headers");
    let stdout = ok(
        sluice(
            &server,
            &["consume", &topic, "--offset", "earliest", "--to-end", "--format", "json", "--timeout-ms", "10000"],
            "",
        ),
        "consume",
    );
    let got = json_lines(&stdout);
    assert_eq!(got.len(), 3, "{stdout}");
    let fixed = [serde_json::json!({"key": "app", "value": "cli"}), serde_json::json!({"key": "empty", "value": ""})];
    let per_line = [
        vec![serde_json::json!({"key": "x", "value": "1"}), serde_json::json!({"key": "y", "value": "2"})],
        vec![],
        vec![serde_json::json!({"key": "flag", "value": null})],
    ];
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v["key"], format!("k{}", i + 1).as_str());
        assert_eq!(v["value"], format!("v{}", i + 1).as_str());
        let want: Vec<Value> = fixed.iter().cloned().chain(per_line[i].iter().cloned()).collect();
        assert_eq!(v["headers"], Value::Array(want), "headers of record {i}");
    }
    let err = fails(sluice(&server, &["produce", &topic, "--headers-delimiter", "|"], "no delimiter\n"), "bad line");
    assert!(err.contains("no headers delimiter"), "{err}");

    // 40 records at 100/s: record 39 is due 390 ms after the first; the producer stamps each
    // record when it is sent, so the spread of timestamps shows the pace.
    let rate_topic = unique_topic("rate");
    create(&server, &rate_topic, 1).await;
    let input: String = (0..40).map(|i| format!("r{i}\n")).collect();
    let started = Instant::now();
    ok(sluice(&server, &["produce", &rate_topic, "--rate", "100", "--linger-ms", "0"], &input), "produce --rate");
    let wall = started.elapsed();
    let stdout = ok(
        sluice(
            &server,
            &["consume", &rate_topic, "--offset", "earliest", "--to-end", "--format", "json", "--timeout-ms", "10000"],
            "",
        ),
        "consume",
    );
    let ts: Vec<i64> = json_lines(&stdout).iter().map(|v| v["timestamp"].as_i64().unwrap()).collect();
    assert_eq!(ts.len(), 40);
    let spread = ts[39] - ts[0];
    assert!(spread >= 380, "40 records at 100/s took only {spread} ms: the limit was not applied");
    assert!(spread <= 1500, "40 records at 100/s took {spread} ms: far slower than asked");
    assert!(wall >= Duration::from_millis(380), "{wall:?}");
}

// --progress draws records/s and MB/s on stderr while reading a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_from_a_file_with_progress() {
    let server = server();
    let topic = unique_topic("progress");
    create(&server, &topic, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("records.txt");
    std::fs::write(&file, (0..500).map(|i| format!("line {i}\n")).collect::<String>()).expect("write file");
    let out = sluice(&server, &["produce", &topic, "--file", file.to_str().unwrap(), "--progress"], "");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    ok(out, "produce --file --progress");
    // The bar's last state (stderr is a pipe here: plain lines), then the summary.
    let bar = stderr.lines().find(|l| l.contains("100%") && l.contains("500 records"));
    let bar = bar.unwrap_or_else(|| panic!("no final progress line:\n{stderr}"));
    assert!(bar.contains("rec/s") && bar.contains("MB/s"), "{stderr}");
    assert!(stderr.contains("sluice: produced 500 record(s)"), "{stderr}");
    let admin = admin(&server).await;
    let end = admin.list_offsets(&[tp(&topic, 0)], OffsetSpec::Latest).await.expect("list offsets");
    assert_eq!(end[&tp(&topic, 0)].offset, 500);
}

/// `NAME v` pairs after `label latency ms:` as numbers.
fn percentiles(stdout: &str, label: &str) -> BTreeMap<String, f64> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("{label} latency ms:")))
        .unwrap_or_else(|| panic!("no {label} latency line:\n{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut out = BTreeMap::new();
    for name in ["p50", "p99", "p99.9", "max"] {
        let i = words.iter().position(|w| *w == name).unwrap_or_else(|| panic!("no {name} in {line}"));
        out.insert(name.to_string(), words[i + 1].parse::<f64>().expect("a number"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_prints_throughput_and_percentiles() {
    let server = server();
    let topic = unique_topic("bench");
    let common = ["--topic", topic.as_str(), "--records", "3000", "--record-size", "64", "--partitions", "2"];
    for kind in ["produce", "consume", "e2e"] {
        let mut args = vec!["bench", kind];
        args.extend_from_slice(&common);
        let stdout = ok(sluice(&server, &args, ""), &format!("bench {kind}"));
        let label = if kind == "consume" { "consume (per poll)" } else { kind };
        let count = if kind == "consume" {
            "consume: read 3000 records".to_string()
        } else {
            format!("{kind}: 3000 records in")
        };
        assert!(stdout.contains(&count) && stdout.contains("records/s"), "{stdout}");
        let p = percentiles(&stdout, label);
        assert!(p["p50"] > 0.0 && p["p50"] <= p["p99"] && p["p99"] <= p["p99.9"] && p["p99.9"] <= p["max"], "{p:?}");
    }
    let admin = admin(&server).await;
    let ends = admin.list_offsets(&[tp(&topic, 0), tp(&topic, 1)], OffsetSpec::Latest).await.expect("offsets");
    assert_eq!(ends.values().map(|o| o.offset).sum::<i64>(), 6000, "produce and e2e wrote 3000 each");
}

/// The number after `prefix` on the line that starts with it.
fn count_after(stdout: &str, prefix: &str) -> i64 {
    let line = stdout.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in:\n{stdout}"));
    line[prefix.len()..].split_whitespace().next().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

// `--client wire` sends pre-encoded batches and raw Fetches: what it reports acknowledged is in
// the log, what it reports fetched is all of it, and a real client decodes those batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_wire_measures_the_broker_without_a_client_library() {
    let server = server();
    let topic = unique_topic("wire");
    let common = ["--topic", topic.as_str(), "--record-size", "64", "--partitions", "2", "--client", "wire"];
    let mut args = vec!["bench", "produce", "--records", "3000", "--batch-size", "1024", "--in-flight", "3"];
    args.extend_from_slice(&common);
    let stdout = ok(sluice(&server, &args, ""), "bench produce --client wire");
    let requests = count_after(&stdout, "produce (wire): ");
    let produced = count_after(&stdout, "produce (wire, per request): ");
    // 13 records of 64 B fit a 1024 B batch; one batch per partition per request.
    assert_eq!(produced, requests * 26, "{stdout}");
    assert!((3000..3026).contains(&produced), "{stdout}");
    assert!(percentiles(&stdout, "produce (wire, per request)")["p50"] > 0.0);
    let admin = admin(&server).await;
    let ends = admin.list_offsets(&[tp(&topic, 0), tp(&topic, 1)], OffsetSpec::Latest).await.expect("offsets");
    assert_eq!(ends.values().map(|o| o.offset).sum::<i64>(), produced);

    let all = produced.to_string();
    let mut args = vec!["bench", "consume", "--records", all.as_str(), "--connections", "2"];
    args.extend_from_slice(&common);
    let stdout = ok(sluice(&server, &args, ""), "bench consume --client wire");
    assert_eq!(count_after(&stdout, "consume (wire): "), produced, "{stdout}");

    let more = (produced + 1).to_string();
    let mut args = vec!["bench", "consume", "--records", more.as_str()];
    args.extend_from_slice(&common);
    let err = fails(sluice(&server, &args, ""), "more records than the topic holds");
    assert!(err.contains("fewer than --records") && err.contains("produce them first"), "{err}");

    let stdout = ok(
        sluice(&server, &["bench", "consume", "--topic", &topic, "--records", &all, "--partitions", "2"], ""),
        "the Sluice client reads what the wire producer wrote",
    );
    assert!(stdout.contains(&format!("consume: read {produced} records")), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_went_wrong_and_what_to_do() {
    let dead = Server::Kafka("127.0.0.1:1");
    for args in [&["group", "describe", "g"][..], &["consume", "t", "--timeout-ms", "100"], &["bench", "produce"]] {
        let err = fails(sluice(&dead, args, ""), "unreachable broker");
        assert!(err.contains("127.0.0.1:1") && err.contains("is it running"), "{args:?}: {err}");
    }
    let server = server();
    let err = fails(sluice(&server, &["consume", "no-such-topic", "--timeout-ms", "100"], ""), "unknown topic");
    assert!(err.contains("unknown topic no-such-topic") && err.contains("sluice topic create"), "{err}");
    let err = fails(sluice(&server, &["group", "describe", "no-such-group"], ""), "unknown group");
    assert!(err.contains("group no-such-group does not exist"), "{err}");
    let err = fails(
        sluice(&server, &["group", "reset-offsets", "g", "--all-topics", "--to-earliest"], ""),
        "nothing committed",
    );
    assert!(err.contains("no committed offsets") && err.contains("--topic"), "{err}");
}

fn sluice_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64
}

/// Epoch milliseconds as an ISO-8601 UTC date-time, computed here independently of the CLI.
fn iso_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let out =
        Command::new("date").args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%S"]).output().expect("run date");
    assert!(out.status.success());
    format!("{}.{:03}Z", String::from_utf8(out.stdout).expect("utf-8").trim(), ms.rem_euclid(1000))
}

// `topic describe --configs` shows what DescribeConfigs reports: a value set on the topic, and
// defaults marked as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_describe_shows_configs() {
    let server = server();
    let topic = unique_topic("configs");
    ok(sluice(&server, &["topic", "create", &topic, "--config", "retention.ms=3600000"], ""), "topic create");
    let stdout = ok(sluice(&server, &["topic", "describe", &topic, "--configs"], ""), "topic describe --configs");
    let line = |name: &str| {
        stdout
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in:\n{stdout}"))
            .to_string()
    };
    assert_eq!(line("retention.ms"), "retention.ms=3600000", "set on the topic, so not a default");
    assert!(line("cleanup.policy").ends_with("(default)"), "{stdout}");
}
