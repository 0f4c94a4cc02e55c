"""Real H.264 test media generated with GStreamer (cached per test session)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from pathlib import Path

import ebml

_lock = threading.Lock()
_cache: dict[tuple, bytes] = {}


def gst_h264_mkv(
    out: Path,
    *,
    seconds: int = 3,
    fps: int = 30,
    width: int = 320,
    height: int = 240,
    pattern: str = "smpte",
    bitrate_kbps: int = 400,
) -> Path:
    """Encode ``seconds`` of videotestsrc with x264 (1 s key-frame interval) into
    a streamable matroskamux file."""
    n = seconds * fps
    pipeline = (
        f"videotestsrc num-buffers={n} is-live=false pattern={pattern} "
        f"! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 "
        f"! x264enc key-int-max={fps} tune=zerolatency speed-preset=ultrafast bitrate={bitrate_kbps} "
        "! h264parse ! video/x-h264,stream-format=avc,alignment=au "
        # min-cluster-duration=0: matroskamux starts a Cluster at every key frame.
        "! matroskamux streamable=true min-cluster-duration=0 "
        f"! filesink location={out}"
    )
    res = subprocess.run(
        ["gst-launch-1.0", "-q", *pipeline.split()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if res.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        raise RuntimeError(f"gst-launch failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return out


def clip(cache_dir: Path, *, seconds: int = 3, pattern: str = "smpte", fps: int = 30) -> bytes:
    """The bytes of a matroskamux clip, generated once per session and parameters.

    The clip is checked: it must start with a key frame and have exactly one
    key frame per second (so ``ebml.to_kvs_mkv`` yields ``seconds`` fragments)."""
    key = (seconds, pattern, fps)
    with _lock:
        if key in _cache:
            return _cache[key]
        cache_dir.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha1(repr(key).encode()).hexdigest()[:12]
        path = cache_dir / f"clip-{name}.mkv"
        gst_h264_mkv(path, seconds=seconds, pattern=pattern, fps=fps)
        data = path.read_bytes()
        _, frames, frame_ms = ebml.source_frames(data)
        keys = [f.abs_ms for f in frames if f.keyframe]
        if len(frames) != seconds * fps:
            raise RuntimeError(f"expected {seconds * fps} frames, got {len(frames)}")
        if len(keys) != seconds or keys[0] != 0:
            raise RuntimeError(f"expected one key frame per second, got key frames at {keys}")
        _cache[key] = data
        return data


def ffprobe_count_frames(path: os.PathLike) -> dict:
    """Decode every frame of a file with ffprobe; return codec/size/frame count."""
    res = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "default=noprint_wrappers=1",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    info = {"returncode": res.returncode, "stderr": res.stderr}
    for line in res.stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            info[k] = v
    return info
