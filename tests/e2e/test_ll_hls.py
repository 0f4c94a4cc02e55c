"""Low-Latency HLS on LIVE fMP4 sessions, fed by the real camera agent: parts of the fragment
being received are listed and served before it is complete, blocking playlist reloads and the
preload hint wait for what they name, parts decode with ffprobe, and the same playlist still
lists whole segments for standard players."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx

from agent import Agent, agent_env
from conftest import unique_name

FPS = 30
ARGS = ("--width", "320", "--height", "240", "--framerate", str(FPS), "--keyframe-interval", str(FPS), "--fragment-duration", "1")
PART = re.compile(r'#EXT-X-PART:DURATION=([0-9.]+),URI="([^"]+)"(,INDEPENDENT=YES)?')


def media_playlist_url(server, stream: str) -> tuple[str, httpx.Client]:
    url = server.archived().get_hls_streaming_session_url(
        StreamName=stream, PlaybackMode="LIVE", ContainerFormat="FRAGMENTED_MP4", DisplayFragmentTimestamp="ALWAYS"
    )["HLSStreamingSessionURL"]
    client = httpx.Client(verify=server.ca_file, timeout=20)
    master = client.get(url)
    assert master.status_code == 200, master.text
    media = next(line for line in master.text.splitlines() if line and not line.startswith("#"))
    return url.rsplit("/", 1)[0] + "/" + media, client


def tail_after_last_segment(playlist: str) -> str:
    """What follows the last complete segment: the parts being received and the hint."""
    lines = playlist.splitlines()
    last = max(i for i, line in enumerate(lines) if line.startswith("#EXTINF"))
    return "\n".join(lines[last + 2 :])


def test_ll_hls_parts_blocking_reload_and_preload_hint(server, tmp_path):
    stream = unique_name("ll-hls")
    agent = Agent(tmp_path / "spool", tmp_path, "ll-agent")
    try:
        agent.start(server.endpoint, stream, ca=server.ca_file, args=ARGS, env=agent_env(server))
        agent.wait_status(lambda s: s["fragments"]["acked"] >= 3, 40, "three acknowledged fragments")
        url, client = media_playlist_url(server, stream)
        base = url.rsplit("/", 1)[0] + "/"
        playlist = client.get(url).text

        # LL-HLS tags, and whole segments for standard players on the same URL.
        assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.75" in playlist, playlist
        assert "#EXT-X-PART-INF:PART-TARGET=0.25" in playlist, playlist
        assert len(re.findall(r"^#EXTINF:", playlist, re.M)) >= 2, playlist
        parts = PART.findall(playlist)
        assert parts and all(float(d) <= 0.25 for d, _, _ in parts), playlist
        assert parts[0][2], "the first part of a segment starts with a key frame"

        # Blocking reload: ask for part 2 of the segment after the last complete one.
        found = re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist)
        msn = int(found.group(1)) if found else 0  # absent means 0
        segments = len(re.findall(r"^#EXTINF:", playlist, re.M))
        next_msn = msn + segments + 1  # one beyond the segment being received now
        t0 = time.monotonic()
        blocked = client.get(url + f"&_HLS_msn={next_msn}&_HLS_part=2").text
        waited = time.monotonic() - t0
        tail = tail_after_last_segment(blocked)
        pending = PART.findall(tail)
        # Default LIVE sessions mark every fragment a discontinuity (AWS's ALWAYS with server
        # timestamps): the tag must come before the parts of the segment being received too.
        assert tail.startswith("#EXT-X-DISCONTINUITY"), tail
        assert len(pending) >= 3, f"part 2 of msn {next_msn} should be listed after {waited:.2f} s:\n{blocked}"
        assert 0.1 < waited < 3.5, f"the reload should wait for the part, not return at once or time out: {waited:.2f} s"

        # The preload hint names the next part; fetching it waits until it exists.
        hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', blocked).group(1)
        t0 = time.monotonic()
        r = client.get(base + hint)
        assert r.status_code == 200 and len(r.content) > 100, r.text
        assert time.monotonic() - t0 < 1.5

        # Init + every listed part decodes, frames evenly spaced (parts line up on one timeline).
        init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', blocked).group(1)
        body = client.get(base + init).content
        all_parts = PART.findall(blocked)
        for _, uri, _ in all_parts:
            part = client.get(base + uri)
            assert part.status_code == 200, part.text
            body += part.content
        out = Path(tmp_path) / "parts.mp4"
        out.write_bytes(body)
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=pts_time", "-of", "csv=p=0", str(out)],
            capture_output=True, text=True, check=True,
        )
        times = [float(t) for t in probe.stdout.split()]
        assert len(times) >= 0.8 * FPS * 0.25 * len(all_parts), (len(times), len(all_parts))
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert max(gaps) < 0.1 and min(gaps) > 0, f"frames not continuous across parts: {sorted(gaps)[-3:]}"
        decode = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"], capture_output=True, text=True)
        assert decode.returncode == 0 and decode.stderr.strip() == "", decode.stderr

        # A part that never comes is refused after the wait, not served empty.
        bad = re.sub(r"Part=\d+", "Part=999", hint)
        assert client.get(base + bad).status_code == 404
    finally:
        agent.stop(timeout=15)


def test_standard_sessions_have_no_parts(server, tmp_path):
    """ON_DEMAND and MPEG-TS sessions are plain HLS."""
    stream = unique_name("ll-plain")
    agent = Agent(tmp_path / "spool", tmp_path, "plain-agent")
    try:
        agent.start(server.endpoint, stream, ca=server.ca_file, args=ARGS, env=agent_env(server))
        agent.wait_status(lambda s: s["fragments"]["acked"] >= 2, 40, "two acknowledged fragments")
        url = server.archived().get_hls_streaming_session_url(
            StreamName=stream, PlaybackMode="LIVE", ContainerFormat="MPEG_TS"
        )["HLSStreamingSessionURL"]
        client = httpx.Client(verify=server.ca_file, timeout=20)
        media = next(l for l in client.get(url).text.splitlines() if l and not l.startswith("#"))
        playlist = client.get(url.rsplit("/", 1)[0] + "/" + media).text
        assert "#EXTINF" in playlist and "EXT-X-PART" not in playlist and "SERVER-CONTROL" not in playlist, playlist
    finally:
        agent.stop(timeout=15)
