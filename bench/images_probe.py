#!/usr/bin/env python3
"""Measurement helper for bench/images.sh: GetImages timings against ingest-server (boto3,
through GetDataEndpoint like a real client) and, in the same run, the physical limit: the
same stored fragment decoded and encoded by gst-launch-1.0. Subcommands:

  measure   GetImages scenarios (JPEG at 200 ms and 1000 ms sampling, 25 images per call,
            plus a scaled JPEG and a PNG), ROUNDS calls each: wall time per call and per
            image, the server's CPU (utime+stime from /proc) per image, and an estimate of
            the frames the server had to decode (from ListFragments); then the reference
            decode of one fragment with gst-launch-1.0. Writes one JSON file.
  summary   the Markdown summary of that JSON file (PASS/FAIL: < 150 ms per JPEG at 720p).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

CLK_TCK = os.sysconf("SC_CLK_TCK")
REGION = "us-west-2"
TARGET_MS_PER_JPEG = 150.0


def cpu_ms(pid: int | None) -> float | None:
    if not pid:
        return None
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / CLK_TCK


def clients(a):
    cfg = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=300)
    common = dict(region_name=REGION, verify=a.ca, config=cfg)
    if a.credentials:
        import configparser

        cp = configparser.ConfigParser()
        cp.read(a.credentials)
        sec = cp["default"]
        common.update(aws_access_key_id=sec["aws_access_key_id"].strip(), aws_secret_access_key=sec["aws_secret_access_key"].strip())
    kv = boto3.session.Session().client("kinesisvideo", endpoint_url=a.endpoint, **common)
    data = kv.get_data_endpoint(StreamName=a.stream, APIName="GET_IMAGES")["DataEndpoint"]
    media = kv.get_data_endpoint(StreamName=a.stream, APIName="GET_MEDIA_FOR_FRAGMENT_LIST")["DataEndpoint"]
    arch = boto3.session.Session().client("kinesis-video-archived-media", endpoint_url=data, **common)
    arch_media = boto3.session.Session().client("kinesis-video-archived-media", endpoint_url=media, **common)
    return arch, arch_media


def ts(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)


def ms_of(t) -> int:
    return round(t.timestamp() * 1000)


def fragments(arch, stream: str) -> list[dict]:
    out = []
    for page in arch.get_paginator("list_fragments").paginate(StreamName=stream):
        for f in page["Fragments"]:
            out.append(
                {
                    "number": f["FragmentNumber"],
                    "producer_ms": ms_of(f["ProducerTimestamp"]),
                    "length_ms": f["FragmentLengthInMilliseconds"],
                    "bytes": f["FragmentSizeInBytes"],
                }
            )
    return sorted(out, key=lambda f: f["producer_ms"])


def covering(frags: list[dict], t: int) -> dict | None:
    best = None
    for f in frags:
        if f["producer_ms"] <= t < f["producer_ms"] + max(1, f["length_ms"]):
            best = f
    return best


def decoded_frames_estimate(frags, instants, frame_ms: float, gop_ms: float) -> int:
    """Frames the server decodes for these instants: per fragment one pass from the key frame
    before its first wanted instant up to its last wanted instant (key frames assumed every
    gop_ms from the fragment start)."""
    by_frag: dict[str, list[int]] = {}
    for t in instants:
        f = covering(frags, t)
        if f:
            by_frag.setdefault(f["number"], []).append(t - f["producer_ms"])
    total = 0
    for offsets in by_frag.values():
        lo, hi = min(offsets), max(offsets)
        start = math.floor(lo / gop_ms) * gop_ms
        total += int((hi - start) // frame_ms) + 1
    return total


def call(arch, stream, start_ms, end_ms, interval, fmt, extra, pid):
    c0, t0 = cpu_ms(pid), time.perf_counter()
    resp = arch.get_images(
        StreamName=stream,
        ImageSelectorType="PRODUCER_TIMESTAMP",
        StartTimestamp=ts(start_ms),
        EndTimestamp=ts(end_ms),
        SamplingInterval=interval,
        Format=fmt,
        MaxResults=25,
        **extra,
    )
    wall = (time.perf_counter() - t0) * 1000
    c1 = cpu_ms(pid)
    images = resp["Images"]
    ok = [i for i in images if "ImageContent" in i]
    sizes = [len(base64.b64decode(i["ImageContent"])) for i in ok]
    return {
        "wall_ms": wall,
        "server_cpu_ms": (c1 - c0) if c0 is not None and c1 is not None else None,
        "images": len(images),
        "with_content": len(ok),
        "errors": sorted({i.get("Error") for i in images if "Error" in i}),
        "mean_bytes": statistics.mean(sizes) if sizes else 0,
        "next_token": bool(resp.get("NextToken")),
        "first_image": ok[0]["ImageContent"] if ok else None,
    }


def image_dims(b64: str) -> list[int] | None:
    res = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", "-i", "pipe:0"],
        input=base64.b64decode(b64),
        capture_output=True,
        timeout=30,
    )
    try:
        return [int(x) for x in res.stdout.decode().strip().split(",")[:2]]
    except ValueError:
        return None


def timed(cmd: list[str], rounds: int) -> float:
    """Median wall time of a command in ms."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, timeout=120)
        times.append((time.perf_counter() - t0) * 1000)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr.decode(errors='replace')}")
    return statistics.median(times)


def ffmpeg_bench(args: list[str], rounds: int) -> dict:
    """Median `ffmpeg -benchmark` times in ms: rtime (wall) and utime+stime (CPU) of the
    transcoding itself, process start-up and library loading excluded."""
    walls, cpus = [], []
    for _ in range(rounds):
        res = subprocess.run(
            ["ffmpeg", "-hide_banner", "-nostats", "-benchmark", *args], capture_output=True, text=True, timeout=120
        )
        if res.returncode != 0:
            raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {res.stderr}")
        fields = {}
        for line in res.stderr.splitlines():
            if line.startswith("bench: utime="):
                for part in line[len("bench: "):].split():
                    k, v = part.split("=")
                    fields[k] = float(v.rstrip("s")) * 1000
        walls.append(fields["rtime"])
        cpus.append(fields["utime"] + fields["stime"])
    return {"wall_ms": statistics.median(walls), "cpu_ms": statistics.median(cpus)}


def reference(arch_media, stream: str, frag: dict, out_dir: Path, rounds: int, quality: int) -> dict:
    """One stored fragment (GetMediaForFragmentList) decoded outside the server, medians of
    `rounds` runs:

    * ffmpeg -benchmark (libavcodec, as avdec_h264; start-up excluded by ffmpeg itself): the
      key frame alone, the key frame + one JPEG (mjpeg), the whole fragment. Per-frame decode
      = (whole - key frame) / (frames - 1); JPEG = (key frame + JPEG) - key frame.
    * gst-launch-1.0 `matroskademux ! avdec_h264 ! videoconvert ! RGB ! jpegenc snapshot=true`
      (the server's elements), minus the same process loading the same plugins with no data.
    """
    payload = arch_media.get_media_for_fragment_list(StreamName=stream, Fragments=[frag["number"]])["Payload"].read()
    path = out_dir / "reference-fragment.mkv"
    path.write_bytes(payload)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames,width,height", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    stream_info = json.loads(probe.stdout)["streams"][0]
    frames = int(stream_info["nb_read_frames"])
    key = ffmpeg_bench(["-i", str(path), "-frames:v", "1", "-f", "null", "-"], rounds)
    key_jpeg = ffmpeg_bench(["-i", str(path), "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "3", "-f", "null", "-"], rounds)
    whole = ffmpeg_bench(["-i", str(path), "-f", "null", "-"], rounds)
    per = lambda k: max(0.0, whole[k] - key[k]) / max(1, frames - 1)  # noqa: E731
    jpeg = lambda k: max(0.0, key_jpeg[k] - key[k])  # noqa: E731
    gst = ["gst-launch-1.0", "-q"]
    baseline = timed(gst + ["fakesrc", "num-buffers=0", "!", "avdec_h264", "!", "videoconvert", "!", "jpegenc", "!", "fakesink"], rounds)
    gst_key_jpeg = timed(
        gst + ["filesrc", f"location={path}", "!", "matroskademux", "!", "avdec_h264", "!", "videoconvert", "!",
               "video/x-raw,format=RGB", "!", "jpegenc", f"quality={quality}", "snapshot=true", "!", "fakesink"],
        rounds,
    )
    return {
        "fragment": frag["number"],
        "fragment_bytes": len(payload),
        "frames": frames,
        "width": stream_info.get("width"),
        "height": stream_info.get("height"),
        "ffmpeg_keyframe": key,
        "ffmpeg_keyframe_jpeg": key_jpeg,
        "ffmpeg_whole_fragment": whole,
        "decode_wall_ms_per_frame": per("wall_ms"),
        "decode_cpu_ms_per_frame": per("cpu_ms"),
        "jpeg_wall_ms": jpeg("wall_ms"),
        "jpeg_cpu_ms": jpeg("cpu_ms"),
        "gst_plugin_startup_ms": baseline,
        "gst_keyframe_jpeg_ms": max(0.0, gst_key_jpeg - baseline),
    }


def cmd_measure(a):
    arch, arch_media = clients(a)
    frags = fragments(arch, a.stream)
    if len(frags) < 3:
        sys.exit(f"only {len(frags)} fragments stored in {a.stream}")
    first, last = frags[0], frags[-1]
    stored_end = last["producer_ms"] + last["length_ms"]
    # Skip the first fragment (pipeline start-up), start on a whole second (boto3 sends
    # whole seconds).
    start = (first["producer_ms"] + first["length_ms"]) // 1000 * 1000 + 1000
    frame_ms = 1000.0 / a.framerate
    gop_ms = a.keyframe_interval * frame_ms
    # (name, SamplingInterval, Format, extra arguments, instants per call)
    scenarios = [
        ("jpeg-200ms", 200, "JPEG", {}, 25),
        ("jpeg-1000ms", 1000, "JPEG", {}, 25),
        # 1033 ms: the instants drift across the GOP (0..825 ms after the start phase), so the
        # frames to decode per image average over positions in the GOP.
        ("jpeg-1033ms", 1033, "JPEG", {}, 25),
        ("jpeg-single", 1000, "JPEG", {}, 1),
        ("jpeg-1000ms-640x360", 1000, "JPEG", {"WidthPixels": 640, "HeightPixels": 360}, 25),
        ("png-1000ms", 1000, "PNG", {}, 25),
    ]
    out = {"stream": a.stream, "fragments": len(frags), "stored_ms": stored_end - first["producer_ms"], "scenarios": []}
    # Warm-up (GStreamer registry, page cache): one small call, not counted.
    call(arch, a.stream, start, start + 1000, 1000, "JPEG", {}, a.server_pid)
    for name, interval, fmt, extra, count in scenarios:
        # Whole seconds (boto3 truncates timestamps); ceil((end - start) / interval) = count.
        end = start + (count * interval) // 1000 * 1000 if count > 1 else start
        if end > stored_end:
            print(f"[images] {name}: needs {count * interval} ms of media from {start}, "
                  f"only {stored_end - start} ms stored: shortened", file=sys.stderr)
            end = stored_end // 1000 * 1000
        instants = list(range(start, end, interval)) or [start]
        runs = [call(arch, a.stream, start, end, interval, fmt, extra, a.server_pid) for _ in range(a.rounds)]
        dims = image_dims(runs[0]["first_image"]) if runs[0]["first_image"] else None
        for r in runs:
            r.pop("first_image", None)
        n = runs[0]["images"]
        per_image = [r["wall_ms"] / max(1, r["images"]) for r in runs]
        cpu_per_image = [r["server_cpu_ms"] / max(1, r["images"]) for r in runs if r["server_cpu_ms"] is not None]
        out["scenarios"].append(
            {
                "name": name,
                "interval_ms": interval,
                "format": fmt,
                "extra": extra,
                "window": [start, end],
                "images_per_call": n,
                "image_dims": dims,
                "decoded_frames_estimate": decoded_frames_estimate(frags, instants, frame_ms, gop_ms),
                "mean_offset_in_gop_ms": statistics.mean(
                    ((t - f["producer_ms"]) % gop_ms) for t in instants if (f := covering(frags, t))
                ),
                "runs": runs,
                "ms_per_image_median": statistics.median(per_image),
                "ms_per_image_max": max(per_image),
                "server_cpu_ms_per_image_median": statistics.median(cpu_per_image) if cpu_per_image else None,
            }
        )
        print(f"[images] {name}: {n} images/call, median {statistics.median(per_image):.1f} ms/image", file=sys.stderr)
    ref_frag = covering(frags, start) or frags[1]
    out["reference"] = reference(arch_media, a.stream, ref_frag, Path(a.out).parent, a.ref_rounds, 80)
    ref = out["reference"]
    for s in out["scenarios"]:
        if s["format"] == "JPEG" and not s["extra"]:
            n = max(1, s["images_per_call"])
            for k in ("wall", "cpu"):
                s[f"reference_{k}_ms_per_image"] = (
                    s["decoded_frames_estimate"] * ref[f"decode_{k}_ms_per_frame"] + n * ref[f"jpeg_{k}_ms"]
                ) / n
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")


def cmd_summary(a):
    d = json.loads(Path(a.json).read_text())
    ref = d["reference"]
    lines = [
        "# GetImages benchmark",
        "",
        f"Command: `{a.command}`" if a.command else "",
        "",
    ]
    if a.meta and Path(a.meta).exists():
        lines += ["```", Path(a.meta).read_text().strip(), "```", ""]
    lines += [
        f"Stream: {d['fragments']} fragments, {d['stored_ms'] / 1000:.1f} s stored. "
        "Each call: MaxResults=25, PRODUCER_TIMESTAMP, through GetDataEndpoint(GET_IMAGES), boto3 over TLS.",
        "",
        "| scenario | images/call | size | ms/image wall (median) | ms/image wall (max) | server CPU ms/image | instant offset in GOP (mean ms) | frames decoded/call (est.) | reference ms/image wall / CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in d["scenarios"]:
        dims = "x".join(str(x) for x in s["image_dims"]) if s.get("image_dims") else "?"
        cpu = s.get("server_cpu_ms_per_image_median")
        rw, rc = s.get("reference_wall_ms_per_image"), s.get("reference_cpu_ms_per_image")
        refv = f"{rw:.1f} / {rc:.1f}" if rw is not None else "-"
        lines.append(
            f"| {s['name']} | {s['images_per_call']} | {dims} | {s['ms_per_image_median']:.1f} | {s['ms_per_image_max']:.1f} | "
            f"{'%.1f' % cpu if cpu is not None else '-'} | {s['mean_offset_in_gop_ms']:.0f} | {s['decoded_frames_estimate']} | {refv} |"
        )
    fk, fj = ref["ffmpeg_keyframe"], ref["ffmpeg_keyframe_jpeg"]
    lines += [
        "",
        f"Reference, same run: one stored fragment ({ref['frames']} frames, {ref['width']}x{ref['height']}, "
        f"{ref['fragment_bytes'] / 1024:.0f} KiB), medians (wall / CPU ms):",
        "",
        f"- ffmpeg -benchmark, key frame decoded: {fk['wall_ms']:.1f} / {fk['cpu_ms']:.1f}; "
        f"key frame + one JPEG (mjpeg -q:v 3): {fj['wall_ms']:.1f} / {fj['cpu_ms']:.1f}",
        f"- ffmpeg, per further frame decoded: {ref['decode_wall_ms_per_frame']:.2f} / {ref['decode_cpu_ms_per_frame']:.2f}; "
        f"per JPEG: {ref['jpeg_wall_ms']:.1f} / {ref['jpeg_cpu_ms']:.1f}",
        f"- gst-launch-1.0 key frame + one JPEG (the server's elements, RGB, quality=80), the same process "
        f"loading the same plugins without data ({ref['gst_plugin_startup_ms']:.0f} ms) subtracted: "
        f"{ref['gst_keyframe_jpeg_ms']:.1f} wall (includes pipeline set-up and preroll; an upper bound)",
        "- reference ms/image = (frames the server must decode x ffmpeg ms/frame + images x ffmpeg ms/JPEG) / images",
        "",
    ]
    worst = max((s["ms_per_image_median"] for s in d["scenarios"] if s["format"] == "JPEG" and not s["extra"]), default=None)
    verdict = "PASS" if worst is not None and worst < TARGET_MS_PER_JPEG else "FAIL"
    shown = f"{worst:.1f} ms" if worst is not None else "none measured"
    lines.append(f"{verdict}: < {TARGET_MS_PER_JPEG:.0f} ms per JPEG at full size (worst scenario median: {shown})")
    text = "\n".join(lines) + "\n"
    Path(a.out).write_text(text)
    print(text)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--endpoint", required=True)
    m.add_argument("--ca", required=True)
    m.add_argument("--credentials", required=True)
    m.add_argument("--stream", required=True)
    m.add_argument("--server-pid", type=int)
    m.add_argument("--rounds", type=int, default=3)
    m.add_argument("--ref-rounds", type=int, default=5)
    m.add_argument("--framerate", type=float, default=30)
    m.add_argument("--keyframe-interval", type=int, default=30)
    m.add_argument("--out", required=True)
    m.set_defaults(fn=cmd_measure)
    s = sub.add_parser("summary")
    s.add_argument("--json", required=True)
    s.add_argument("--meta")
    s.add_argument("--command")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_summary)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
