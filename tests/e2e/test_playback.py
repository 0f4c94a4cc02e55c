"""HLS / DASH streaming sessions and GetClip: boto3 creates the sessions, the
real media from GStreamer is uploaded with the kvssink-like producer, and the
results are played by ffprobe/ffmpeg (HLS fMP4 and MPEG-TS, DASH, MP4 clips)."""

from __future__ import annotations

import datetime
import tempfile
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin

import pytest
from botocore.exceptions import ClientError

import ebml
import media
from conftest import create_stream, unique_name, wait_fragments, whole_second_ms
from playback import (
    fetch,
    ffmpeg_decode,
    ffprobe,
    frame_times,
    master_variant,
    parse_media_playlist,
    replace_token,
    tamper,
    token_of,
    without_codec_private,
)

FPS = 30
UTC = datetime.timezone.utc


def ts(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=UTC)


def producer_range(start_ms: int, end_ms: int) -> dict:
    return {"FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": {"StartTimestamp": ts(start_ms), "EndTimestamp": ts(end_ms)}}


def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


@dataclass
class Recorded:
    stream: str
    arn: str
    kvs: ebml.KvsMkv
    fragments: list[dict]  # ListFragments, in upload order

    @property
    def start_ms(self) -> int:
        return self.kvs.fragments[0].timecode

    @property
    def end_ms(self) -> int:
        return self.kvs.fragments[-1].timecode


def record(server, clip: bytes, name: str, offset_s: int = 300) -> Recorded:
    info = create_stream(server, name)
    kvs = ebml.to_kvs_mkv(clip, timecode_base=whole_second_ms(offset_s=offset_s))
    res = server.put_media(name, kvs.parts(), timecode_type="ABSOLUTE", wait_persisted_timecode=kvs.fragments[-1].timecode)
    assert len(res.of_type("PERSISTED")) == len(kvs.fragments), res.acks
    frags = wait_fragments(server, name, len(kvs.fragments))
    assert len(frags) == len(kvs.fragments)
    return Recorded(name, info["StreamARN"], kvs, frags)


@pytest.fixture(scope="module")
def recorded(server, clip6) -> Recorded:
    """6 s of 320x240 30 fps H.264 in 6 one-second fragments, recorded 5 min ago."""
    return record(server, clip6, unique_name("pb-vod"))


def hls_url(server, rec: Recorded, *, endpoint=None, **kw) -> str:
    kw.setdefault("PlaybackMode", "ON_DEMAND")
    if kw["PlaybackMode"] != "LIVE":
        kw.setdefault("HLSFragmentSelector", producer_range(rec.start_ms, rec.end_ms + 500))
    kw.setdefault("StreamName", rec.stream)
    return server.archived(endpoint=endpoint).get_hls_streaming_session_url(**kw)["HLSStreamingSessionURL"]


def media_playlist_url(server, master_url: str):
    master = fetch(server, master_url)
    assert master.status_code == 200, master.text
    attrs, uri = master_variant(master.text)
    return attrs, urljoin(master_url, uri)


# ------------------------------------------------------------------ HLS fMP4
def test_hls_on_demand_fmp4_plays_with_producer_timestamps(server, recorded):
    url = hls_url(server, recorded, DisplayFragmentTimestamp="ALWAYS")
    assert url.startswith(f"{server.data_endpoint}/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken="), url

    master = fetch(server, url)
    assert master.status_code == 200
    assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert master.headers["access-control-allow-origin"] == "*"
    assert "no-cache" in master.headers["cache-control"]
    attrs, media_url = media_playlist_url(server, url)
    assert attrs["CODECS"].startswith("avc1."), attrs
    assert attrs["RESOLUTION"] == "320x240", attrs
    assert int(attrs["BANDWIDTH"]) > 0

    resp = fetch(server, media_url)
    assert resp.status_code == 200
    pl = parse_media_playlist(resp.text)
    assert pl.endlist, "ON_DEMAND playlists end"
    assert pl.media_sequence == 0
    assert len(pl.segments) == 6
    assert all(s.uri.startswith("getMP4MediaFragment.mp4?FragmentNumber=") for s in pl.segments)
    assert pl.segments[0].map_uri and pl.segments[0].map_uri.startswith("getMP4InitFragment.mp4?")
    assert [s.uri.split("FragmentNumber=")[1].split("&")[0] for s in pl.segments] == [f["FragmentNumber"] for f in recorded.fragments]
    # PRODUCER_TIMESTAMP defaults to DiscontinuityMode NEVER.
    assert not any(s.discontinuity for s in pl.segments)
    assert sum(s.duration for s in pl.segments) == pytest.approx(6.0, abs=0.01)
    # EXT-X-PROGRAM-DATE-TIME: the producer timestamps ListFragments reports.
    pdt_ms = [round(s.program_date_time.timestamp() * 1000) for s in pl.segments]
    assert pdt_ms == [round(f["ProducerTimestamp"].timestamp() * 1000) for f in recorded.fragments]
    assert pdt_ms == [f.timecode for f in recorded.kvs.fragments]

    # Segments: fMP4 init (ftyp+moov) and media (moof+mdat), immutable, CORS.
    init = fetch(server, urljoin(media_url, pl.segments[0].map_uri))
    assert init.status_code == 200 and init.headers["content-type"] == "video/mp4"
    assert init.content[4:8] == b"ftyp"
    seg = fetch(server, urljoin(media_url, pl.segments[2].uri))
    assert seg.status_code == 200 and seg.headers["content-type"] == "video/mp4"
    assert seg.content[4:8] == b"moof"
    assert "immutable" in seg.headers["cache-control"]
    assert seg.headers["access-control-allow-origin"] == "*"

    probe = ffprobe(url)
    assert probe["returncode"] == 0, probe["stderr"]
    assert probe["codec_name"] == "h264" and (probe["width"], probe["height"]) == (320, 240)
    assert probe["nb_read_frames"] == 6 * FPS, probe
    assert probe["duration"] == pytest.approx(6.0, abs=0.05), probe
    decode = ffmpeg_decode(url)
    assert decode.returncode == 0 and decode.stderr.strip() == "", decode.stderr
    # Frames are evenly spaced across segment boundaries (one timeline per session).
    times = frame_times(url)
    assert len(times) == 6 * FPS
    steps = [b - a for a, b in zip(times, times[1:])]
    assert min(steps) > 0.025 and max(steps) < 0.045, steps


# -------------------------------------------------------------- HLS MPEG-TS
def test_hls_on_demand_mpeg_ts_plays(server, recorded):
    url = hls_url(server, recorded, ContainerFormat="MPEG_TS", DiscontinuityMode="ON_DISCONTINUITY")
    _, media_url = media_playlist_url(server, url)
    pl = parse_media_playlist(fetch(server, media_url).text)
    assert pl.endlist and len(pl.segments) == 6
    assert all(s.uri.startswith("getTSFragment.ts?FragmentNumber=") for s in pl.segments)
    assert all(s.map_uri is None for s in pl.segments), "no EXT-X-MAP for MPEG-TS"
    assert not any(s.discontinuity for s in pl.segments), "the recording is continuous"
    assert not any(s.program_date_time for s in pl.segments), "DisplayFragmentTimestamp defaults to NEVER"
    seg = fetch(server, urljoin(media_url, pl.segments[0].uri))
    assert seg.status_code == 200 and seg.headers["content-type"] == "video/mp2t"
    assert len(seg.content) % 188 == 0 and seg.content[0] == 0x47
    # An fMP4 resource is not part of an MPEG-TS session.
    wrong = fetch(server, urljoin(media_url, pl.segments[0].uri.replace("getTSFragment.ts", "getMP4MediaFragment.mp4")))
    assert wrong.status_code == 404

    probe = ffprobe(url)
    assert probe["returncode"] == 0, probe["stderr"]
    assert probe["nb_read_frames"] == 6 * FPS, probe
    assert probe["duration"] == pytest.approx(6.0, abs=0.05), probe
    decode = ffmpeg_decode(url)
    assert decode.returncode == 0 and decode.stderr.strip() == "", decode.stderr


def test_server_timestamps_default_to_discontinuity_always_and_arn_works(server, recorded):
    frags = recorded.fragments
    # SERVER_TIMESTAMP ranges must end in the past.
    wait = (frags[-1]["ServerTimestamp"] + datetime.timedelta(seconds=1.1) - datetime.datetime.now(UTC)).total_seconds()
    time.sleep(max(0.0, wait))
    selector = {
        "FragmentSelectorType": "SERVER_TIMESTAMP",
        "TimestampRange": {
            "StartTimestamp": frags[0]["ServerTimestamp"] - datetime.timedelta(seconds=1),
            "EndTimestamp": frags[-1]["ServerTimestamp"] + datetime.timedelta(seconds=1),
        },
    }
    arch = server.archived()
    url = arch.get_hls_streaming_session_url(
        StreamARN=recorded.arn, PlaybackMode="ON_DEMAND", HLSFragmentSelector=selector, DisplayFragmentTimestamp="ALWAYS"
    )["HLSStreamingSessionURL"]
    _, media_url = media_playlist_url(server, url)
    pl = parse_media_playlist(fetch(server, media_url).text)
    assert len(pl.segments) == 6
    assert [s.discontinuity for s in pl.segments] == [False] + [True] * 5
    # With SERVER_TIMESTAMP the program date times are the server timestamps.
    assert [round(s.program_date_time.timestamp() * 1000) for s in pl.segments] == [
        round(f["ServerTimestamp"].timestamp() * 1000) for f in frags
    ]
    probe = ffprobe(url)
    assert probe["nb_read_frames"] == 6 * FPS, probe


def test_producer_clock_going_back_keeps_the_timeline_monotonic(server, stream_name, clip4):
    """Two uploads, the second with the producer clock set back an hour, selected by
    server timestamp: the session's media timeline is stitched, never going back."""
    create_stream(server, stream_name)
    t_before = datetime.datetime.now(UTC) - datetime.timedelta(seconds=2)
    for base in (whole_second_ms(offset_s=60), whole_second_ms(offset_s=3600)):
        kvs = ebml.to_kvs_mkv(clip4, timecode_base=base)
        res = server.put_media(stream_name, kvs.parts(), timecode_type="ABSOLUTE", wait_persisted_timecode=kvs.fragments[-1].timecode)
        assert len(res.of_type("PERSISTED")) == 4, res.acks
    wait_fragments(server, stream_name, 8)
    time.sleep(1.1)  # boto3 sends whole seconds: the end must cover the last arrival
    selector = {"FragmentSelectorType": "SERVER_TIMESTAMP", "TimestampRange": {"StartTimestamp": t_before, "EndTimestamp": datetime.datetime.now(UTC)}}
    arch = server.archived()
    for container in ("FRAGMENTED_MP4", "MPEG_TS"):
        url = arch.get_hls_streaming_session_url(
            StreamName=stream_name, PlaybackMode="ON_DEMAND", HLSFragmentSelector=selector, ContainerFormat=container, DiscontinuityMode="NEVER"
        )["HLSStreamingSessionURL"]
        times = frame_times(url)
        assert len(times) == 8 * FPS, container
        steps = [b - a for a, b in zip(times, times[1:])]
        assert min(steps) > 0.025 and max(steps) < 0.045, (container, min(steps), max(steps))
    dash = arch.get_dash_streaming_session_url(StreamName=stream_name, PlaybackMode="ON_DEMAND", DASHFragmentSelector=selector)["DASHStreamingSessionURL"]
    assert ffprobe(dash)["nb_read_frames"] == 8 * FPS


def test_session_url_uses_the_endpoint_the_client_called(server, recorded):
    url = hls_url(server, recorded, endpoint=server.endpoint, MaxMediaPlaylistFragmentResults=2)
    assert url.startswith(f"{server.endpoint}/hls/v1/"), url
    _, media_url = media_playlist_url(server, url)
    pl = parse_media_playlist(fetch(server, media_url).text)
    assert len(pl.segments) == 2, "MaxMediaPlaylistFragmentResults: the oldest fragments"
    assert pl.segments[0].uri.split("FragmentNumber=")[1].split("&")[0] == recorded.fragments[0]["FragmentNumber"]


# --------------------------------------------------------------------- DASH
def test_dash_on_demand_plays(server, recorded):
    arch = server.archived()
    url = arch.get_dash_streaming_session_url(
        StreamName=recorded.stream,
        PlaybackMode="ON_DEMAND",
        DASHFragmentSelector=producer_range(recorded.start_ms, recorded.end_ms + 500),
        DisplayFragmentTimestamp="ALWAYS",
        DisplayFragmentNumber="ALWAYS",
    )["DASHStreamingSessionURL"]
    assert url.startswith(f"{server.data_endpoint}/dash/v1/getDASHManifest.mpd?SessionToken="), url
    mpd = fetch(server, url)
    assert mpd.status_code == 200 and mpd.headers["content-type"] == "application/dash+xml"
    assert mpd.headers["access-control-allow-origin"] == "*"
    assert 'type="static"' in mpd.text
    assert mpd.text.count("<S ") == 6
    for f in recorded.fragments:
        assert f'kvs:fn="{f["FragmentNumber"]}"' in mpd.text
        ms = round(f["ProducerTimestamp"].timestamp() * 1000)
        assert f'kvs:ts="{ms // 1000}.{ms % 1000:03d}"' in mpd.text
    probe = ffprobe(url)
    assert probe["returncode"] == 0, probe["stderr"]
    assert probe["nb_read_frames"] == 6 * FPS, probe
    decode = ffmpeg_decode(url)
    assert decode.returncode == 0 and decode.stderr.strip() == "", decode.stderr
    # HLS resources are not part of a DASH session.
    token = token_of(url)
    base = f"{server.data_endpoint}/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken={token}"
    assert fetch(server, base).status_code == 404


# ------------------------------------------------------------------ GetClip
def test_get_clip_mp4(server, recorded):
    frags = recorded.fragments
    arch = server.archived()
    resp = arch.get_clip(
        StreamName=recorded.stream,
        ClipFragmentSelector={
            "FragmentSelectorType": "PRODUCER_TIMESTAMP",
            # Fragments 1..3 start in the range (the end is inclusive).
            "TimestampRange": {"StartTimestamp": frags[1]["ProducerTimestamp"], "EndTimestamp": frags[3]["ProducerTimestamp"]},
        },
    )
    assert resp["ContentType"] == "video/mp4"
    data = resp["Payload"].read()
    assert data[4:8] == b"ftyp"
    with tempfile.NamedTemporaryFile(suffix=".mp4") as f:
        f.write(data)
        f.flush()
        probe = ffprobe(f.name)
        assert probe["returncode"] == 0, probe["stderr"]
        assert probe["nb_read_frames"] == 3 * FPS, probe
        assert probe["duration"] == pytest.approx(3.0, abs=0.05), probe
        decode = ffmpeg_decode(f.name)
        assert decode.returncode == 0 and decode.stderr.strip() == "", decode.stderr


def test_get_clip_errors(server, recorded, stream_name):
    arch = server.archived()
    with pytest.raises(arch.exceptions.ResourceNotFoundException):
        arch.get_clip(StreamName=recorded.stream, ClipFragmentSelector=producer_range(1_000_000_000_000, 1_000_000_060_000))
    with pytest.raises(arch.exceptions.ResourceNotFoundException):
        arch.get_clip(StreamName="no-such-stream-pb", ClipFragmentSelector=producer_range(recorded.start_ms, recorded.end_ms))
    with pytest.raises(ClientError) as e:
        arch.get_clip(StreamName=recorded.stream, ClipFragmentSelector=producer_range(recorded.end_ms, recorded.start_ms))
    assert error_code(e.value) == "InvalidArgumentException"
    loose = server.archived(parameter_validation=False)
    with pytest.raises(ClientError) as e:
        loose.get_clip(StreamName=recorded.stream)
    assert error_code(e.value) == "InvalidArgumentException"
    assert "Value null at 'clipFragmentSelector' failed to satisfy constraint: Member must not be null" in str(e.value)
    create_stream(server, stream_name, retention_hours=0)
    with pytest.raises(ClientError) as e:
        arch.get_clip(StreamName=stream_name, ClipFragmentSelector=producer_range(recorded.start_ms, recorded.end_ms))
    assert error_code(e.value) == "NoDataRetentionException"


# --------------------------------------------------------------------- LIVE
def test_live_playlist_slides_while_uploading(server, stream_name, media_dir):
    create_stream(server, stream_name)
    clip = media.clip(media_dir, seconds=12)
    kvs = ebml.to_kvs_mkv(clip, timecode_base=whole_second_ms())
    parts = kvs.parts()
    session = server.session(stream_name, timecode_type="ABSOLUTE")
    session.start()
    assert not session.refused(), session.result()

    def send():
        for p in parts:
            session.send_body(p)
            time.sleep(1.0)
        session.end_body()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        assert session.wait_ack("PERSISTED", kvs.fragments[2].timecode, 15)
        arch = server.archived()
        url = arch.get_hls_streaming_session_url(
            StreamName=stream_name, PlaybackMode="LIVE", MaxMediaPlaylistFragmentResults=3
        )["HLSStreamingSessionURL"]
        dash_url = arch.get_dash_streaming_session_url(StreamName=stream_name, PlaybackMode="LIVE")["DASHStreamingSessionURL"]
        _, media_url = media_playlist_url(server, url)
        seen: dict[str, int] = {}  # segment URI -> media sequence number
        sequences = []
        for _ in range(6):
            pl = parse_media_playlist(fetch(server, media_url).text)
            assert not pl.endlist, "LIVE playlists never end"
            assert 1 <= len(pl.segments) <= 3
            sequences.append(pl.media_sequence)
            for i, s in enumerate(pl.segments):
                msn = pl.media_sequence + i
                assert seen.setdefault(s.uri, msn) == msn, "a segment keeps its media sequence number"
            last = fetch(server, urljoin(media_url, pl.segments[-1].uri))
            assert last.status_code == 200 and last.content[4:8] == b"moof"
            time.sleep(1.0)
        assert sequences == sorted(sequences) and sequences[-1] >= sequences[0] + 3, sequences
        assert len(seen) >= 6
        init = fetch(server, urljoin(media_url, pl.segments[0].map_uri))
        assert init.status_code == 200 and init.content[4:8] == b"ftyp"

        mpd = fetch(server, dash_url)
        assert mpd.status_code == 200 and 'type="dynamic"' in mpd.text, mpd.text
        assert 'availabilityStartTime="' in mpd.text
    finally:
        sender.join(20)
        session.wait_complete(10)
        session.close()


def test_live_replay_grows_from_the_start(server, recorded):
    t0 = time.monotonic()
    url = hls_url(
        server,
        recorded,
        PlaybackMode="LIVE_REPLAY",
        HLSFragmentSelector={"FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": {"StartTimestamp": ts(recorded.start_ms)}},
    )
    t_url = time.monotonic()
    _, media_url = media_playlist_url(server, url)
    first = parse_media_playlist(fetch(server, media_url).text)
    assert not first.endlist
    assert len(first.segments) == 1, "one fragment is released per fragment duration"
    assert first.segments[0].uri.split("FragmentNumber=")[1].split("&")[0] == recorded.fragments[0]["FragmentNumber"]
    time.sleep(2.2)
    t1 = time.monotonic()
    later = parse_media_playlist(fetch(server, media_url).text)
    elapsed = time.monotonic() - t0
    # Fragment i (1 s each) is released i seconds after the session started.
    assert int(t1 - t_url) + 1 <= len(later.segments) <= min(5, int(elapsed) + 1), (elapsed, later.text)
    assert later.media_sequence == 0


def test_live_needs_recent_fragments(server, recorded, stream_name):
    create_stream(server, stream_name)
    arch = server.archived()
    with pytest.raises(arch.exceptions.ResourceNotFoundException):
        arch.get_hls_streaming_session_url(StreamName=stream_name, PlaybackMode="LIVE")
    with pytest.raises(arch.exceptions.ResourceNotFoundException):
        arch.get_dash_streaming_session_url(StreamName=stream_name, PlaybackMode="LIVE")


# ---------------------------------------------------------------- bad input
def test_tampered_token_is_refused(server, recorded):
    url = hls_url(server, recorded)
    _, media_url = media_playlist_url(server, url)
    pl = parse_media_playlist(fetch(server, media_url).text)
    seg_url = urljoin(media_url, pl.segments[0].uri)
    token = token_of(url)
    for index in (0, len(token) // 2, len(token) - 1):
        bad = tamper(token, index)
        for target in (url, media_url, seg_url):
            resp = fetch(server, replace_token(target, bad))
            assert resp.status_code == 403, (target, resp.status_code)
            assert resp.headers["x-amzn-ErrorType"].startswith("NotAuthorizedException")
            assert resp.headers["access-control-allow-origin"] == "*"
            assert resp.headers["content-type"] == "application/json"
            assert b"moof" not in resp.content and b"#EXTM3U" not in resp.content
    missing = fetch(server, url.split("?")[0])
    assert missing.status_code == 400
    # A fragment of another stream is not part of the session.
    other = pl.segments[0].uri.replace(recorded.fragments[0]["FragmentNumber"], "91" + "9" * 45)
    assert fetch(server, urljoin(media_url, other)).status_code == 404
    assert fetch(server, f"{server.data_endpoint}/hls/v1/nothing.m3u8?SessionToken={token}").status_code == 404


def test_no_media_in_range(server, recorded):
    arch = server.archived()
    for call, selector_key in (
        (arch.get_hls_streaming_session_url, "HLSFragmentSelector"),
        (arch.get_dash_streaming_session_url, "DASHFragmentSelector"),
    ):
        with pytest.raises(arch.exceptions.ResourceNotFoundException) as e:
            call(StreamName=recorded.stream, PlaybackMode="ON_DEMAND", **{selector_key: producer_range(1_000_000_000_000, 1_000_000_060_000)})
        assert "no fragments" in str(e.value).lower()
    with pytest.raises(arch.exceptions.ResourceNotFoundException):
        arch.get_hls_streaming_session_url(StreamName="no-such-stream-pb", PlaybackMode="LIVE")


def test_stream_without_codec_private_data(server, stream_name, clip4):
    create_stream(server, stream_name)
    kvs = without_codec_private(ebml.to_kvs_mkv(clip4, timecode_base=whole_second_ms(offset_s=60)))
    res = server.put_media(stream_name, kvs.parts(), timecode_type="ABSOLUTE", wait_persisted_timecode=kvs.fragments[-1].timecode)
    assert len(res.of_type("PERSISTED")) == 4, res.acks
    rng = producer_range(kvs.fragments[0].timecode, kvs.fragments[-1].timecode)
    arch = server.archived()
    with pytest.raises(arch.exceptions.MissingCodecPrivateDataException):
        arch.get_hls_streaming_session_url(StreamName=stream_name, PlaybackMode="ON_DEMAND", HLSFragmentSelector=rng)
    with pytest.raises(arch.exceptions.MissingCodecPrivateDataException):
        arch.get_dash_streaming_session_url(StreamName=stream_name, PlaybackMode="ON_DEMAND", DASHFragmentSelector=rng)
    with pytest.raises(arch.exceptions.MissingCodecPrivateDataException):
        arch.get_clip(StreamName=stream_name, ClipFragmentSelector=rng)


def test_retention_zero(server, stream_name):
    create_stream(server, stream_name, retention_hours=0)
    arch = server.archived()
    with pytest.raises(arch.exceptions.NoDataRetentionException):
        arch.get_hls_streaming_session_url(StreamName=stream_name, PlaybackMode="LIVE")


def test_eleventh_session_is_refused(server, clip4):
    rec = record(server, clip4, unique_name("pb-limit"))
    arch = server.archived()
    rng = producer_range(rec.start_ms, rec.end_ms)
    urls = [arch.get_hls_streaming_session_url(StreamName=rec.stream, PlaybackMode="ON_DEMAND", HLSFragmentSelector=rng)["HLSStreamingSessionURL"] for _ in range(10)]
    assert len(set(urls)) == 10
    with pytest.raises(arch.exceptions.ClientLimitExceededException):
        arch.get_hls_streaming_session_url(StreamName=rec.stream, PlaybackMode="ON_DEMAND", HLSFragmentSelector=rng)
    # The ten sessions still work; DASH sessions are counted separately.
    assert fetch(server, urls[0]).status_code == 200
    arch.get_dash_streaming_session_url(StreamName=rec.stream, PlaybackMode="ON_DEMAND", DASHFragmentSelector=rng)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"PlaybackMode": "FAST"}, "Value 'FAST' at 'playbackMode' failed to satisfy constraint: Member must satisfy enum value set: [LIVE, LIVE_REPLAY, ON_DEMAND]"),
        ({"ContainerFormat": "MKV"}, "Value 'MKV' at 'containerFormat' failed to satisfy constraint"),
        ({"DiscontinuityMode": "SOMETIMES"}, "Value 'SOMETIMES' at 'discontinuityMode' failed to satisfy constraint"),
        ({"DisplayFragmentTimestamp": "YES"}, "Value 'YES' at 'displayFragmentTimestamp' failed to satisfy constraint"),
        ({"HLSFragmentSelector": {"FragmentSelectorType": "CLOCK"}}, "Value 'CLOCK' at 'hLSFragmentSelector.fragmentSelectorType' failed to satisfy constraint"),
        ({"Expires": 299}, "Value '299' at 'expires' failed to satisfy constraint: Member must have value greater than or equal to 300"),
        ({"Expires": 43201}, "Value '43201' at 'expires' failed to satisfy constraint: Member must have value less than or equal to 43200"),
        ({"MaxMediaPlaylistFragmentResults": 0}, "at 'maxMediaPlaylistFragmentResults' failed to satisfy constraint"),
        ({"MaxMediaPlaylistFragmentResults": 5001}, "at 'maxMediaPlaylistFragmentResults' failed to satisfy constraint"),
        ({"PlaybackMode": "ON_DEMAND"}, "HLSFragmentSelector"),
        ({"PlaybackMode": "LIVE", "HLSFragmentSelector": {"FragmentSelectorType": "SERVER_TIMESTAMP", "TimestampRange": {"StartTimestamp": ts(1_700_000_000_000)}}}, "LIVE"),
        ({"PlaybackMode": "ON_DEMAND", "HLSFragmentSelector": {"FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": {"StartTimestamp": ts(1_700_000_000_000)}}}, "EndTimestamp"),
        ({"PlaybackMode": "ON_DEMAND", "HLSFragmentSelector": producer_range(1_700_000_000_000, 1_700_100_000_000)}, "24 hours"),
    ],
)
def test_invalid_arguments(server, recorded, kwargs, message):
    arch = server.archived(parameter_validation=False)
    with pytest.raises(ClientError) as e:
        arch.get_hls_streaming_session_url(StreamName=recorded.stream, **kwargs)
    assert error_code(e.value) == "InvalidArgumentException"
    assert message in e.value.response["Error"]["Message"], e.value.response["Error"]["Message"]


def test_dash_invalid_arguments(server, recorded):
    arch = server.archived(parameter_validation=False)
    with pytest.raises(ClientError) as e:
        arch.get_dash_streaming_session_url(StreamName=recorded.stream, DisplayFragmentNumber="SOMETIMES", MaxManifestFragmentResults=0)
    msg = e.value.response["Error"]["Message"]
    assert msg.startswith("2 validation errors detected:"), msg
    assert "'displayFragmentNumber'" in msg and "'maxManifestFragmentResults'" in msg
