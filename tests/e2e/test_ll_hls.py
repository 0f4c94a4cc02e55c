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
import pytest

from agent import Agent, agent_env
from conftest import unique_name
from playback import discontinuity_sequence_numbers, hlsjs_merge_error, hlsjs_parse

FPS = 30
ARGS = ("--width", "320", "--height", "240", "--framerate", str(FPS), "--keyframe-interval", str(FPS), "--fragment-duration", "1")
PART = re.compile(r'#EXT-X-PART:DURATION=([0-9.]+),URI="([^"]+)"(,INDEPENDENT=YES)?')


def media_playlist_url(server, stream: str, **extra) -> tuple[str, httpx.Client]:
    url = server.archived().get_hls_streaming_session_url(
        StreamName=stream, PlaybackMode="LIVE", ContainerFormat="FRAGMENTED_MP4", DisplayFragmentTimestamp="ALWAYS", **extra
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


def fragment_numbers_by_msn(playlist: str) -> dict[int, str]:
    """Media sequence number -> fragment number, for the complete segments and the segment
    being written (from its parts)."""
    found = re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist)
    msn = int(found.group(1)) if found else 0
    out: dict[int, str] = {}
    for line in playlist.splitlines():
        number = re.search(r"FragmentNumber=(\d+)", line)
        if line.startswith("#EXT-X-PART:") and number:
            out[msn] = number.group(1)
        elif line and not line.startswith("#"):
            out[msn] = number.group(1)
            msn += 1
    return out


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


@pytest.mark.parametrize("mode", [None, "ON_DISCONTINUITY"], ids=["default-ALWAYS", "ON_DISCONTINUITY"])
def test_ll_hls_discontinuities_consistent_across_blocking_reloads(server, tmp_path, mode):
    """A LIVE session with AWS's default DiscontinuityMode for SERVER_TIMESTAMP (ALWAYS: an
    EXT-X-DISCONTINUITY before every fragment; and ON_DISCONTINUITY, where the agent's
    continuous stream has none), reloaded for ~10 s the way hls.js does with
    lowLatencyMode (a blocking reload for the next part each time): every segment keeps its
    discontinuity sequence number across reloads (RFC 8216bis), hls.js's own reload check
    (ported in playback.hlsjs_merge_error) finds no mismatch, and every playlist ends with the
    segment being written (its parts and a preload hint), also between two fragments, where
    the hint names the next segment by media sequence number and serves its first part."""
    stream = unique_name("ll-disc")
    agent = Agent(tmp_path / "spool", tmp_path, "ll-disc-agent")
    try:
        agent.start(server.endpoint, stream, ca=server.ca_file, args=ARGS, env=agent_env(server))
        agent.wait_status(lambda s: s["fragments"]["acked"] >= 3, 40, "three acknowledged fragments")
        url, client = media_playlist_url(server, stream, **({"DiscontinuityMode": mode} if mode else {}))
        base = url.rsplit("/", 1)[0] + "/"
        token = re.search(r"SessionToken=([^&]+)", url).group(1)
        dsn_of: dict[int, int] = {}
        previous = None
        reloads = 0
        between = 0  # playlists written between two fragments
        hinted: tuple[int, bytes] | None = None  # (msn, part 0 fetched by media sequence number)
        verified = False
        text = client.get(url).text
        t0 = time.monotonic()
        while True:
            lines = [line for line in text.splitlines() if line.strip()]
            assert lines[-1].startswith("#EXT-X-PRELOAD-HINT:TYPE=PART,URI="), f"reload {reloads} ends without the segment being written:\n{text}"
            segments = len(re.findall(r"^#EXTINF:", text, re.M))
            if mode is None:
                # ALWAYS: a discontinuity before every segment listed (and the one being written).
                assert text.count("#EXT-X-DISCONTINUITY\n") >= segments, text
            else:
                assert "#EXT-X-DISCONTINUITY\n" not in text, text
            for msn, dsn in discontinuity_sequence_numbers(text).items():
                assert dsn_of.setdefault(msn, dsn) == dsn, f"msn {msn}: discontinuity sequence {dsn_of[msn]} before, {dsn} in reload {reloads}:\n{text}"
            details = hlsjs_parse(text)
            if previous is not None:
                error = hlsjs_merge_error(previous, details)
                assert error is None, f"hls.js would report {error} on reload {reloads}:\n{text}"
            previous = details
            tail = tail_after_last_segment(text)
            if "MediaSequenceNumber=" in lines[-1]:
                # The last fragment stored, the next one not started: nothing of it is known
                # but its place in the session, which the hint names.
                between += 1
                hint = re.search(r'URI="([^"]+)"', lines[-1]).group(1)
                assert not PART.search(tail) and "&Part=0&" in hint, text
                assert int(re.search(r"MediaSequenceNumber=(\d+)", hint).group(1)) == details.end_sn + 1, text
                if hinted is None:
                    r = client.get(base + hint)
                    assert r.status_code == 200 and len(r.content) > 100, r.text
                    hinted = (details.end_sn + 1, r.content)
            elif hinted is not None and not verified:
                # Once the fragment is known, its part 0 by fragment number is the same part.
                numbers = fragment_numbers_by_msn(text)
                if hinted[0] in numbers:
                    part0 = client.get(base + f"getMP4MediaFragment.mp4?FragmentNumber={numbers[hinted[0]]}&Part=0&SessionToken={token}&TrackNumber=1")
                    assert part0.status_code == 200 and part0.content == hinted[1]
                    verified = True
            if time.monotonic() - t0 > 10 and (verified or not hinted) or time.monotonic() - t0 > 30:
                break
            # hls.js (lowLatencyMode): the part after the last one listed.
            msn = details.end_sn + 1
            part = len(PART.findall(tail))
            text = client.get(url + f"&_HLS_msn={msn}&_HLS_part={part}").text
            reloads += 1
        assert reloads >= 20, f"only {reloads} blocking reloads in {time.monotonic() - t0:.1f} s"
        # A between-fragments playlist lasts milliseconds with a live producer; it is caught
        # here when it happens and made to happen in test_ll_hls_between_fragments_hint.
        assert verified or not between, "a hint by media sequence number was fetched but never matched"
        # A media sequence number beyond the next one is not part of the session.
        far = f"getMP4MediaFragment.mp4?MediaSequenceNumber={details.end_sn + 100}&Part=0&SessionToken={token}&TrackNumber=1"
        assert client.get(base + far).status_code == 404
    finally:
        agent.stop(timeout=15)


@pytest.mark.parametrize("mode", [None, "ON_DISCONTINUITY"], ids=["default-ALWAYS", "ON_DISCONTINUITY"])
def test_ll_hls_between_fragments_hint(server, tmp_path, mode):
    """Between two fragments (here: the producer stops after its last whole fragment and comes
    back), the LIVE LL-HLS playlist still ends with the segment to come: EXT-X-DISCONTINUITY
    under ALWAYS, then a preload hint naming it by media sequence number. hls.js otherwise
    takes a playlist ending with a complete segment as a duplicate hint (the cause of its
    "discontinuity sequence mismatch"). The hinted part is served once the producer is back
    and is part 0 of the fragment that took that number."""
    stream = unique_name("ll-between")
    agent = Agent(tmp_path / "spool", tmp_path, "ll-between-agent")
    try:
        agent.start(server.endpoint, stream, ca=server.ca_file, args=ARGS, env=agent_env(server))
        agent.wait_status(lambda s: s["fragments"]["acked"] >= 3, 40, "three acknowledged fragments")
        url, client = media_playlist_url(server, stream, **({"DiscontinuityMode": mode} if mode else {}))
        base = url.rsplit("/", 1)[0] + "/"
        token = re.search(r"SessionToken=([^&]+)", url).group(1)
        assert agent.stop(timeout=15) == 0
        deadline = time.monotonic() + 15
        while True:
            text = client.get(url).text
            lines = [line for line in text.splitlines() if line.strip()]
            if "MediaSequenceNumber=" in lines[-1]:
                break
            assert time.monotonic() < deadline, f"no between-fragments playlist after the producer stopped:\n{text}"
            time.sleep(0.1)
        details = hlsjs_parse(text)
        assert lines[-1].startswith("#EXT-X-PRELOAD-HINT:TYPE=PART,URI="), text
        assert not PART.search(tail_after_last_segment(text)), text
        assert (lines[-2] == "#EXT-X-DISCONTINUITY") == (mode is None), text
        hint = re.search(r'URI="([^"]+)"', lines[-1]).group(1)
        msn = int(re.search(r"MediaSequenceNumber=(\d+)", hint).group(1))
        assert msn == details.end_sn + 1 and "&Part=0&" in hint, text
        far = f"getMP4MediaFragment.mp4?MediaSequenceNumber={msn + 1}&Part=0&SessionToken={token}&TrackNumber=1"
        assert client.get(base + far).status_code == 404
        # The producer comes back: the hint is answered with the new fragment's first part.
        agent.start(server.endpoint, stream, ca=server.ca_file, args=ARGS, env=agent_env(server))
        hinted = client.get(base + hint, timeout=40)
        assert hinted.status_code == 200 and len(hinted.content) > 100, hinted.text
        deadline = time.monotonic() + 20
        while True:
            later = client.get(url).text
            numbers = fragment_numbers_by_msn(later)
            if msn in numbers:
                break
            assert time.monotonic() < deadline, later
            time.sleep(0.1)
        error = hlsjs_merge_error(details, hlsjs_parse(later))
        assert error is None, f"hls.js would report {error}:\n{text}\n---\n{later}"
        part0 = client.get(base + f"getMP4MediaFragment.mp4?FragmentNumber={numbers[msn]}&Part=0&SessionToken={token}&TrackNumber=1")
        assert part0.status_code == 200 and part0.content == hinted.content
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
