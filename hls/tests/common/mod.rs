//! Shared by the integration tests: real H.264 from GStreamer re-wrapped as stored KVS
//! fragments, and ffprobe/ffmpeg runners.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use mkv_fragment::getmedia::{FragmentStamp, write_fragment_prefix, write_fragment_trailer};
use mkv_fragment::{Event, Frame, ProducerWriter, SegmentInfo, StreamParser, TrackInfo};

/// Producer timestamp of the first frame (ms since the epoch).
pub const BASE_MS: u64 = 1_700_000_000_000;
pub const FRAMES: usize = 60;

/// One decoded-from-MKV frame of the GStreamer capture.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub pts_ms: u64,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

/// The GStreamer capture: its H.264 track and frames (timestamps from 0).
#[derive(Debug)]
pub struct Capture {
    pub track: TrackInfo,
    pub frames: Vec<RawFrame>,
}

/// Encodes 60 frames of 320x240 at 30 fps with x264 (a key frame every 30 frames, no
/// B-frames) into Matroska with gst-launch-1.0, and reads the track and frames back with
/// mkv_fragment's parser. Done once per test binary.
pub fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| encode_capture(0))
}

/// Like [`capture`] with `bframes` B-frames allowed (frames reordered).
pub fn encode_capture(bframes: u32) -> Capture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("in.mkv");
    let pipeline = format!(
        "videotestsrc num-buffers={FRAMES} ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 \
         ! x264enc key-int-max=30 bframes={bframes} ! video/x-h264,stream-format=avc,alignment=au \
         ! matroskamux ! filesink location={}",
        path.display()
    );
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .status()
        .expect("gst-launch-1.0 runs (install gstreamer1.0-tools and plugins-ugly)");
    assert!(status.success(), "gst-launch-1.0 failed");
    let mkv = std::fs::read(&path).expect("gst output");
    parse_capture(&mkv)
}

fn parse_capture(mkv: &[u8]) -> Capture {
    let mut parser = StreamParser::default();
    parser.push(mkv);
    let mut track = None;
    let mut scale = 1_000_000u64;
    let mut frames = Vec::new();
    while let Some(event) = parser.finish().expect("valid MKV") {
        match event {
            Event::Header(h) => {
                scale = h.timecode_scale_ns;
                track = h
                    .tracks
                    .into_iter()
                    .find(|t| t.codec_id == "V_MPEG4/ISO/AVC");
            }
            Event::Cluster(c) => {
                for b in &c.blocks {
                    let ns = (c.timecode as i64 + i64::from(b.relative_timecode)) * scale as i64;
                    frames.push(RawFrame {
                        pts_ms: (ns / 1_000_000) as u64,
                        keyframe: b.keyframe,
                        data: c.body[b.data.clone()].to_vec(),
                    });
                }
            }
            _ => {}
        }
    }
    let track = track.expect("an H.264 track");
    assert_eq!(frames.len(), FRAMES);
    Capture { track, frames }
}

/// The capture cut into fragments of about 1 s (a new one at the first key frame 1 s or more
/// after the current one started), each in the exact shape the server stores: a GetMedia chunk
/// (EBML header, Segment, Info/Tracks, AWS Tags, one known-size Cluster, trailer Tags).
/// Producer timestamps start at [`BASE_MS`].
pub fn stored_fragments(capture: &Capture) -> Vec<Vec<u8>> {
    let spec = TrackInfo {
        number: 1,
        uid: 1,
        track_type: 1,
        ..capture.track.clone()
    };
    let writer = ProducerWriter::new(SegmentInfo::default(), vec![spec]);
    let mut groups: Vec<Vec<&RawFrame>> = Vec::new();
    for f in &capture.frames {
        let start_new = match groups.last() {
            None => true,
            Some(g) => f.keyframe && f.pts_ms >= g[0].pts_ms + 1000,
        };
        if start_new {
            groups.push(Vec::new());
        }
        groups.last_mut().unwrap().push(f);
    }
    groups
        .iter()
        .enumerate()
        .map(|(i, group)| {
            let cluster_tc = BASE_MS + group[0].pts_ms;
            let frames: Vec<Frame<'_>> = group
                .iter()
                .map(|f| Frame {
                    track: 1,
                    relative_timecode: (BASE_MS + f.pts_ms - cluster_tc) as i16,
                    keyframe: f.keyframe,
                    data: &f.data,
                })
                .collect();
            let mut producer = Vec::new();
            writer.header(&mut producer);
            writer.cluster(&mut producer, cluster_tc, &frames);
            let mut parser = StreamParser::default();
            parser.push(&producer);
            let (mut raw, mut body) = (None, None);
            while let Some(event) = parser.finish().unwrap() {
                match event {
                    Event::Header(h) => raw = Some(h.raw),
                    Event::Cluster(c) => body = Some(c.body),
                    _ => {}
                }
            }
            let number = format!("9134385233318150{i:03}");
            let stamp = FragmentStamp {
                fragment_number: &number,
                server_timestamp_ms: cluster_tc as i64 + 200,
                producer_timestamp_ms: cluster_tc as i64,
            };
            let mut out = Vec::new();
            write_fragment_prefix(&mut out, &raw.unwrap(), &stamp, &[], &body.unwrap());
            write_fragment_trailer(&mut out, 0, &number);
            out
        })
        .collect()
}

/// Runs a command and returns (success, stdout, stderr).
pub fn run(program: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ffprobe -count_frames` on the video stream: (codec_name, width, height, nb_read_frames).
pub fn probe_stream(path: &Path, extra: &[&str]) -> (String, u64, u64, u64) {
    let path = path.to_str().unwrap();
    let mut args = vec!["-v", "error"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-count_frames",
        "-select_streams",
        "v",
        "-show_entries",
        "stream=codec_name,width,height,nb_read_frames",
        "-of",
        "json",
        path,
    ]);
    let (ok, stdout, stderr) = run("ffprobe", &args);
    assert!(ok, "ffprobe failed on {path}: {stderr}");
    assert!(
        stderr.trim().is_empty(),
        "ffprobe complained on {path}: {stderr}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("ffprobe json");
    let s = &json["streams"][0];
    (
        s["codec_name"].as_str().unwrap_or_default().to_owned(),
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
        s["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    )
}

/// Decodes the whole file with `ffmpeg -v error -f null` and returns stderr (must be empty).
pub fn decode_errors(path: &Path, extra: &[&str]) -> String {
    let path = path.to_str().unwrap();
    let mut args = vec!["-nostdin", "-v", "error"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-i", path, "-f", "null", "-"]);
    let (ok, _, stderr) = run("ffmpeg", &args);
    assert!(ok, "ffmpeg failed on {path}: {stderr}");
    stderr
}

/// `ffprobe -show_frames` presentation times (seconds) and key frame flags of the video.
pub fn frame_times(path: &Path) -> Vec<(f64, bool)> {
    let path = path.to_str().unwrap();
    let (ok, stdout, stderr) = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_frames",
            "-show_entries",
            "frame=pts_time,key_frame",
            "-of",
            "json",
            path,
        ],
    );
    assert!(ok, "ffprobe -show_frames failed: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    json["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| {
            (
                f["pts_time"].as_str().unwrap().parse::<f64>().unwrap(),
                f["key_frame"].as_u64() == Some(1),
            )
        })
        .collect()
}

/// Writes `parts` concatenated to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, parts: &[&[u8]]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, parts.concat()).expect("write");
    path
}
