//! `edge-agent provision`: writes a device's configuration (server endpoint, stream name,
//! credentials, CA, camera source), checks it against the server with the agent's own client
//! (DescribeStream, or CreateStream with `--create-stream`), then enables and starts the
//! systemd unit.
//!
//! Files in `--config-dir` (default `/etc/edge-agent`):
//!
//! - `edge-agent.toml`: the existing file (the package's default) with `endpoint`, `stream`,
//!   `ca`, `region`, `create_stream`, `retention_hours`, `[capture] source` and `[spool] dir`
//!   set in place; comments and every other setting are kept. Without a file, the example
//!   configuration is the base.
//! - `credentials`: AWS CLI INI format, profile `default`, mode 0640, group `--group` (the
//!   service's) when run as root and the group exists.
//! - `ca.pem`: a copy of `--ca`.
//!
//! New files are staged next to the old ones and renamed into place only once the server
//! accepted them, so a failed provisioning leaves a working configuration untouched.

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use aws_credential_types::Credentials;
use clap::Args;

use crate::EXIT_CONFIG;
use crate::config::{AgentConfig, RunArgs};
use crate::uplink::client::{Client, Endpoint};
use crate::uplink::control_plane::{StreamSettings, prepare};
use crate::uplink::error::UplinkError;

/// The configuration the package installs, used when `--config-dir` has none yet.
const EXAMPLE_CONFIG: &str = include_str!("../edge-agent.example.toml");
const CONFIG_FILE: &str = "edge-agent.toml";
const CREDENTIALS_FILE: &str = "credentials";
const CA_FILE: &str = "ca.pem";
/// How long the server may take to answer and the stream to become ACTIVE.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Exit statuses of `provision`, one per thing to fix (documented in `--help`).
mod exit {
    /// Local problem: a file cannot be written, systemctl failed.
    pub(super) const OTHER: u8 = 1;
    pub(super) const UNREACHABLE: u8 = 4;
    pub(super) const CERTIFICATE: u8 = 5;
    pub(super) const CREDENTIALS: u8 = 6;
    pub(super) const STREAM_MISSING: u8 = 7;
}

/// Flags of `edge-agent provision`.
#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Exit status: 0 provisioned; 1 local error (files, systemctl); \
2 bad flags or values; 4 server unreachable; 5 server certificate not trusted (--ca); \
6 credentials refused; 7 stream does not exist (create it or pass --create-stream)."
)]
pub(crate) struct ProvisionArgs {
    /// Directory of edge-agent.toml, credentials and ca.pem.
    #[arg(long, default_value = "/etc/edge-agent")]
    pub(crate) config_dir: PathBuf,
    /// Control-plane endpoint of the server, e.g. https://kvs.example.net:8443.
    #[arg(long)]
    pub(crate) endpoint: String,
    /// Stream name. Default: PREFIX + the device serial (/proc/device-tree/serial-number or
    /// the Serial line of /proc/cpuinfo), else the host name.
    #[arg(long)]
    pub(crate) stream: Option<String>,
    /// Prefix of the stream name derived from the device serial.
    #[arg(long, default_value = "cam-")]
    pub(crate) stream_prefix: String,
    /// PEM file of the CA that signed the server's certificate (our server:
    /// DATA_DIR/tls/ca.pem), copied to CONFIG_DIR/ca.pem. Without it the configuration's
    /// current `ca` is kept (none: the system's roots, right for AWS).
    #[arg(long)]
    pub(crate) ca: Option<PathBuf>,
    /// Camera: v4l2:/dev/videoN, rtsp://..., file:PATH or test. Default: the configuration's
    /// current source, except the package's placeholder `test`, which becomes v4l2:/dev/video0
    /// when that exists.
    #[arg(long)]
    pub(crate) source: Option<String>,
    /// Access key id. Without keys the ones already in CONFIG_DIR/credentials are kept.
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub(crate) access_key_id: Option<String>,
    /// Secret access key (prefer the environment variable or --secret-stdin: command lines are
    /// visible to other users).
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub(crate) secret_access_key: Option<String>,
    /// Read the secret access key from the first line of standard input.
    #[arg(long)]
    pub(crate) secret_stdin: bool,
    /// Region to sign for, written to the configuration (default: AWS_REGION, else us-east-1).
    #[arg(long, env = "AWS_REGION")]
    pub(crate) region: Option<String>,
    /// Create the stream when it does not exist (now and whenever the agent starts).
    #[arg(long)]
    pub(crate) create_stream: bool,
    /// Retention of a stream created with --create-stream, in hours.
    #[arg(long, default_value_t = 24)]
    pub(crate) retention_hours: u32,
    /// Spool directory written to the configuration (the unit's StateDirectory).
    #[arg(long, default_value = "/var/lib/edge-agent")]
    pub(crate) spool_dir: PathBuf,
    /// Group allowed to read the credentials (the service's group), when run as root.
    #[arg(long, default_value = "edge-agent")]
    pub(crate) group: String,
    /// Write the files without asking the server (offline preparation).
    #[arg(long)]
    pub(crate) no_validate: bool,
    /// Do not enable and (re)start the systemd unit.
    #[arg(long)]
    pub(crate) no_enable: bool,
    /// The systemd unit to enable and restart.
    #[arg(long, default_value = "edge-agent.service")]
    pub(crate) unit: String,
}

/// A failure with its exit status.
#[derive(Debug)]
struct Failure {
    status: u8,
    message: String,
}

impl Failure {
    fn new(status: u8, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }
}

pub(crate) fn run(args: ProvisionArgs) -> ExitCode {
    match provision(&args, &System) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("edge-agent provision: {}", f.message);
            ExitCode::from(f.status)
        }
    }
}

/// What provisioning reads from and does to the machine; replaced in tests.
trait Host {
    fn read(&self, path: &str) -> Option<Vec<u8>>;
    fn device_exists(&self, path: &str) -> bool;
    /// True when systemd runs the machine (not in a chroot or an image being prepared).
    fn systemd_running(&self) -> bool;
    /// Runs `systemctl ARGS`.
    fn systemctl(&self, args: &[&str]) -> Result<(), String>;
}

struct System;

impl Host for System {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        fs::read(path).ok()
    }

    fn device_exists(&self, path: &str) -> bool {
        Path::new(path).exists()
    }

    fn systemd_running(&self) -> bool {
        // What sd_booted() and deb-systemd-invoke look at.
        Path::new("/run/systemd/system").is_dir()
    }

    fn systemctl(&self, args: &[&str]) -> Result<(), String> {
        let out = std::process::Command::new("systemctl")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run systemctl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "systemctl {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

fn provision(args: &ProvisionArgs, host: &dyn Host) -> Result<Vec<String>, Failure> {
    let bad = |m: String| Failure::new(EXIT_CONFIG, m);
    let mut report = Vec::new();
    let endpoint = Endpoint::parse(&args.endpoint).map_err(bad)?;
    let dir = &args.config_dir;
    let config_path = dir.join(CONFIG_FILE);
    let existing = match fs::read_to_string(&config_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Failure::new(
                exit::OTHER,
                format!("cannot read {}: {e}", config_path.display()),
            ));
        }
    };

    let stream = match &args.stream {
        Some(name) => {
            check_stream_name(name).map_err(bad)?;
            name.clone()
        }
        None => {
            let (name, from) = default_stream_name(host, &args.stream_prefix);
            report.push(format!("stream name {name} (from {from})"));
            name
        }
    };
    // A camera chosen earlier stays; the package's placeholder (`test`) gives way to the
    // first V4L2 camera.
    let current_source = existing.as_deref().and_then(configured_source);
    let source = match (&args.source, current_source.as_deref()) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(current)) if current != "test" => None,
        (None, _) if host.device_exists("/dev/video0") => Some("v4l2:/dev/video0".to_owned()),
        (None, _) => None,
    };
    let (key_id, secret) = keys(args, dir)?;
    let region = args.region.clone().filter(|r| !r.is_empty());

    let settings = Settings {
        endpoint: args.endpoint.clone(),
        stream: stream.clone(),
        ca: args.ca.as_ref().map(|_| dir.join(CA_FILE)),
        region: region.clone(),
        create_stream: args.create_stream,
        retention_hours: args.retention_hours,
        source,
        spool_dir: args.spool_dir.clone(),
    };
    let config_text = update_config(existing.as_deref().unwrap_or(EXAMPLE_CONFIG), &settings);

    fs::create_dir_all(dir)
        .map_err(|e| Failure::new(exit::OTHER, format!("cannot create {}: {e}", dir.display())))?;
    let mut staged = Staged::default();
    let result = (|| {
        let config_new = staged.write(dir, CONFIG_FILE, config_text.as_bytes(), 0o644, None)?;
        let gid = if is_root() {
            group_id(host, &args.group)
        } else {
            None
        };
        staged.write(
            dir,
            CREDENTIALS_FILE,
            render_credentials(&key_id, &secret).as_bytes(),
            0o640,
            gid,
        )?;
        let ca_new = match &args.ca {
            Some(path) => {
                let pem = fs::read(path).map_err(|e| {
                    Failure::new(
                        EXIT_CONFIG,
                        format!("cannot read the CA file {}: {e}", path.display()),
                    )
                })?;
                Some(staged.write(dir, CA_FILE, &pem, 0o644, None)?)
            }
            None => None,
        };
        // The agent itself must accept the file it will start with.
        let resolved = AgentConfig::resolve(RunArgs {
            config: Some(config_new),
            ..RunArgs::default()
        })
        .map_err(|e| bad(format!("the resulting configuration is refused: {e}")))?;
        let ca = ca_new.or(resolved.ca.clone());
        if args.no_validate {
            report.push("not checked against the server (--no-validate)".to_owned());
        } else {
            let region = resolved
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
                .unwrap_or_else(|| "us-east-1".to_owned());
            let data = validate(
                &endpoint,
                ca.as_deref(),
                &key_id,
                &secret,
                &region,
                &StreamSettings {
                    name: stream.clone(),
                    create: args.create_stream,
                    retention_hours: args.retention_hours,
                },
            )?;
            report.push(format!(
                "server {endpoint} accepted the credentials; stream {stream} is ACTIVE; PutMedia endpoint {data}"
            ));
        }
        Ok::<_, Failure>(())
    })();
    if let Err(f) = result {
        staged.discard();
        return Err(f);
    }
    let written = staged.commit(dir)?;
    report.push(format!("wrote {}", written.join(", ")));

    if args.no_enable {
        report.push(format!("{} not enabled (--no-enable)", args.unit));
    } else {
        host.systemctl(&["enable", &args.unit])
            .map_err(|e| Failure::new(exit::OTHER, e))?;
        if host.systemd_running() {
            host.systemctl(&["restart", &args.unit])
                .map_err(|e| Failure::new(exit::OTHER, e))?;
            report.push(format!("{} enabled and (re)started", args.unit));
        } else {
            report.push(format!(
                "{} enabled; systemd is not running here, so it starts at the next boot",
                args.unit
            ));
        }
    }
    Ok(report)
}

/// The keys from the flags, the environment, stdin, or else the current credentials file.
fn keys(args: &ProvisionArgs, dir: &Path) -> Result<(String, String), Failure> {
    let mut secret = args.secret_access_key.clone().filter(|s| !s.is_empty());
    if args.secret_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| {
            Failure::new(
                EXIT_CONFIG,
                format!("cannot read the secret from stdin: {e}"),
            )
        })?;
        secret = Some(line.trim().to_owned()).filter(|s| !s.is_empty());
    }
    let key_id = args.access_key_id.clone().filter(|s| !s.is_empty());
    match (key_id, secret) {
        (Some(id), Some(secret)) => {
            check_credential_value("access key id", &id)?;
            check_credential_value("secret access key", &secret)?;
            Ok((id, secret))
        }
        (None, None) => {
            let path = dir.join(CREDENTIALS_FILE);
            let profiles = aws_credentials_file::read_file(&path).map_err(|_| {
                Failure::new(
                    EXIT_CONFIG,
                    format!(
                        "no credentials: pass --access-key-id and the secret (AWS_SECRET_ACCESS_KEY or --secret-stdin); {} holds none",
                        path.display()
                    ),
                )
            })?;
            let profile = aws_credentials_file::default_or_first(&profiles).ok_or_else(|| {
                Failure::new(
                    EXIT_CONFIG,
                    format!("no credentials: {} holds no keys", path.display()),
                )
            })?;
            let (id, secret) = profile
                .keys()
                .ok_or_else(|| Failure::new(EXIT_CONFIG, "no credentials in the current file"))?;
            Ok((id.to_owned(), secret.expose().to_owned()))
        }
        (Some(_), None) => Err(Failure::new(
            EXIT_CONFIG,
            "--access-key-id without a secret: set AWS_SECRET_ACCESS_KEY or pass --secret-stdin",
        )),
        (None, Some(_)) => Err(Failure::new(
            EXIT_CONFIG,
            "a secret without --access-key-id (or AWS_ACCESS_KEY_ID)",
        )),
    }
}

fn check_credential_value(what: &str, value: &str) -> Result<(), Failure> {
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Failure::new(
            EXIT_CONFIG,
            format!("the {what} contains whitespace"),
        ));
    }
    Ok(())
}

/// DescribeStream (CreateStream when asked) and GetDataEndpoint with the agent's client.
fn validate(
    endpoint: &Endpoint,
    ca: Option<&Path>,
    key_id: &str,
    secret: &str,
    region: &str,
    stream: &StreamSettings,
) -> Result<Endpoint, Failure> {
    let credentials = Credentials::new(key_id, secret, None, None, "edge-agent-provision");
    let client = Client::new(ca, credentials, region).map_err(|e| classify(endpoint, e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(exit::OTHER, format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        match tokio::time::timeout(VALIDATE_TIMEOUT, prepare(&client, endpoint, stream)).await {
            Ok(result) => result.map_err(|e| classify(endpoint, e)),
            Err(_) => Err(Failure::new(
                exit::UNREACHABLE,
                format!(
                    "{endpoint} did not make stream {} ACTIVE within {} s",
                    stream.name,
                    VALIDATE_TIMEOUT.as_secs()
                ),
            )),
        }
    })
}

/// One exit status and one sentence per thing to fix.
fn classify(endpoint: &Endpoint, e: UplinkError) -> Failure {
    match e {
        UplinkError::Unreachable(why) => Failure::new(
            exit::UNREACHABLE,
            format!(
                "server unreachable: {why} (check --endpoint, the network, and that the server runs)"
            ),
        ),
        e @ UplinkError::Untrusted { .. } => {
            Failure::new(exit::CERTIFICATE, format!("certificate: {e}"))
        }
        e @ UplinkError::Credentials { .. } => {
            Failure::new(exit::CREDENTIALS, format!("credentials: {e}"))
        }
        UplinkError::Api { code, message, .. } if code == "ResourceNotFoundException" => {
            Failure::new(
                exit::STREAM_MISSING,
                format!("stream missing on {endpoint}: {message}"),
            )
        }
        e @ UplinkError::Api { .. } => Failure::new(exit::OTHER, format!("server error: {e}")),
        UplinkError::Config(why) => Failure::new(EXIT_CONFIG, why),
    }
}

/// `[capture] source` of a configuration file, if it sets one.
fn configured_source(text: &str) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    Some(table.get("capture")?.get("source")?.as_str()?.to_owned())
}

/// Values `provision` sets in `edge-agent.toml`.
#[derive(Debug, Clone, Default)]
struct Settings {
    endpoint: String,
    stream: String,
    ca: Option<PathBuf>,
    region: Option<String>,
    create_stream: bool,
    retention_hours: u32,
    source: Option<String>,
    spool_dir: PathBuf,
}

/// `text` with the settings applied: an existing `key = ...` line (or a commented-out
/// `# key = ...` one) of the right table is replaced, otherwise the key is added to the
/// table (the table is added at the end when missing). Everything else is kept as it is.
fn update_config(text: &str, s: &Settings) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let path = |p: &Path| toml_string(&p.to_string_lossy());
    let mut set = |table: &str, key: &str, value: Option<String>| {
        if let Some(value) = value {
            set_key(&mut lines, table, key, &value);
        }
    };
    set("", "endpoint", Some(toml_string(&s.endpoint)));
    set("", "stream", Some(toml_string(&s.stream)));
    set("", "ca", s.ca.as_deref().map(path));
    set("", "region", s.region.as_deref().map(toml_string));
    set("", "create_stream", Some(s.create_stream.to_string()));
    set("", "retention_hours", Some(s.retention_hours.to_string()));
    set("capture", "source", s.source.as_deref().map(toml_string));
    set("spool", "dir", Some(path(&s.spool_dir)));
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The table a line opens (`[name]`), if it is a table header.
fn table_header(line: &str) -> Option<&str> {
    let t = line.trim();
    let inner = t.strip_prefix('[')?.split(']').next()?;
    (!t.starts_with("[[")).then(|| inner.trim())
}

/// True when `line` is `key = ...`, or commented out as `# key = ...`.
fn assigns(line: &str, key: &str, commented: bool) -> bool {
    let mut t = line.trim_start();
    if commented {
        match t.strip_prefix('#') {
            Some(rest) => t = rest.trim_start(),
            None => return false,
        }
    }
    t.strip_prefix(key)
        .map(|rest| rest.trim_start().starts_with('='))
        .unwrap_or(false)
}

fn set_key(lines: &mut Vec<String>, table: &str, key: &str, value: &str) {
    let new_line = format!("{key} = {value}");
    // The line range of the table: from after its header to the next header.
    let (start, end) = if table.is_empty() {
        let end = lines
            .iter()
            .position(|l| table_header(l).is_some())
            .unwrap_or(lines.len());
        (0, end)
    } else {
        match lines.iter().position(|l| table_header(l) == Some(table)) {
            Some(h) => {
                let end = lines[h + 1..]
                    .iter()
                    .position(|l| table_header(l).is_some())
                    .map_or(lines.len(), |p| h + 1 + p);
                (h + 1, end)
            }
            None => {
                if lines.last().is_some_and(|l| !l.trim().is_empty()) {
                    lines.push(String::new());
                }
                lines.push(format!("[{table}]"));
                lines.push(new_line);
                return;
            }
        }
    };
    let found = (start..end)
        .find(|&i| assigns(&lines[i], key, false))
        .or_else(|| (start..end).find(|&i| assigns(&lines[i], key, true)));
    match found {
        Some(i) => lines[i] = new_line,
        None => {
            // After the table's last non-blank line.
            let at = (start..end)
                .rev()
                .find(|&i| !lines[i].trim().is_empty())
                .map_or(start, |i| i + 1);
            lines.insert(at, new_line);
        }
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The credentials file, as the AWS CLI writes it.
fn render_credentials(key_id: &str, secret: &str) -> String {
    format!(
        "# Written by `edge-agent provision`. The agent reads it through\n\
         # AWS_SHARED_CREDENTIALS_FILE (set by edge-agent.service).\n\
         [default]\n\
         aws_access_key_id = {key_id}\n\
         aws_secret_access_key = {secret}\n"
    )
}

/// The serial number of the board: the device tree's (Raspberry Pi, Jetson), else the
/// `Serial` line of /proc/cpuinfo (Raspberry Pi OS 32-bit kernels). All-zero serials, which
/// some boards report, do not count.
fn device_serial(host: &dyn Host) -> Option<String> {
    host.read("/proc/device-tree/serial-number")
        .and_then(|b| serial_from_device_tree(&b))
        .or_else(|| {
            host.read("/proc/cpuinfo")
                .and_then(|b| serial_from_cpuinfo(&String::from_utf8_lossy(&b)))
        })
}

fn usable_serial(s: &str) -> Option<String> {
    let s = s.trim().trim_matches('\0').trim();
    (!s.is_empty() && s.chars().any(|c| c != '0')).then(|| s.to_owned())
}

fn serial_from_device_tree(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    usable_serial(text.split('\0').next().unwrap_or_default())
}

fn serial_from_cpuinfo(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "Serial")
            .then(|| usable_serial(value))
            .flatten()
    })
}

/// The default stream name and where it came from.
fn default_stream_name(host: &dyn Host, prefix: &str) -> (String, &'static str) {
    if let Some(serial) = device_serial(host) {
        let name = sanitize_stream_name(&format!("{prefix}{}", serial.to_lowercase()));
        if check_stream_name(&name).is_ok() {
            return (name, "the device serial");
        }
    }
    let hostname = host
        .read("/proc/sys/kernel/hostname")
        .or_else(|| host.read("/etc/hostname"))
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "camera".to_owned());
    (sanitize_stream_name(&hostname), "the host name")
}

/// Kinesis Video stream names: 1 to 256 of `[a-zA-Z0-9_.-]`.
fn sanitize_stream_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(256)
        .collect();
    if s.is_empty() {
        s.push_str("camera");
    }
    s
}

fn check_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 256
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(format!(
            "stream name `{name}` is not valid: 1 to 256 letters, digits, `_`, `.` or `-`"
        ));
    }
    Ok(())
}

/// The group's id from /etc/group.
fn group_id(host: &dyn Host, group: &str) -> Option<u32> {
    let text = host.read("/etc/group")?;
    String::from_utf8_lossy(&text).lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == group)
            .then(|| fields.nth(1)?.parse().ok())
            .flatten()
    })
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Files written next to their final names, renamed into place together.
#[derive(Default)]
struct Staged {
    /// (staged path, final name)
    files: Vec<(PathBuf, &'static str)>,
}

impl Staged {
    fn write(
        &mut self,
        dir: &Path,
        name: &'static str,
        bytes: &[u8],
        mode: u32,
        gid: Option<u32>,
    ) -> Result<PathBuf, Failure> {
        let mut staged_name = OsString::from(".");
        staged_name.push(name);
        staged_name.push(".new");
        let path = dir.join(staged_name);
        let fail = |e: std::io::Error| {
            Failure::new(exit::OTHER, format!("cannot write {}: {e}", path.display()))
        };
        let _ = fs::remove_file(&path);
        self.files.push((path.clone(), name));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .map_err(fail)?;
        // The mode is exact whatever the umask; the group is set before any secret is written.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(fail)?;
        if let Some(gid) = gid {
            std::os::unix::fs::fchown(&file, Some(0), Some(gid)).map_err(fail)?;
        }
        file.write_all(bytes).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        Ok(path)
    }

    fn discard(&mut self) {
        for (path, _) in self.files.drain(..) {
            let _ = fs::remove_file(path);
        }
    }

    /// Renames every staged file to its final name (the configuration last, so it never
    /// points at a CA or credentials that are not there yet).
    fn commit(mut self, dir: &Path) -> Result<Vec<String>, Failure> {
        self.files.sort_by_key(|(_, name)| *name == CONFIG_FILE);
        let mut written = Vec::new();
        for (path, name) in std::mem::take(&mut self.files) {
            let target = dir.join(name);
            fs::rename(&path, &target).map_err(|e| {
                Failure::new(
                    exit::OTHER,
                    format!(
                        "cannot rename {} to {}: {e}",
                        path.display(),
                        target.display()
                    ),
                )
            })?;
            written.push(target.display().to_string());
        }
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(written)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        self.discard();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::os::unix::fs::MetadataExt;
    use std::sync::Mutex;

    use super::*;
    use crate::capture::Source;

    #[derive(Default)]
    struct FakeHost {
        files: HashMap<&'static str, Vec<u8>>,
        video0: bool,
        /// A chroot or an image being prepared.
        no_systemd: bool,
        systemctl: Mutex<Vec<String>>,
    }

    impl Host for FakeHost {
        fn read(&self, path: &str) -> Option<Vec<u8>> {
            self.files.get(path).cloned()
        }
        fn device_exists(&self, path: &str) -> bool {
            self.video0 && path == "/dev/video0"
        }
        fn systemd_running(&self) -> bool {
            !self.no_systemd
        }
        fn systemctl(&self, args: &[&str]) -> Result<(), String> {
            self.systemctl.lock().unwrap().push(args.join(" "));
            Ok(())
        }
    }

    const PI_CPUINFO: &str = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n\
        CPU implementer\t: 0x41\n\nHardware\t: BCM2835\nRevision\t: c03112\nSerial\t\t: 10000000abCDef12\n\
        Model\t\t: Raspberry Pi 4 Model B Rev 1.2\n";

    #[test]
    fn serial_comes_from_cpuinfo_or_the_device_tree() {
        assert_eq!(
            serial_from_cpuinfo(PI_CPUINFO).as_deref(),
            Some("10000000abCDef12")
        );
        // x86 cpuinfo has no Serial; all-zero serials do not count.
        assert_eq!(
            serial_from_cpuinfo("processor\t: 0\nmodel name\t: Intel\n"),
            None
        );
        assert_eq!(serial_from_cpuinfo("Serial\t\t: 0000000000000000\n"), None);
        assert_eq!(
            serial_from_device_tree(b"1423020057123\0").as_deref(),
            Some("1423020057123")
        );
        assert_eq!(serial_from_device_tree(b"\0"), None);

        let mut host = FakeHost::default();
        host.files.insert("/proc/cpuinfo", PI_CPUINFO.into());
        host.files
            .insert("/proc/sys/kernel/hostname", b"raspberrypi\n".to_vec());
        assert_eq!(
            default_stream_name(&host, "cam-"),
            ("cam-10000000abcdef12".to_owned(), "the device serial")
        );
        // The device tree wins over cpuinfo.
        host.files
            .insert("/proc/device-tree/serial-number", b"JETSON42\0".to_vec());
        assert_eq!(default_stream_name(&host, "").0, "jetson42");
        // No serial: the host name, made a valid stream name.
        let mut host = FakeHost::default();
        host.files
            .insert("/proc/cpuinfo", b"processor\t: 0\n".to_vec());
        host.files
            .insert("/proc/sys/kernel/hostname", b"lab cam#1\n".to_vec());
        assert_eq!(
            default_stream_name(&host, "cam-"),
            ("lab-cam-1".to_owned(), "the host name")
        );
    }

    #[test]
    fn stream_names_are_checked() {
        assert!(check_stream_name("cam-1_a.b").is_ok());
        assert!(check_stream_name("").is_err());
        assert!(check_stream_name("a b").is_err());
        assert!(check_stream_name(&"x".repeat(257)).is_err());
        assert_eq!(sanitize_stream_name("ä/b"), "--b");
    }

    fn settings() -> Settings {
        Settings {
            endpoint: "https://kvs.example.net:8443".into(),
            stream: "cam-1".into(),
            ca: Some("/etc/edge-agent/ca.pem".into()),
            region: Some("eu-west-1".into()),
            create_stream: true,
            retention_hours: 48,
            source: Some("v4l2:/dev/video0".into()),
            spool_dir: "/var/lib/edge-agent".into(),
        }
    }

    fn resolve(text: &str) -> AgentConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        fs::write(&path, text).unwrap();
        AgentConfig::resolve(RunArgs {
            config: Some(path),
            ..RunArgs::default()
        })
        .unwrap()
    }

    #[test]
    fn the_example_config_is_updated_in_place() {
        let text = update_config(EXAMPLE_CONFIG, &settings());
        let c = resolve(&text);
        assert_eq!(c.endpoint, "https://kvs.example.net:8443");
        assert_eq!(c.stream, "cam-1");
        assert_eq!(c.ca.as_deref(), Some(Path::new("/etc/edge-agent/ca.pem")));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert!(c.create_stream);
        assert_eq!(c.retention_hours, 48);
        assert_eq!(c.spool_dir, Path::new("/var/lib/edge-agent"));
        assert_eq!(c.capture.source, v4l2_video0());
        // Comments and the other settings stay; commented-out keys are replaced, not doubled.
        for kept in [
            "# Control-plane endpoint (required)",
            "stale_after = 10.0",
            "mode = \"buffered\"",
        ] {
            assert!(text.contains(kept), "{kept} lost:\n{text}");
        }
        assert!(!text.contains("# ca = "), "{text}");
        assert!(!text.contains("# dir = "), "{text}");
        assert_eq!(text.matches("\nca = ").count(), 1, "{text}");
        assert_eq!(text.matches("\nsource = ").count(), 1, "{text}");
        // Applying it again changes nothing.
        assert_eq!(update_config(&text, &settings()), text);
    }

    #[test]
    fn missing_keys_and_tables_are_added() {
        let text = update_config(
            "stream = \"old\"\n[uplink]\nstale_after = 5.0\n",
            &settings(),
        );
        let c = resolve(&text);
        assert_eq!(c.stream, "cam-1");
        assert_eq!(c.endpoint, "https://kvs.example.net:8443");
        assert_eq!(c.capture.source, v4l2_video0());
        assert_eq!(c.stale_after, Duration::from_secs(5));
        // Top-level keys stay above the first table.
        let first_table = text.find("[uplink]").unwrap();
        assert!(text.find("endpoint = ").unwrap() < first_table, "{text}");
        // Strings are escaped.
        let mut s = settings();
        s.stream = "a\"b\\c".into();
        let text = update_config("", &s);
        assert!(text.contains(r#"stream = "a\"b\\c""#), "{text}");
    }

    #[test]
    fn credentials_render_as_the_aws_cli_reads_them() {
        let text = render_credentials("AKIDEXAMPLE", "wJalr/K7MDENG+bPxRfiCY");
        let profiles = aws_credentials_file::parse(&text).unwrap();
        let p = aws_credentials_file::default_or_first(&profiles).unwrap();
        assert_eq!(p.name, "default");
        let (id, secret) = p.keys().unwrap();
        assert_eq!(
            (id, secret.expose()),
            ("AKIDEXAMPLE", "wJalr/K7MDENG+bPxRfiCY")
        );
    }

    #[test]
    fn group_ids_come_from_etc_group() {
        let mut host = FakeHost::default();
        host.files.insert(
            "/etc/group",
            b"root:x:0:\nvideo:x:44:edge-agent\nedge-agent:x:998:\n".to_vec(),
        );
        assert_eq!(group_id(&host, "edge-agent"), Some(998));
        assert_eq!(group_id(&host, "video"), Some(44));
        assert_eq!(group_id(&host, "nope"), None);
    }

    fn args(dir: &Path) -> ProvisionArgs {
        ProvisionArgs {
            config_dir: dir.to_owned(),
            endpoint: "https://127.0.0.1:8443".into(),
            stream: None,
            stream_prefix: "cam-".into(),
            ca: None,
            source: None,
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("s3cret".into()),
            secret_stdin: false,
            region: Some("us-west-2".into()),
            create_stream: false,
            retention_hours: 24,
            spool_dir: "/var/lib/edge-agent".into(),
            group: "edge-agent".into(),
            no_validate: true,
            no_enable: false,
            unit: "edge-agent.service".into(),
        }
    }

    fn v4l2_video0() -> Source {
        Source::V4l2("/dev/video0".into())
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn offline_provisioning_writes_the_files_with_their_modes_and_enables_the_unit() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("etc");
        let ca = tmp.path().join("server-ca.pem");
        fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let mut host = FakeHost {
            video0: true,
            ..FakeHost::default()
        };
        host.files.insert("/proc/cpuinfo", PI_CPUINFO.into());
        let a = ProvisionArgs {
            ca: Some(ca.clone()),
            ..args(&dir)
        };
        let report = provision(&a, &host).unwrap();
        assert!(
            report.iter().any(|l| l.contains("cam-10000000abcdef12")),
            "{report:?}"
        );

        let creds = dir.join(CREDENTIALS_FILE);
        assert_eq!(mode(&creds), 0o640);
        assert_eq!(mode(&dir.join(CONFIG_FILE)), 0o644);
        assert_eq!(fs::read(dir.join(CA_FILE)).unwrap(), fs::read(&ca).unwrap());
        let c = AgentConfig::resolve(RunArgs {
            config: Some(dir.join(CONFIG_FILE)),
            ..RunArgs::default()
        })
        .unwrap();
        assert_eq!(c.stream, "cam-10000000abcdef12");
        assert_eq!(c.ca, Some(dir.join(CA_FILE)));
        assert_eq!(c.capture.source, v4l2_video0());
        assert_eq!(c.region.as_deref(), Some("us-west-2"));
        let profiles = aws_credentials_file::read_file(&creds).unwrap();
        assert_eq!(profiles[0].keys().unwrap().0, "AKIDEXAMPLE");
        assert_eq!(
            *host.systemctl.lock().unwrap(),
            ["enable edge-agent.service", "restart edge-agent.service"]
        );
        // No staged file is left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");

        // Re-provisioning without keys keeps the current ones, the CA, the source and the
        // settings the provisioning does not own.
        let text = fs::read_to_string(dir.join(CONFIG_FILE)).unwrap();
        fs::write(
            dir.join(CONFIG_FILE),
            text.replace("bitrate_kbps = 2000", "bitrate_kbps = 900"),
        )
        .unwrap();
        let host = FakeHost::default();
        let a = ProvisionArgs {
            access_key_id: None,
            secret_access_key: None,
            stream: Some("renamed".into()),
            no_enable: true,
            ..args(&dir)
        };
        provision(&a, &host).unwrap();
        let c = AgentConfig::resolve(RunArgs {
            config: Some(dir.join(CONFIG_FILE)),
            ..RunArgs::default()
        })
        .unwrap();
        assert_eq!(c.stream, "renamed");
        assert_eq!(c.capture.bitrate_kbps, 900);
        assert_eq!(c.ca, Some(dir.join(CA_FILE)));
        assert_eq!(c.capture.source, v4l2_video0());
        assert_eq!(mode(&creds), 0o640);
        assert!(host.systemctl.lock().unwrap().is_empty());
    }

    #[test]
    fn a_chosen_camera_is_kept_and_the_placeholder_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("etc");
        let host = FakeHost {
            video0: true,
            ..FakeHost::default()
        };
        let source = |dir: &Path| {
            AgentConfig::resolve(RunArgs {
                config: Some(dir.join(CONFIG_FILE)),
                ..RunArgs::default()
            })
            .unwrap()
            .capture
            .source
        };
        // The example's `test` gives way to the camera found.
        provision(&args(&dir), &host).unwrap();
        assert_eq!(source(&dir), v4l2_video0());
        // An RTSP camera set once stays when re-provisioning without --source.
        let rtsp = "rtsp://cam.lan/stream1";
        provision(
            &ProvisionArgs {
                source: Some(rtsp.into()),
                ..args(&dir)
            },
            &host,
        )
        .unwrap();
        provision(&args(&dir), &host).unwrap();
        assert_eq!(source(&dir), Source::Rtsp(rtsp.into()));
        assert_eq!(
            configured_source("[capture]\nsource = \"test\"\n").as_deref(),
            Some("test")
        );
        assert_eq!(configured_source("no toml ["), None);
    }

    #[test]
    fn without_a_running_systemd_the_unit_is_only_enabled() {
        let tmp = tempfile::tempdir().unwrap();
        let host = FakeHost {
            no_systemd: true,
            ..FakeHost::default()
        };
        let report = provision(
            &ProvisionArgs {
                stream: Some("s".into()),
                ..args(&tmp.path().join("etc"))
            },
            &host,
        )
        .unwrap();
        assert_eq!(
            *host.systemctl.lock().unwrap(),
            ["enable edge-agent.service"]
        );
        assert!(report.iter().any(|l| l.contains("next boot")), "{report:?}");
    }

    #[test]
    fn a_failed_validation_leaves_the_current_files_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("etc");
        let host = FakeHost::default();
        provision(
            &ProvisionArgs {
                stream: Some("first".into()),
                ..args(&dir)
            },
            &host,
        )
        .unwrap();
        let before = fs::read(dir.join(CONFIG_FILE)).unwrap();
        // Nothing listens on port 1 of localhost: refused at once.
        let a = ProvisionArgs {
            endpoint: "https://127.0.0.1:1".into(),
            stream: Some("second".into()),
            no_validate: false,
            access_key_id: Some("OTHER".into()),
            ..args(&dir)
        };
        let f = provision(&a, &host).unwrap_err();
        assert_eq!(f.status, exit::UNREACHABLE, "{}", f.message);
        assert!(f.message.contains("unreachable"), "{}", f.message);
        assert_eq!(fs::read(dir.join(CONFIG_FILE)).unwrap(), before);
        let profiles = aws_credentials_file::read_file(&dir.join(CREDENTIALS_FILE)).unwrap();
        assert_eq!(profiles[0].keys().unwrap().0, "AKIDEXAMPLE");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        // Only `enable`/`restart` of the first, offline run.
        assert_eq!(host.systemctl.lock().unwrap().len(), 2);
    }

    #[test]
    fn bad_values_are_refused_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("etc");
        let host = FakeHost::default();
        for (a, expected) in [
            (
                ProvisionArgs {
                    endpoint: "ftp://x".into(),
                    ..args(&dir)
                },
                "https://",
            ),
            (
                ProvisionArgs {
                    stream: Some("no spaces".into()),
                    ..args(&dir)
                },
                "not valid",
            ),
            (
                ProvisionArgs {
                    secret_access_key: None,
                    ..args(&dir)
                },
                "without a secret",
            ),
            (
                ProvisionArgs {
                    source: Some("usb".into()),
                    ..args(&dir)
                },
                "unknown source",
            ),
        ] {
            let f = provision(&a, &host).unwrap_err();
            assert_eq!(f.status, EXIT_CONFIG, "{}", f.message);
            assert!(f.message.contains(expected), "{}", f.message);
        }
        assert!(
            !dir.exists() || fs::read_dir(&dir).unwrap().count() == 0,
            "files left in {}",
            dir.display()
        );
    }
}
