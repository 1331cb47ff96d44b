//! `sluice serve`: settings from flags, `SLUICE_*` environment variables and a TOML file (in
//! that order of precedence), then the broker until SIGINT/SIGTERM or a storage failure.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use serde::Deserialize;
use sluice_broker::{Broker, BrokerConfig, Durability};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "SLUICE_LISTEN")]
    listen: Option<String>,
    /// Directory holding the logs and metadata (created if missing).
    #[arg(long, env = "SLUICE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// HOST:PORT clients are told to connect to; the listen address when unset.
    #[arg(long, env = "SLUICE_ADVERTISE")]
    advertise: Option<String>,
    /// TOML file with settings (flags and SLUICE_* variables override it).
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
    /// When acks=1/all is acknowledged: `fsync` (after fdatasync, default) or `page-cache`.
    #[arg(long, env = "SLUICE_DURABILITY")]
    durability: Option<String>,
    /// `node.id` of this broker.
    #[arg(long, env = "SLUICE_NODE_ID")]
    node_id: Option<i32>,
    /// `num.partitions` for auto-created topics.
    #[arg(long, env = "SLUICE_NUM_PARTITIONS")]
    num_partitions: Option<i32>,
    /// `auto.create.topics.enable`.
    #[arg(long, env = "SLUICE_AUTO_CREATE_TOPICS")]
    auto_create_topics: Option<bool>,
    /// `log.segment.bytes` default for topics.
    #[arg(long, env = "SLUICE_LOG_SEGMENT_BYTES")]
    log_segment_bytes: Option<u64>,
    /// `log.retention.ms` default for topics (-1: keep forever).
    #[arg(long, env = "SLUICE_LOG_RETENTION_MS", allow_hyphen_values = true)]
    log_retention_ms: Option<i64>,
    /// `log.retention.bytes` default for topics (-1: no limit).
    #[arg(long, env = "SLUICE_LOG_RETENTION_BYTES", allow_hyphen_values = true)]
    log_retention_bytes: Option<i64>,
    /// `log.retention.check.interval.ms`.
    #[arg(long, env = "SLUICE_LOG_RETENTION_CHECK_INTERVAL_MS")]
    log_retention_check_interval_ms: Option<u64>,
    /// `message.max.bytes`: the largest batch accepted (topic `max.message.bytes` default).
    #[arg(long, env = "SLUICE_MESSAGE_MAX_BYTES")]
    message_max_bytes: Option<usize>,
    /// `socket.request.max.bytes`: the largest request read.
    #[arg(long, env = "SLUICE_SOCKET_REQUEST_MAX_BYTES")]
    socket_request_max_bytes: Option<usize>,
    /// `group.initial.rebalance.delay.ms`: how long a new group waits for more members.
    #[arg(long, env = "SLUICE_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    group_initial_rebalance_delay_ms: Option<i64>,
    /// `group.min.session.timeout.ms`: the shortest session timeout a member may ask for.
    #[arg(long, env = "SLUICE_GROUP_MIN_SESSION_TIMEOUT_MS")]
    group_min_session_timeout_ms: Option<i32>,
    /// `group.max.session.timeout.ms`: the longest session timeout a member may ask for.
    #[arg(long, env = "SLUICE_GROUP_MAX_SESSION_TIMEOUT_MS")]
    group_max_session_timeout_ms: Option<i32>,
    /// `offsets.retention.minutes`: how long committed offsets outlive an emptied group.
    #[arg(long, env = "SLUICE_OFFSETS_RETENTION_MINUTES")]
    offsets_retention_minutes: Option<i64>,
    /// `offsets.retention.check.interval.ms`.
    #[arg(long, env = "SLUICE_OFFSETS_RETENTION_CHECK_INTERVAL_MS")]
    offsets_retention_check_interval_ms: Option<u64>,
}

/// The TOML file: the same settings, with the flags' names in snake case.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    advertise: Option<String>,
    durability: Option<String>,
    node_id: Option<i32>,
    num_partitions: Option<i32>,
    auto_create_topics: Option<bool>,
    log_segment_bytes: Option<u64>,
    log_retention_ms: Option<i64>,
    log_retention_bytes: Option<i64>,
    log_retention_check_interval_ms: Option<u64>,
    message_max_bytes: Option<usize>,
    socket_request_max_bytes: Option<usize>,
    group_initial_rebalance_delay_ms: Option<i64>,
    group_min_session_timeout_ms: Option<i32>,
    group_max_session_timeout_ms: Option<i32>,
    offsets_retention_minutes: Option<i64>,
    offsets_retention_check_interval_ms: Option<u64>,
}

fn parse_host_port(s: &str) -> Result<(String, u16)> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| anyhow!("'{s}' is not HOST:PORT"))?;
    let port = port.parse().with_context(|| format!("'{port}' in '{s}' is not a port number"))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
}

fn build_config(args: ServeArgs) -> Result<BrokerConfig> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))?
        }
        None => FileConfig::default(),
    };
    let mut c = BrokerConfig::default();
    if let Some(listen) = args.listen.or(file.listen) {
        c.listen = std::net::ToSocketAddrs::to_socket_addrs(listen.as_str())
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| anyhow!("no address"))
            .with_context(|| {
                format!("cannot resolve listen address '{listen}'; use HOST:PORT such as 127.0.0.1:9092")
            })?;
    }
    if let Some(d) = args.data_dir.or(file.data_dir) {
        c.data_dir = d;
    }
    if let Some(a) = args.advertise.or(file.advertise) {
        c.advertise = Some(parse_host_port(&a).context("--advertise")?);
    }
    if let Some(d) = args.durability.or(file.durability) {
        c.durability = d.parse::<Durability>().map_err(|e| anyhow!(e))?;
    }
    if let Some(v) = args.node_id.or(file.node_id) {
        c.node_id = v;
    }
    if let Some(v) = args.num_partitions.or(file.num_partitions) {
        c.num_partitions = v;
    }
    if let Some(v) = args.auto_create_topics.or(file.auto_create_topics) {
        c.auto_create_topics = v;
    }
    if let Some(v) = args.log_segment_bytes.or(file.log_segment_bytes) {
        c.log_defaults.segment_bytes = v;
    }
    if let Some(v) = args.log_retention_ms.or(file.log_retention_ms) {
        c.log_defaults.retention_ms = v;
    }
    if let Some(v) = args.log_retention_bytes.or(file.log_retention_bytes) {
        c.log_defaults.retention_bytes = v;
    }
    if let Some(v) = args.log_retention_check_interval_ms.or(file.log_retention_check_interval_ms) {
        c.retention_check_interval_ms = v;
    }
    if let Some(v) = args.message_max_bytes.or(file.message_max_bytes) {
        c.log_defaults.max_message_bytes = v;
    }
    if let Some(v) = args.socket_request_max_bytes.or(file.socket_request_max_bytes) {
        c.request_bytes_max = v;
    }
    let groups = &mut c.groups;
    if let Some(v) = args.group_initial_rebalance_delay_ms.or(file.group_initial_rebalance_delay_ms) {
        groups.coordinator.group_initial_rebalance_delay_ms = v;
    }
    if let Some(v) = args.group_min_session_timeout_ms.or(file.group_min_session_timeout_ms) {
        groups.coordinator.group_min_session_timeout_ms = v;
    }
    if let Some(v) = args.group_max_session_timeout_ms.or(file.group_max_session_timeout_ms) {
        groups.coordinator.group_max_session_timeout_ms = v;
    }
    if let Some(v) = args.offsets_retention_minutes.or(file.offsets_retention_minutes) {
        groups.offsets_retention_ms = v.saturating_mul(60_000);
    }
    if let Some(v) = args.offsets_retention_check_interval_ms.or(file.offsets_retention_check_interval_ms) {
        groups.offsets_retention_check_interval_ms = v;
    }
    c.validate().map_err(|e| anyhow!(e))?;
    Ok(c)
}

pub fn run(args: ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let config = build_config(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("sluice").build()?;
    runtime.block_on(async move {
        let started = std::time::Instant::now();
        let data_dir = config.data_dir.clone();
        let broker = tokio::task::spawn_blocking(move || Broker::open(config))
            .await?
            .with_context(|| format!("cannot open data directory {}", data_dir.display()))?;
        let listener = sluice_broker::bind(&broker).await?;
        let addr = listener.local_addr()?;
        tracing::info!(
            %addr,
            data_dir = %data_dir.display(),
            durability = ?broker.config.durability,
            topics = broker.topics().len(),
            startup_ms = started.elapsed().as_millis() as u64,
            "broker ready"
        );
        let mut out = std::io::stdout().lock();
        writeln!(out, "sluice listening on {addr}")?;
        out.flush()?;
        drop(out);
        sluice_broker::serve(broker, listener, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn config_from(args: &[&str]) -> Result<BrokerConfig> {
        build_config(Wrapper::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))?.args)
    }

    #[test]
    fn file_then_flags_then_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sluice.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\ndata_dir = \"/tmp/from-file\"\ndurability = \"page-cache\"\nnum_partitions = 4\nlog_retention_ms = -1\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let c = config_from(&["--config", path]).unwrap();
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/from-file"));
        assert_eq!(c.durability, Durability::PageCache);
        assert_eq!(c.num_partitions, 4);
        assert_eq!(c.log_defaults.retention_ms, -1);
        // A flag wins over the file.
        let c =
            config_from(&["--config", path, "--num-partitions", "2", "--advertise", "broker.example:19092"]).unwrap();
        assert_eq!(c.num_partitions, 2);
        assert_eq!(c.advertise, Some(("broker.example".to_string(), 19092)));
        // Defaults without either.
        let c = config_from(&[]).unwrap();
        assert_eq!(c.listen.port(), 9092);
        assert_eq!(c.data_dir, PathBuf::from("sluice-data"));
        assert_eq!(c.durability, Durability::Fsync);
        // A SLUICE_* variable wins over the file, a flag over the variable. (Only this test
        // touches the environment, and only with this variable.)
        std::env::set_var("SLUICE_LOG_SEGMENT_BYTES", "4194304");
        let from_env = config_from(&["--config", path]).map(|c| c.log_defaults.segment_bytes);
        let from_flag = config_from(&["--log-segment-bytes", "8388608"]).map(|c| c.log_defaults.segment_bytes);
        std::env::remove_var("SLUICE_LOG_SEGMENT_BYTES");
        assert_eq!(from_env.unwrap(), 4194304);
        assert_eq!(from_flag.unwrap(), 8388608);
    }

    #[test]
    fn mistakes_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "no_such_setting = 1\n").unwrap();
        let err = format!("{:#}", config_from(&["--config", file.to_str().unwrap()]).unwrap_err());
        assert!(err.contains("no_such_setting"), "{err}");
        let err = format!("{:#}", config_from(&["--durability", "sometimes"]).unwrap_err());
        assert!(err.contains("fsync or page-cache"), "{err}");
        let err = format!("{:#}", config_from(&["--num-partitions", "0"]).unwrap_err());
        assert!(err.contains("num.partitions"), "{err}");
        let err = format!("{:#}", config_from(&["--advertise", "nocolon"]).unwrap_err());
        assert!(err.contains("HOST:PORT"), "{err}");
    }
}
