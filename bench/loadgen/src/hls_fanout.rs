//! `hls-fanout`: N players of one live HLS stream in one process, and the same request mix
//! against the same bytes served as static files (bench/hls-fanout.sh).
//!
//! Each client keeps one HTTP/1.1 keep-alive connection over TLS and loops like a player:
//! the master playlist once, then every tick the media playlist, the init segment once and
//! every listed media segment it has not fetched yet, then it sleeps `interval` and repeats
//! until `duration` has passed. Latency is from the first byte of the request written to the
//! last byte of the body read, per request type (master, playlist, init, segment).
//!
//! Live mode (`--url` = the session URL from GetHLSStreamingSessionURL): client 0 keeps what it
//! fetched and, with `--save-dir`, writes it out (master.m3u8, playlist.m3u8 = the last media
//! playlist, init.mp4, seg-NNNNN.mp4 in fragment order, manifest.json).
//!
//! Static mode (`--static-dir` = such a directory, `--url` = the base URL of a web server
//! serving it): the same loop, but the live window is simulated: it holds `window` segments
//! (as many as the live playlist listed) and advances by one segment per segment duration
//! (the same clock for all clients, as a live edge does), cycling through the saved files.
//! So both runs make the same requests per client and second, with the same body sizes.
//!
//! Server cost: utime+stime of the `--server-pid` processes (and their children with
//! `--children`, for nginx's workers) from /proc over the run, RSS (sum) every second.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::procstat;
use crate::stats::{hist_json, new_hist};

/// Request types, in report order.
const KINDS: [&str; 4] = ["master", "playlist", "init", "segment"];
const MASTER: usize = 0;
const PLAYLIST: usize = 1;
const INIT: usize = 2;
const SEGMENT: usize = 3;

pub(crate) struct Config {
    pub(crate) url: String,
    pub(crate) ca: PathBuf,
    pub(crate) clients: usize,
    pub(crate) duration: Duration,
    pub(crate) interval: Duration,
    pub(crate) server_pids: Vec<u32>,
    pub(crate) children: bool,
    pub(crate) static_dir: Option<PathBuf>,
    pub(crate) save_dir: Option<PathBuf>,
    pub(crate) label: String,
    pub(crate) out: Option<PathBuf>,
}

/// `https://host:port/path?query`, split.
#[derive(Clone, Debug)]
struct Url {
    host: String,
    port: u16,
    /// Path and query, starting with '/'.
    target: String,
}

impl Url {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("https://")
            .with_context(|| format!("{url}: only https:// URLs"))?;
        let (authority, target) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.contains(']') => {
                (h, p.parse().context("URL port")?)
            }
            _ => (authority, 443),
        };
        Ok(Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            target: target.to_string(),
        })
    }

    /// A playlist URI relative to this URL (RFC 3986 for the forms playlists use).
    fn join(&self, uri: &str) -> anyhow::Result<Url> {
        if uri.starts_with("https://") {
            return Url::parse(uri);
        }
        if uri.starts_with("http://") {
            bail!("{uri}: only https:// URLs");
        }
        let target = if uri.starts_with('/') {
            uri.to_string()
        } else {
            let path = self.target.split('?').next().unwrap_or("/");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            format!("{}{uri}", if dir.is_empty() { "/" } else { dir })
        };
        Ok(Url {
            host: self.host.clone(),
            port: self.port,
            target,
        })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One keep-alive HTTP/1.1 connection with its read buffer.
struct HttpConn {
    io: TlsStream<TcpStream>,
    reader: crate::http1::Reader,
}

/// A response: status, body length, the body when asked for, and whether the connection can
/// carry another request.
struct Response {
    status: u16,
    bytes: u64,
    body: Vec<u8>,
    reusable: bool,
}

impl HttpConn {
    async fn connect(tls: &TlsConnector, url: &Url) -> anyhow::Result<(Self, String)> {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .with_context(|| format!("connecting to {}", url.authority()))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(url.host.clone()).context("server name")?;
        let io = tls.connect(name, tcp).await.context("TLS handshake")?;
        let (_, session) = io.get_ref();
        let tls_info = format!(
            "{} {}",
            session
                .protocol_version()
                .map_or_else(|| "?".to_string(), |v| format!("{v:?}")),
            session
                .negotiated_cipher_suite()
                .map_or_else(|| "?".to_string(), |s| format!("{:?}", s.suite()))
        );
        Ok((
            Self {
                io,
                reader: crate::http1::Reader::new(),
            },
            tls_info,
        ))
    }

    async fn get(&mut self, url: &Url, keep_body: bool) -> anyhow::Result<Response> {
        let head = format!(
            "GET {} HTTP/1.1\r\nhost: {}\r\nuser-agent: loadgen-hls-fanout\r\naccept: */*\r\n\r\n",
            url.target,
            url.authority()
        );
        self.io.write_all(head.as_bytes()).await?;
        self.io.flush().await?;
        let head = self.reader.head(&mut self.io).await?;
        let mut keep = (keep_body || head.status >= 300).then(Vec::new);
        let bytes = self
            .reader
            .body(&mut self.io, head.framing, |piece| {
                if let Some(k) = keep.as_mut() {
                    k.extend_from_slice(piece);
                }
            })
            .await?;
        Ok(Response {
            status: head.status,
            bytes,
            body: keep.unwrap_or_default(),
            reusable: !head.close,
        })
    }
}

/// Per-type counters of one client (merged at the end).
struct KindStats {
    ok: u64,
    bytes: u64,
    errors: u64,
    hist: Histogram<u64>,
}

struct ClientStats {
    kinds: Vec<KindStats>,
    connects: u64,
    error_samples: Vec<String>,
    tls: Option<String>,
    /// Ticks (media playlist loads) and ticks that found at least one new segment.
    ticks: u64,
    ticks_with_new: u64,
    /// Client 0 in live mode keeps what it fetched.
    saved: Option<Saved>,
}

#[derive(Default)]
struct Saved {
    master: Vec<u8>,
    playlist: Vec<u8>,
    init: Vec<u8>,
    /// Segment URI order key -> (duration s, body).
    segments: BTreeMap<u64, (f64, Vec<u8>)>,
    window: usize,
}

impl ClientStats {
    fn new(save: bool) -> Self {
        Self {
            kinds: KINDS
                .iter()
                .map(|_| KindStats {
                    ok: 0,
                    bytes: 0,
                    errors: 0,
                    hist: new_hist(),
                })
                .collect(),
            connects: 0,
            error_samples: Vec::new(),
            tls: None,
            ticks: 0,
            ticks_with_new: 0,
            saved: save.then(Saved::default),
        }
    }

    fn error(&mut self, kind: usize, msg: String) {
        self.kinds[kind].errors += 1;
        if self.error_samples.len() < 5 {
            self.error_samples.push(format!("{}: {msg}", KINDS[kind]));
        }
    }
}

/// One media playlist entry: an order key, the URI and EXTINF duration.
struct Entry {
    key: u64,
    url: Url,
    duration: f64,
}

/// What a client plays: a live session, or the saved files with a simulated live window.
enum Source {
    Live {
        master: Url,
    },
    Static {
        base: Url,
        /// Segment files and durations, in order.
        files: Vec<(String, f64)>,
        window: usize,
        /// The live edge advances every `segment_s` from `t0` (shared by all clients).
        segment_s: f64,
        t0: Instant,
    },
}

/// The attribute `name` of an EXT-X tag line (`URI="..."`).
fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &line[at..];
    Some(&rest[..rest.find('"')?])
}

/// The low digits of a segment URI's fragment number, which order it within its stream.
fn fragment_number(uri: &str) -> Option<u64> {
    let at = uri.find("FragmentNumber=")? + "FragmentNumber=".len();
    let digits: String = uri[at..].chars().take_while(char::is_ascii_digit).collect();
    // Fragment numbers have up to 47 digits: the low 18 order them within one stream.
    let tail = &digits[digits.len().saturating_sub(18)..];
    tail.parse().ok()
}

/// Parses a media playlist: the init URI (first EXT-X-MAP) and the complete segments.
fn parse_media_playlist(base: &Url, text: &str) -> anyhow::Result<(Option<Url>, Vec<Entry>)> {
    let mut init = None;
    let mut entries = Vec::new();
    let mut duration = 0.0;
    let mut seq: u64 = 0;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#EXT-X-MAP:") {
            if init.is_none()
                && let Some(uri) = attr(rest, "URI")
            {
                init = Some(base.join(uri)?);
            }
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration = rest
                .split(',')
                .next()
                .and_then(|d| d.trim().parse().ok())
                .unwrap_or(0.0);
        } else if let Some(rest) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            seq = rest.trim().parse().unwrap_or(0);
        } else if !line.is_empty() && !line.starts_with('#') {
            entries.push(Entry {
                key: fragment_number(line).unwrap_or(seq + entries.len() as u64),
                url: base.join(line)?,
                duration,
            });
        }
    }
    Ok((init, entries))
}

/// The first variant URI of a master playlist.
fn parse_master(base: &Url, text: &str) -> anyhow::Result<Url> {
    let uri = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .context("master playlist lists no variant")?;
    base.join(uri)
}

struct Client {
    tls: TlsConnector,
    conn: Option<HttpConn>,
    stats: ClientStats,
}

impl Client {
    /// One GET, on the kept connection or a new one (retried once on a fresh connection
    /// when a reused one turns out closed). Records latency, bytes, errors.
    async fn get(&mut self, kind: usize, url: &Url, keep_body: bool) -> Option<Vec<u8>> {
        let t = Instant::now();
        let mut result = Err(anyhow::anyhow!("not sent"));
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                match HttpConn::connect(&self.tls, url).await {
                    Ok((c, info)) => {
                        self.stats.connects += 1;
                        self.stats.tls.get_or_insert(info);
                        self.conn = Some(c);
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                break;
            };
            result = conn.get(url, keep_body).await;
            match &result {
                Ok(r) if r.reusable => {}
                _ => self.conn = None,
            }
            if result.is_ok() || !reused || attempt == 1 {
                break;
            }
        }
        let elapsed = t.elapsed();
        match result {
            Ok(r) if r.status == 200 => {
                let k = &mut self.stats.kinds[kind];
                k.ok += 1;
                k.bytes += r.bytes;
                let _ = k.hist.record((elapsed.as_micros() as u64).max(1));
                Some(r.body)
            }
            Ok(r) => {
                let body = String::from_utf8_lossy(&r.body[..r.body.len().min(300)]).into_owned();
                self.stats
                    .error(kind, format!("HTTP {} {}: {body}", r.status, url.target));
                None
            }
            Err(e) => {
                self.stats.error(kind, format!("{e:#} ({})", url.target));
                None
            }
        }
    }
}

async fn sleep_until_or(deadline: Instant, d: Duration) {
    let until = (Instant::now() + d).min(deadline);
    tokio::time::sleep_until(until.into()).await;
}

async fn one_client(
    tls: TlsConnector,
    source: Arc<Source>,
    start: Instant,
    deadline: Instant,
    interval: Duration,
    save: bool,
) -> ClientStats {
    let mut c = Client {
        tls,
        conn: None,
        stats: ClientStats::new(save),
    };
    tokio::time::sleep_until(start.into()).await;
    let mut fetched: HashSet<u64> = HashSet::new();
    let mut init_done = false;
    match source.as_ref() {
        Source::Live { master } => {
            let Some(body) = c.get(MASTER, master, true).await else {
                return c.stats;
            };
            let text = String::from_utf8_lossy(&body).into_owned();
            let media = match parse_master(master, &text) {
                Ok(u) => u,
                Err(e) => {
                    c.stats.error(MASTER, format!("{e:#}"));
                    return c.stats;
                }
            };
            if let Some(s) = c.stats.saved.as_mut() {
                s.master = body;
            }
            while Instant::now() < deadline {
                c.stats.ticks += 1;
                if let Some(body) = c.get(PLAYLIST, &media, true).await {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    match parse_media_playlist(&media, &text) {
                        Ok((init, entries)) => {
                            if let Some(s) = c.stats.saved.as_mut() {
                                s.playlist = body;
                                s.window = s.window.max(entries.len());
                            }
                            if !init_done
                                && let Some(init) = init
                                && let Some(b) = c.get(INIT, &init, save).await
                            {
                                init_done = true;
                                if let Some(s) = c.stats.saved.as_mut() {
                                    s.init = b;
                                }
                            }
                            let mut new = false;
                            for e in entries {
                                if fetched.contains(&e.key) || Instant::now() >= deadline {
                                    continue;
                                }
                                new = true;
                                if let Some(b) = c.get(SEGMENT, &e.url, save).await {
                                    fetched.insert(e.key);
                                    if let Some(s) = c.stats.saved.as_mut() {
                                        s.segments.insert(e.key, (e.duration, b));
                                    }
                                }
                            }
                            c.stats.ticks_with_new += u64::from(new);
                        }
                        Err(e) => c.stats.error(PLAYLIST, format!("{e:#}")),
                    }
                }
                sleep_until_or(deadline, interval).await;
            }
        }
        Source::Static {
            base,
            files,
            window,
            segment_s,
            t0,
        } => {
            let master = base.join("master.m3u8").unwrap_or_else(|_| base.clone());
            let playlist = base.join("playlist.m3u8").unwrap_or_else(|_| base.clone());
            let init = base.join("init.mp4").unwrap_or_else(|_| base.clone());
            let seg_urls: Vec<Url> = files
                .iter()
                .map(|(f, _)| base.join(f).unwrap_or_else(|_| base.clone()))
                .collect();
            c.get(MASTER, &master, false).await;
            while Instant::now() < deadline {
                c.stats.ticks += 1;
                if c.get(PLAYLIST, &playlist, false).await.is_some() {
                    if !init_done && c.get(INIT, &init, false).await.is_some() {
                        init_done = true;
                    }
                    // The simulated live window: `window` segments ending at the edge.
                    let edge = (*window as u64).saturating_sub(1)
                        + (t0.elapsed().as_secs_f64() / segment_s) as u64;
                    let first = (edge + 1).saturating_sub(*window as u64);
                    let mut new = false;
                    for key in first..=edge {
                        if fetched.contains(&key) || Instant::now() >= deadline {
                            continue;
                        }
                        new = true;
                        let url = &seg_urls[(key % seg_urls.len() as u64) as usize];
                        if c.get(SEGMENT, url, false).await.is_some() {
                            fetched.insert(key);
                        }
                    }
                    c.stats.ticks_with_new += u64::from(new);
                }
                sleep_until_or(deadline, interval).await;
            }
        }
    }
    c.stats
}

/// The listed processes and (with `children`) their direct children, as /proc ids.
fn process_set(pids: &[u32], children: bool) -> Vec<String> {
    let mut out: Vec<String> = pids.iter().map(u32::to_string).collect();
    if children && let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else {
                continue;
            };
            let Some(close) = stat.rfind(')') else {
                continue;
            };
            let ppid: Option<u32> = stat[close + 2..]
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse().ok());
            if ppid.is_some_and(|p| pids.contains(&p)) && !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

fn cpu_of(pids: &[String]) -> f64 {
    pids.iter().filter_map(|p| procstat::proc_cpu_secs(p)).sum()
}

fn rss_of(pids: &[String]) -> u64 {
    pids.iter().filter_map(|p| procstat::rss_kib(p)).sum()
}

/// Writes what client 0 fetched (live mode) as a static site; returns its description.
fn save(dir: &Path, saved: &Saved) -> anyhow::Result<Value> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("master.m3u8"), &saved.master)?;
    std::fs::write(dir.join("playlist.m3u8"), &saved.playlist)?;
    std::fs::write(dir.join("init.mp4"), &saved.init)?;
    let mut segments = Vec::new();
    for (i, (duration, body)) in saved.segments.values().enumerate() {
        let name = format!("seg-{i:05}.mp4");
        std::fs::write(dir.join(&name), body)?;
        segments.push(json!({"file": name, "duration": duration, "bytes": body.len()}));
    }
    let manifest = json!({
        "master_bytes": saved.master.len(),
        "playlist_bytes": saved.playlist.len(),
        "init_bytes": saved.init.len(),
        "window": saved.window,
        "segments": segments,
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(manifest)
}

pub(crate) async fn run(cfg: Config) -> anyhow::Result<Value> {
    let url = Url::parse(&cfg.url)?;
    let tls = crate::client::tls_connector(&cfg.ca)?;
    let t0 = Instant::now();
    let source = match &cfg.static_dir {
        None => Source::Live {
            master: url.clone(),
        },
        Some(dir) => {
            let m: Value = serde_json::from_slice(
                &std::fs::read(dir.join("manifest.json"))
                    .with_context(|| format!("reading {}/manifest.json", dir.display()))?,
            )?;
            let files: Vec<(String, f64)> = m["segments"]
                .as_array()
                .context("manifest: segments")?
                .iter()
                .map(|s| {
                    (
                        s["file"].as_str().unwrap_or_default().to_string(),
                        s["duration"].as_f64().unwrap_or(1.0),
                    )
                })
                .collect();
            if files.is_empty() {
                bail!("{}: no saved segments", dir.display());
            }
            let segment_s = files.iter().map(|f| f.1).sum::<f64>() / files.len() as f64;
            let window = m["window"].as_u64().unwrap_or(1).max(1) as usize;
            Source::Static {
                base: url.clone(),
                window: window.min(files.len()),
                files,
                segment_s: if segment_s > 0.0 { segment_s } else { 1.0 },
                t0,
            }
        }
    };
    let source = Arc::new(source);
    let mode = if cfg.static_dir.is_some() {
        "static"
    } else {
        "live"
    };
    eprintln!(
        "loadgen: hls-fanout {mode} ({}) {} clients for {:?} against {}",
        cfg.label,
        cfg.clients,
        cfg.duration,
        url.authority()
    );

    let pids = process_set(&cfg.server_pids, cfg.children);
    let deadline = t0 + cfg.duration;
    let rss_task = {
        let pids = pids.clone();
        tokio::spawn(async move {
            let mut series = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                series.push(rss_of(&pids));
                if Instant::now() >= deadline {
                    break;
                }
            }
            series
        })
    };
    let cpu0 = cpu_of(&pids);
    let self0 = procstat::proc_cpu_secs("self").unwrap_or(0.0);
    let m0 = procstat::machine_cpu();

    let mut set = tokio::task::JoinSet::new();
    for i in 0..cfg.clients {
        // Starts spread over the first interval, as players joining at random moments.
        let start = t0 + cfg.interval.mul_f64(i as f64 / cfg.clients as f64);
        set.spawn(one_client(
            tls.clone(),
            Arc::clone(&source),
            start,
            deadline,
            cfg.interval,
            i == 0 && cfg.static_dir.is_none(),
        ));
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.push(r?);
    }
    if cfg.clients == 0 {
        tokio::time::sleep_until(deadline.into()).await;
    }
    let window_s = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_of(&pids);
    let self1 = procstat::proc_cpu_secs("self").unwrap_or(0.0);
    let m1 = procstat::machine_cpu();
    let rss_series = rss_task.await.unwrap_or_default();

    // Merge.
    let mut per_kind = serde_json::Map::new();
    let (mut requests, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    for (k, name) in KINDS.iter().enumerate() {
        let mut h = new_hist();
        let (mut ok, mut b, mut err) = (0, 0, 0);
        for s in &all {
            let ks = &s.kinds[k];
            h.add(&ks.hist).ok();
            ok += ks.ok;
            b += ks.bytes;
            err += ks.errors;
        }
        requests += ok;
        bytes += b;
        errors += err;
        per_kind.insert(
            (*name).to_string(),
            json!({
                "ok": ok,
                "errors": err,
                "bytes": b,
                "per_s": ok as f64 / window_s,
                "mean_bytes": if ok > 0 { b as f64 / ok as f64 } else { 0.0 },
                "latency_ms": hist_json(&h),
            }),
        );
    }
    let error_samples: Vec<&String> = all.iter().flat_map(|s| &s.error_samples).take(10).collect();
    let server_cpu = cpu1 - cpu0;
    let machine_busy = if m1.total > m0.total {
        (m1.busy - m0.busy) as f64 / (m1.total - m0.total) as f64 * procstat::ncpu() as f64 * 100.0
    } else {
        0.0
    };
    let saved = match (&cfg.save_dir, all.iter().find_map(|s| s.saved.as_ref())) {
        (Some(dir), Some(s)) => Some(save(dir, s)?),
        _ => None,
    };
    let result = json!({
        "kind": "hls-fanout",
        "mode": mode,
        "label": cfg.label,
        "url": cfg.url,
        "clients": cfg.clients,
        "interval_ms": cfg.interval.as_millis() as u64,
        "duration_s": cfg.duration.as_secs_f64(),
        "window_s": window_s,
        "requests": requests,
        "errors": errors,
        "bytes": bytes,
        "requests_per_s": requests as f64 / window_s,
        "MBps": bytes as f64 / window_s / 1e6,
        "per_type": per_kind,
        "ticks": all.iter().map(|s| s.ticks).sum::<u64>(),
        "ticks_with_new_segments": all.iter().map(|s| s.ticks_with_new).sum::<u64>(),
        "connects": all.iter().map(|s| s.connects).sum::<u64>(),
        "tls": all.iter().find_map(|s| s.tls.clone()),
        "error_samples": error_samples,
        "server": {
            "pids": pids,
            "cpu_s": server_cpu,
            "cpu_pct_of_one_core": server_cpu / window_s * 100.0,
            "cpu_ms_per_1000_requests": if requests > 0 { server_cpu * 1000.0 / requests as f64 * 1000.0 } else { 0.0 },
            "cpu_s_per_GB": if bytes > 0 { server_cpu / (bytes as f64 / 1e9) } else { 0.0 },
            "rss_kib_start": rss_series.first(),
            "rss_kib_max": rss_series.iter().max(),
            "rss_kib_end": rss_series.last(),
        },
        "loadgen_cpu_s": self1 - self0,
        "machine_busy_pct_of_one_core": machine_busy,
        "ncpu": procstat::ncpu(),
        "saved": saved,
        "rss_series_kib": rss_series,
    });
    if let Some(out) = &cfg.out {
        std::fs::write(out, serde_json::to_vec_pretty(&result)?)?;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_relative_uris() {
        let base =
            Url::parse("https://127.0.0.1:8443/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=x")
                .unwrap();
        assert_eq!(
            base.join("getHLSMediaPlaylist.m3u8?SessionToken=x&TrackNumber=1")
                .unwrap()
                .target,
            "/hls/v1/getHLSMediaPlaylist.m3u8?SessionToken=x&TrackNumber=1"
        );
        assert_eq!(base.join("/a.mp4").unwrap().target, "/a.mp4");
        let root = Url::parse("https://localhost:9000").unwrap();
        assert_eq!(root.join("seg-00001.mp4").unwrap().target, "/seg-00001.mp4");
        assert_eq!(root.port, 9000);
    }

    #[test]
    fn parses_live_playlist_with_parts() {
        let base = Url::parse("https://h:1/hls/v1/getHLSMediaPlaylist.m3u8?S=1").unwrap();
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:7\n\
            #EXT-X-MAP:URI=\"getMP4InitFragment.mp4?FragmentNumber=91000&SessionToken=t\"\n\
            #EXTINF:1.000,\ngetMP4MediaFragment.mp4?FragmentNumber=91000000000000000000000000000000000000000000042&SessionToken=t\n\
            #EXT-X-PART:DURATION=0.25,URI=\"getMP4MediaFragment.mp4?FragmentNumber=9143&Part=0\"\n\
            #EXTINF:0.967,\ngetMP4MediaFragment.mp4?FragmentNumber=91000000000000000000000000000000000000000000043&SessionToken=t\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"x\"\n";
        let (init, entries) = parse_media_playlist(&base, text).unwrap();
        assert_eq!(
            init.unwrap().target,
            "/hls/v1/getMP4InitFragment.mp4?FragmentNumber=91000&SessionToken=t"
        );
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].key, 42);
        assert_eq!(entries[1].key, 43);
        assert!((entries[1].duration - 0.967).abs() < 1e-9);
    }
}
