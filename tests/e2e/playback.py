"""Helpers for the HLS / DASH / GetClip tests: fetching session URLs, a small
HLS playlist reader (independent of the server's m3u8 writer), ffprobe/ffmpeg
runners, and MKV rewriting for streams without codec private data."""

from __future__ import annotations

import datetime
import json
import subprocess
import urllib.parse
from dataclasses import dataclass, field

import requests

import ebml


def fetch(server, url: str, **kw) -> requests.Response:
    """GET a playback URL (session token in the URL, no SigV4)."""
    return requests.get(url, verify=(False if server.plain else server.ca_file), timeout=30, **kw)


def token_of(url: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["SessionToken"][0]


def replace_token(url: str, token: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, token if k == "SessionToken" else v) for k, v in urllib.parse.parse_qsl(parts.query)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def tamper(token: str, index: int | None = None) -> str:
    """The token with one character changed (in the middle by default)."""
    i = len(token) // 2 if index is None else index
    c = "A" if token[i] != "A" else "B"
    return token[:i] + c + token[i + 1 :]


@dataclass
class HlsSegment:
    uri: str
    duration: float
    discontinuity: bool = False
    program_date_time: datetime.datetime | None = None
    map_uri: str | None = None


@dataclass
class MediaPlaylist:
    text: str
    version: int | None = None
    target_duration: int | None = None
    media_sequence: int = 0
    discontinuity_sequence: int = 0
    endlist: bool = False
    segments: list[HlsSegment] = field(default_factory=list)


def _attr(rest: str, name: str) -> str | None:
    for part in rest.split(","):
        if part.startswith(name + "="):
            return part.split("=", 1)[1].strip('"')
    return None


def parse_media_playlist(text: str) -> MediaPlaylist:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines and lines[0] == "#EXTM3U", text[:200]
    pl = MediaPlaylist(text)
    pending: dict = {}
    current_map = None
    for line in lines[1:]:
        if line.startswith("#EXT-X-VERSION:"):
            pl.version = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            pl.target_duration = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            pl.media_sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            pl.discontinuity_sequence = int(line.split(":", 1)[1])
        elif line == "#EXT-X-ENDLIST":
            pl.endlist = True
        elif line == "#EXT-X-DISCONTINUITY":
            pending["discontinuity"] = True
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pending["program_date_time"] = datetime.datetime.fromisoformat(
                line.split(":", 1)[1].replace("Z", "+00:00")
            )
        elif line.startswith("#EXT-X-MAP:"):
            current_map = _attr(line.split(":", 1)[1], "URI")
        elif line.startswith("#EXTINF:"):
            pending["duration"] = float(line.split(":", 1)[1].split(",")[0])
        elif not line.startswith("#"):
            pl.segments.append(HlsSegment(uri=line, map_uri=current_map, **pending))
            pending = {}
    return pl


def master_variant(text: str) -> tuple[dict, str]:
    """The (attributes, URI) of the only variant of a master playlist."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0] == "#EXTM3U", text
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            rest = line.split(":", 1)[1]
            attrs = {}
            # CODECS is quoted and may contain commas.
            key, buf, quoted = "", "", False
            for ch in rest + ",":
                if ch == '"':
                    quoted = not quoted
                    continue
                if ch == "=" and not quoted and not key:
                    key, buf = buf, ""
                elif ch == "," and not quoted:
                    attrs[key] = buf
                    key, buf = "", ""
                else:
                    buf += ch
            return attrs, lines[i + 1]
    raise AssertionError(f"no EXT-X-STREAM-INF in {text}")


def ffprobe(url_or_path: str, *, timeout: float = 120) -> dict:
    """Decode every video frame with ffprobe; returns frame count, codec, size,
    the container duration and start time, and stderr."""
    res = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames:format=duration,start_time,format_name",
            "-of",
            "json",
            url_or_path,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = {"returncode": res.returncode, "stderr": res.stderr}
    try:
        data = json.loads(res.stdout or "{}")
    except ValueError:
        data = {}
    streams = data.get("streams") or [{}]
    out.update(streams[0])
    fmt = data.get("format") or {}
    out["duration"] = float(fmt["duration"]) if "duration" in fmt else None
    out["start_time"] = float(fmt["start_time"]) if "start_time" in fmt else None
    out["format_name"] = fmt.get("format_name")
    if "nb_read_frames" in out:
        out["nb_read_frames"] = int(out["nb_read_frames"])
    return out


def frame_times(url_or_path: str, *, timeout: float = 120) -> list[float]:
    """Presentation times (seconds) of every video frame."""
    res = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=pts_time",
            "-of",
            "csv=p=0",
            url_or_path,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert res.returncode == 0, res.stderr
    return [float(line.split(",")[0]) for line in res.stdout.split() if line.strip() and line != "N/A"]


def ffmpeg_decode(url_or_path: str, *, timeout: float = 120) -> subprocess.CompletedProcess:
    """Decode everything with ``ffmpeg -v error ... -f null -``; errors land in stderr."""
    return subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", url_or_path, "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def without_codec_private(kvs: ebml.KvsMkv) -> ebml.KvsMkv:
    """The same upload with the CodecPrivate element removed from every TrackEntry."""
    segs = ebml.parse_stream(kvs.header + kvs.fragments[0].data, strict=False)
    tracks = segs[0].of(ebml.TRACKS)[0]
    entries = b""
    for entry in tracks.children():
        if entry.id != ebml.TRACK_ENTRY:
            entries += entry.raw
            continue
        kept = b"".join(c.raw for c in entry.children() if c.id != ebml.CODEC_PRIVATE)
        entries += ebml.element(ebml.TRACK_ENTRY, kept)
    header = kvs.header[: tracks.start] + ebml.element(ebml.TRACKS, entries, 4)
    assert kvs.header[tracks.end :] == b"", "Tracks is the last element of the header"
    return ebml.KvsMkv(header, kvs.fragments, kvs.trailer, kvs.timecode_base)


# ------------------------------------------------------------------ hls.js playlist model
@dataclass
class HlsJsFrag:
    """A fragment as hls.js 1.7 sees it after parsing a media playlist."""

    sn: int
    cc: int
    duration: float
    uri: str | None


@dataclass
class HlsJsDetails:
    start_sn: int
    end_sn: int
    start_cc: int
    fragments: list[HlsJsFrag]
    hint: HlsJsFrag | None  # LevelDetails.fragmentHint


def hlsjs_parse(text: str) -> HlsJsDetails:
    """A port of what hls.js 1.7 (src/loader/m3u8-parser.ts, parseLevelPlaylist) does with
    media sequence numbers, discontinuities and parts, including its quirk: the `frag`
    variable is only replaced when a line follows a segment's URI, so a playlist with parts
    that ends with a complete segment makes that segment its own fragmentHint."""
    counter = 0
    current_sn = 0
    start_cc = 0
    fragments: list[HlsJsFrag] = []
    frag = HlsJsFrag(sn=0, cc=0, duration=0.0, uri=None)
    duration_set = False
    prev_frag: HlsJsFrag | None = None
    create_next = False
    has_parts = False
    for line in (l.strip() for l in text.splitlines()):
        if not line:
            continue
        if create_next:
            create_next = False
            frag = HlsJsFrag(sn=current_sn, cc=counter, duration=0.0, uri=None)
            duration_set = False
        if line.startswith("#EXTINF:"):
            frag.duration = float(line[8:].split(",")[0])
            duration_set = True
        elif not line.startswith("#"):
            if duration_set:
                frag.sn, frag.cc, frag.uri = current_sn, counter, line
                fragments.append(frag)
                prev_frag = frag
                current_sn += 1
                create_next = True
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            current_sn = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            start_cc = counter = int(line.split(":", 1)[1])
            for f in fragments:
                f.cc = counter
        elif line == "#EXT-X-DISCONTINUITY":
            counter += 1
        elif line.startswith("#EXT-X-PART:"):
            has_parts = True
            frag.duration += float(_attr(line.split(":", 1)[1], "DURATION") or 0)
    hint = None
    if prev_frag is not None and prev_frag.uri is None:
        fragments.pop()
        hint = prev_frag if has_parts else None
    elif has_parts:
        frag.cc = counter
        hint = frag
    start_sn = fragments[0].sn if fragments else 0
    end_sn = fragments[-1].sn if fragments else 0
    return HlsJsDetails(start_sn, end_sn, start_cc, fragments, hint)


def hlsjs_merge_error(old: HlsJsDetails, new: HlsJsDetails) -> str | None:
    """hls.js 1.7's check when a live playlist is reloaded (src/utils/level-helper.ts,
    mergeDetails -> mapFragmentIntersection): the error it raises, or None. The hint of the
    old playlist takes part when it has a duration (parts); the new one always does."""
    start = max(old.start_sn, new.start_sn) - new.start_sn
    end = (1 if old.hint else 0) + min(old.end_sn, new.end_sn) - new.start_sn
    delta = new.start_sn - old.start_sn
    new_frags = new.fragments + ([new.hint] if new.hint else [])
    old_frags = old.fragments + ([old.hint] if old.hint and old.hint.duration else [])
    for i in range(start, end + 1):
        if not (0 <= delta + i < len(old_frags)) or not (0 <= i < len(new_frags)):
            continue
        o, n = old_frags[delta + i], new_frags[i]
        if o.uri and n.uri and o.uri.split("?")[0] != n.uri.split("?")[0]:
            return f"media sequence mismatch {n.sn}"
        if o.cc != n.cc:
            return f"discontinuity sequence mismatch ({o.cc}!={n.cc}) at sn {n.sn}"
    return None


def discontinuity_sequence_numbers(text: str) -> dict[int, int]:
    """RFC 8216bis: each segment's Discontinuity Sequence Number (EXT-X-DISCONTINUITY-SEQUENCE
    plus the EXT-X-DISCONTINUITY tags before it), by media sequence number, for the complete
    segments and the segment being written (when its parts or preload hint are listed)."""
    msn, dsn = 0, 0
    out: dict[int, int] = {}
    pending = False
    for line in (l.strip() for l in text.splitlines()):
        if not line:
            continue
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE:"):
            dsn = int(line.split(":", 1)[1])
        elif line == "#EXT-X-DISCONTINUITY":
            dsn += 1
        elif line.startswith(("#EXT-X-PART:", "#EXT-X-PRELOAD-HINT:")):
            pending = True
        elif not line.startswith("#"):
            out[msn] = dsn
            msn += 1
            pending = False
    if pending:
        out[msn] = dsn
    return out
