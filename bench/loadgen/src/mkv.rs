//! Minimal EBML walker: splits a Matroska file (as written by GStreamer's matroskamux) into
//! the header a KVS producer sends (EBML header, unknown-size Segment, Info, Tracks) and
//! its Clusters, and re-writes each Cluster as a known-size Cluster with an absolute
//! millisecond Timecode, as a kvssink producer with `absoluteFragmentTimes` does.
//!
//! This is deliberately self-contained (not the workspace's `mkv-fragment` crate) so the
//! benchmark's producer side does not share code with the server under test.

use anyhow::{Context, bail};

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TRACKS: u32 = 0x1654_AE6B;
const CLUSTER: u32 = 0x1F43_B675;
const TIMECODE_SCALE: u32 = 0x2A_D7B1;
const TIMECODE: u32 = 0xE7;
const POSITION: u32 = 0xA7;
const PREV_SIZE: u32 = 0xAB;
const CRC32: u32 = 0xBF;
const VOID: u32 = 0xEC;
/// Level-1 elements: any of them ends an unknown-size Cluster.
const LEVEL1: [u32; 9] = [
    0x114D_9B74,
    INFO,
    TRACKS,
    0x1043_A770,
    0x1941_A469,
    0x1C53_BB6B,
    0x1254_C367,
    CLUSTER,
    SEGMENT,
];

/// One source Cluster: its timecode and its children other than Timecode/Position/PrevSize.
#[derive(Debug, Clone)]
pub(crate) struct SrcCluster {
    pub(crate) tc_ms: u64,
    pub(crate) body: Vec<u8>,
}

/// The parsed source file.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// EBML header + Segment (unknown size) + Info + Tracks.
    pub(crate) header: Vec<u8>,
    pub(crate) clusters: Vec<SrcCluster>,
    /// Duration of each cluster in ms (next timecode minus this one; the last one gets the mean).
    pub(crate) durations_ms: Vec<u64>,
}

impl Source {
    /// Length of one pass through the source, in ms.
    pub(crate) fn period_ms(&self) -> u64 {
        self.durations_ms.iter().sum()
    }

    /// Offset (ms from the start of the replay) and source index of replayed fragment `k`.
    pub(crate) fn schedule(&self, k: u64) -> (u64, usize) {
        let n = self.clusters.len() as u64;
        let idx = (k % n) as usize;
        let cycle = k / n;
        let within = self.clusters[idx].tc_ms - self.clusters[0].tc_ms;
        (cycle * self.period_ms() + within, idx)
    }

    /// Bytes of the re-written fragment `idx` with absolute timecode `tc_ms`.
    pub(crate) fn fragment(&self, idx: usize, tc_ms: u64) -> Vec<u8> {
        let body = &self.clusters[idx].body;
        let mut out = Vec::with_capacity(body.len() + 32);
        out.extend_from_slice(&[0x1F, 0x43, 0xB6, 0x75]);
        let size = 2 + 8 + body.len() as u64;
        out.push(0x01);
        out.extend_from_slice(&size.to_be_bytes()[1..]);
        out.extend_from_slice(&[0xE7, 0x88]);
        out.extend_from_slice(&tc_ms.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// Mean bytes per second of the re-written fragments.
    pub(crate) fn bytes_per_sec(&self) -> f64 {
        let bytes: usize = self.clusters.iter().map(|c| c.body.len() + 22).sum();
        bytes as f64 * 1000.0 / self.period_ms() as f64
    }
}

fn read_id(buf: &[u8], pos: usize) -> anyhow::Result<(u32, usize)> {
    let first = *buf.get(pos).context("truncated element id")?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 || pos + len > buf.len() {
        bail!("bad element id at {pos}");
    }
    let mut id = 0u32;
    for b in &buf[pos..pos + len] {
        id = (id << 8) | u32::from(*b);
    }
    Ok((id, len))
}

/// Returns (size, length of the size field); size `None` = unknown.
fn read_size(buf: &[u8], pos: usize) -> anyhow::Result<(Option<u64>, usize)> {
    let first = *buf.get(pos).context("truncated element size")?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || pos + len > buf.len() {
        bail!("bad element size at {pos}");
    }
    let mask: u8 = if len == 8 { 0 } else { 0xFF >> len };
    let mut v = u64::from(first & mask);
    let mut all_ones = (first & mask) == mask;
    for b in &buf[pos + 1..pos + len] {
        v = (v << 8) | u64::from(*b);
        all_ones &= *b == 0xFF;
    }
    Ok((if all_ones { None } else { Some(v) }, len))
}

fn read_uint(data: &[u8]) -> u64 {
    data.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// Parses a Matroska file into a [`Source`].
pub(crate) fn parse(buf: &[u8]) -> anyhow::Result<Source> {
    let mut header = Vec::new();
    let mut pos = 0;
    // EBML header.
    let (id, il) = read_id(buf, pos)?;
    if id != EBML {
        bail!("not an EBML file");
    }
    let (size, sl) = read_size(buf, pos + il)?;
    let end = pos + il + sl + size.context("unknown-size EBML header")? as usize;
    header.extend_from_slice(&buf[pos..end]);
    pos = end;
    // Segment.
    let (id, il) = read_id(buf, pos)?;
    if id != SEGMENT {
        bail!("expected a Segment at {pos}");
    }
    let (size, sl) = read_size(buf, pos + il)?;
    pos += il + sl;
    let seg_end = size.map_or(buf.len(), |s| (pos + s as usize).min(buf.len()));
    header.extend_from_slice(&[0x18, 0x53, 0x80, 0x67, 0xFF]);

    let mut clusters = Vec::new();
    let mut saw_info = false;
    let mut saw_tracks = false;
    while pos < seg_end {
        let (id, il) = read_id(buf, pos)?;
        let (size, sl) = read_size(buf, pos + il)?;
        let data_start = pos + il + sl;
        if id == CLUSTER {
            let mut p = data_start;
            let limit = size.map_or(seg_end, |s| data_start + s as usize);
            let mut tc = None;
            let mut body = Vec::new();
            while p < limit {
                let (cid, cil) = read_id(buf, p)?;
                if size.is_none() && LEVEL1.contains(&cid) {
                    break;
                }
                let (csize, csl) = read_size(buf, p + cil)?;
                let csize = csize.context("unknown-size element inside a Cluster")? as usize;
                let cend = p + cil + csl + csize;
                if cend > buf.len() {
                    bail!("truncated Cluster child at {p}");
                }
                match cid {
                    TIMECODE => tc = Some(read_uint(&buf[p + cil + csl..cend])),
                    POSITION | PREV_SIZE | CRC32 | VOID => {}
                    _ => body.extend_from_slice(&buf[p..cend]),
                }
                p = cend;
            }
            clusters.push(SrcCluster {
                tc_ms: tc.context("Cluster without Timecode")?,
                body,
            });
            pos = p;
            continue;
        }
        let size = size.with_context(|| format!("unknown-size level-1 element {id:#x}"))? as usize;
        let end = data_start + size;
        if end > buf.len() {
            bail!("truncated element {id:#x} at {pos}");
        }
        match id {
            INFO => {
                check_timecode_scale(&buf[data_start..end])?;
                header.extend_from_slice(&buf[pos..end]);
                saw_info = true;
            }
            TRACKS => {
                header.extend_from_slice(&buf[pos..end]);
                saw_tracks = true;
            }
            _ => {}
        }
        pos = end;
    }
    if !saw_info || !saw_tracks || clusters.is_empty() {
        bail!("source needs Info, Tracks and at least one Cluster");
    }
    let mut durations_ms: Vec<u64> = clusters
        .windows(2)
        .map(|w| w[1].tc_ms.saturating_sub(w[0].tc_ms))
        .collect();
    let last = if durations_ms.is_empty() {
        1000
    } else {
        durations_ms.iter().sum::<u64>() / durations_ms.len() as u64
    };
    durations_ms.push(last.max(1));
    Ok(Source {
        header,
        clusters,
        durations_ms,
    })
}

fn check_timecode_scale(info: &[u8]) -> anyhow::Result<()> {
    let mut p = 0;
    while p < info.len() {
        let (id, il) = read_id(info, p)?;
        let (size, sl) = read_size(info, p + il)?;
        let size = size.context("unknown size inside Info")? as usize;
        if id == TIMECODE_SCALE {
            let v = read_uint(&info[p + il + sl..p + il + sl + size]);
            if v != 1_000_000 {
                bail!("TimecodeScale is {v}, the bench needs 1 ms (1000000)");
            }
        }
        p += il + sl + size;
    }
    Ok(())
}

/// Loads and parses a file.
pub(crate) fn load(path: &std::path::Path) -> anyhow::Result<Source> {
    let buf = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&buf).with_context(|| format!("parsing {}", path.display()))
}
