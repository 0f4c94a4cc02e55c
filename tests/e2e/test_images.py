"""GetImages: frames of stored H.264 fragments decoded by the server (GStreamer) and
returned as JPEG/PNG, checked with boto3 and the AWS CLI against the source clip decoded
independently by ffmpeg."""

from __future__ import annotations

import base64
import datetime
import struct
import subprocess

import pytest

import ebml
import media
from conftest import create_stream, unique_name, wait_fragments, whole_second_ms

W, H = 320, 240  # media.clip's picture size
SECONDS = 4  # fragments of the uploaded clip (one key frame per second)


def ts(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)


def ms_of(t: datetime.datetime) -> int:
    return round(t.timestamp() * 1000)


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's SOFn marker."""
    assert data[:2] == b"\xff\xd8", "not a JPEG (no SOI)"
    assert data[-2:] == b"\xff\xd9", "JPEG without EOI"
    pos = 2
    while pos + 4 <= len(data):
        assert data[pos] == 0xFF, f"bad JPEG marker at {pos}"
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return w, h
        pos += 2 + length
    raise AssertionError("JPEG without SOF marker")


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    assert data[-8:-4] == b"IEND", "PNG without IEND"
    return w, h


def ffmpeg_gray(data: bytes, w: int, h: int) -> bytes:
    """Decode an image file (from bytes) with ffmpeg into 8-bit luma."""
    res = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"],
        input=data,
        capture_output=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    assert len(res.stdout) == w * h, (len(res.stdout), w, h)
    return res.stdout


def sad(a: bytes, b: bytes) -> int:
    return sum(abs(x - y) for x, y in zip(a, b))


class Uploaded:
    def __init__(self, stream, base_ms, frame_ms, reference, fragments):
        self.stream = stream
        self.base_ms = base_ms  # producer timestamp of the first frame (a whole second)
        self.frame_ms = frame_ms  # frame times relative to base_ms, in order
        self.reference = reference  # luma of each source frame, decoded by ffmpeg
        self.fragments = fragments  # ListFragments of the stream


@pytest.fixture(scope="module")
def clip_ball(media_dir) -> bytes:
    return media.clip(media_dir, seconds=SECONDS, pattern="ball")


@pytest.fixture(scope="module")
def uploaded(server, clip_ball, tmp_path_factory) -> Uploaded:
    name = unique_name("img")
    create_stream(server, name)
    base = whole_second_ms(offset_s=120)
    kvs = ebml.to_kvs_mkv(clip_ball, timecode_base=base)
    assert len(kvs.fragments) == SECONDS
    res = server.put_media(
        name,
        kvs.parts(),
        timecode_type="ABSOLUTE",
        start_timestamp_ms=base,
        wait_persisted_timecode=kvs.fragments[-1].timecode,
    )
    assert res.status == 200, res.body[:300]
    frags = wait_fragments(server, name, SECONDS)
    assert len(frags) == SECONDS
    _, frames, _ = ebml.source_frames(clip_ball)
    frame_ms = [f.abs_ms for f in frames]
    # Reference pictures: the source file decoded by ffmpeg, every frame, luma only.
    src = tmp_path_factory.mktemp("images") / "source.mkv"
    src.write_bytes(clip_ball)
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(src), "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"],
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    size = W * H
    reference = [out.stdout[i : i + size] for i in range(0, len(out.stdout), size)]
    assert len(reference) == len(frame_ms)
    return Uploaded(name, base, frame_ms, reference, frags)


def get_images(server, stream, start_ms, end_ms, *, validate=True, **kw):
    """One GetImages call; ``validate=False`` turns botocore's client-side checks off so that
    out-of-range values reach the server."""
    kw.setdefault("ImageSelectorType", "PRODUCER_TIMESTAMP")
    kw.setdefault("Format", "JPEG")
    client = server.archived(parameter_validation=validate)
    return client.get_images(StreamName=stream, StartTimestamp=ts(start_ms), EndTimestamp=ts(end_ms), **kw)


def content(image) -> bytes:
    assert "Error" not in image, image
    return base64.b64decode(image["ImageContent"])


# ------------------------------------------------------------------------- pictures
def test_png_pictures_are_the_frames_shown_at_each_instant(server, uploaded):
    """Every 250 ms over the whole clip: the PNG (lossless) decodes to the source frame
    whose presentation time is the latest at or before the instant, as ffmpeg decodes it."""
    up = uploaded
    resp = get_images(server, up.stream, up.base_ms, up.base_ms + SECONDS * 1000, SamplingInterval=250, Format="PNG")
    images = resp["Images"]
    assert "NextToken" not in resp
    assert len(images) == SECONDS * 1000 // 250
    for k, image in enumerate(images):
        offset = k * 250
        assert ms_of(image["TimeStamp"]) == up.base_ms + offset
        data = content(image)
        assert png_size(data) == (W, H)
        luma = ffmpeg_gray(data, W, H)
        shown = max(i for i, t in enumerate(up.frame_ms) if t <= offset)
        candidates = range(max(0, shown - 2), min(len(up.reference), shown + 3))
        scores = {i: sad(luma, up.reference[i]) for i in candidates}
        best = min(scores, key=scores.get)
        assert best == shown, (offset, shown, scores)
        # Colour conversion (I420 -> RGB -> gray) only: at most ~2 levels per pixel.
        assert scores[shown] / (W * H) < 2.5, scores[shown] / (W * H)


def test_jpeg_sizes_and_quality(server, uploaded):
    up = uploaded
    start, end = up.base_ms + 1000, up.base_ms + 2000  # inside the second fragment
    cases = [
        ({}, (W, H)),
        ({"WidthPixels": 160, "HeightPixels": 120}, (160, 120)),
        ({"WidthPixels": 100, "HeightPixels": 300}, (100, 300)),  # stretched
        ({"WidthPixels": 200}, (200, 150)),  # aspect ratio kept
        ({"HeightPixels": 60}, (80, 60)),
        ({"WidthPixels": 3840, "HeightPixels": 2160}, (3840, 2160)),
    ]
    for kw, size in cases:
        images = get_images(server, up.stream, start, end, SamplingInterval=500, **kw)["Images"]
        assert len(images) == 2, kw
        for image in images:
            assert jpeg_size(content(image)) == size, kw
    low = get_images(server, up.stream, start, end, SamplingInterval=1000, FormatConfig={"JPEGQuality": "5"})
    high = get_images(server, up.stream, start, end, SamplingInterval=1000, FormatConfig={"JPEGQuality": "100"})
    default = get_images(server, up.stream, start, end, SamplingInterval=1000)
    n_low, n_high, n_default = (len(content(r["Images"][0])) for r in (low, high, default))
    assert n_low < n_default < n_high, (n_low, n_default, n_high)
    # JPEG pictures decode too, to the right frame (lossy: looser bound).
    luma = ffmpeg_gray(content(default["Images"][0]), W, H)
    shown = max(i for i, t in enumerate(up.frame_ms) if t <= 1000)
    assert sad(luma, up.reference[shown]) / (W * H) < 6


def test_range_beyond_the_media_gives_no_media(server, uploaded):
    up = uploaded
    start, end = up.base_ms - 2000, up.base_ms + SECONDS * 1000 + 3000
    images = get_images(server, up.stream, start, end, SamplingInterval=500, WidthPixels=64, HeightPixels=48)["Images"]
    assert len(images) == (end - start) // 500
    for k, image in enumerate(images):
        t = start + k * 500
        assert ms_of(image["TimeStamp"]) == t
        if up.base_ms <= t < up.base_ms + SECONDS * 1000:
            assert jpeg_size(content(image)) == (64, 48), image
        else:
            assert image.get("Error") == "NO_MEDIA", (t - up.base_ms, image)
            assert "ImageContent" not in image


def test_count_is_range_over_interval(server, uploaded):
    up = uploaded
    b = up.base_ms
    small = {"WidthPixels": 32, "HeightPixels": 24}
    assert len(get_images(server, up.stream, b, b + 3000, SamplingInterval=1000, **small)["Images"]) == 3
    assert len(get_images(server, up.stream, b, b + 3000, SamplingInterval=700, **small)["Images"]) == 5
    # A range shorter than the interval, or empty: the picture at StartTimestamp.
    one = get_images(server, up.stream, b + 1000, b + 1000, SamplingInterval=200, **small)["Images"]
    assert [ms_of(i["TimeStamp"]) for i in one] == [b + 1000]
    assert jpeg_size(content(one[0])) == (32, 24)
    # No SamplingInterval: 3000 ms.
    default = get_images(server, up.stream, b, b + SECONDS * 1000, **small)["Images"]
    assert [ms_of(i["TimeStamp"]) - b for i in default] == [0, 3000]


def test_next_token_pagination(server, uploaded):
    up = uploaded
    arch = server.archived()
    start, end = up.base_ms, up.base_ms + SECONDS * 1000
    common = dict(
        StreamName=up.stream,
        ImageSelectorType="PRODUCER_TIMESTAMP",
        StartTimestamp=ts(start),
        EndTimestamp=ts(end),
        SamplingInterval=200,
        Format="JPEG",
        WidthPixels=80,
        HeightPixels=60,
    )
    whole = arch.get_images(**common)["Images"]  # 20 instants: one page
    assert len(whole) == 20
    pages, token = [], None
    while True:
        kw = {"NextToken": token} if token else {}
        resp = arch.get_images(**common, MaxResults=8, **kw)
        pages.append(resp["Images"])
        token = resp.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [8, 8, 4]
    flat = [i for p in pages for i in p]
    assert [ms_of(i["TimeStamp"]) for i in flat] == [start + k * 200 for k in range(20)]
    assert [i["ImageContent"] for i in flat] == [i["ImageContent"] for i in whole], "pages = one call"
    # boto3's paginator.
    got = []
    for page in arch.get_paginator("get_images").paginate(**common, PaginationConfig={"PageSize": 6}):
        got.extend(page["Images"])
    assert [ms_of(i["TimeStamp"]) for i in got] == [start + k * 200 for k in range(20)]
    # At most 25 images per response, whatever MaxResults says; the rest on the next page.
    wide = dict(common, StartTimestamp=ts(start - 2000), SamplingInterval=200)
    first = arch.get_images(**wide, MaxResults=100)
    assert len(first["Images"]) == 25 and first.get("NextToken")
    rest = arch.get_images(**wide, MaxResults=100, NextToken=first["NextToken"])
    assert len(rest["Images"]) == 5 and "NextToken" not in rest
    assert ms_of(rest["Images"][0]["TimeStamp"]) == start - 2000 + 25 * 200


def test_server_timestamp_selector(server, uploaded):
    up = uploaded
    server_ms = sorted(round(f["ServerTimestamp"].timestamp() * 1000) for f in up.fragments)
    start = server_ms[0] // 1000 * 1000
    end = (server_ms[-1] // 1000 + 3) * 1000
    resp = get_images(
        server, up.stream, start, end, ImageSelectorType="SERVER_TIMESTAMP", SamplingInterval=200, MaxResults=25,
        WidthPixels=64, HeightPixels=48,
    )
    images = resp["Images"]
    assert [ms_of(i["TimeStamp"]) for i in images] == [start + k * 200 for k in range(len(images))]
    for image in images:
        t = ms_of(image["TimeStamp"])
        covered = any(s <= t < s + f["FragmentLengthInMilliseconds"]
                      for s, f in zip(server_ms, sorted(up.fragments, key=lambda f: f["ServerTimestamp"])))
        if covered:
            assert jpeg_size(content(image)) == (64, 48)
        else:
            assert image["Error"] == "NO_MEDIA"
    assert any("ImageContent" in i for i in images)


def test_aws_cli_get_images(server, uploaded):
    up = uploaded
    res = server.aws_cli(
        "kinesis-video-archived-media", "get-images",
        "--stream-name", up.stream,
        "--image-selector-type", "PRODUCER_TIMESTAMP",
        "--start-timestamp", str(up.base_ms // 1000),
        "--end-timestamp", str(up.base_ms // 1000 + 2),
        "--sampling-interval", "1000",
        "--format", "PNG",
        "--width-pixels", "40", "--height-pixels", "30",
        endpoint=server.data_endpoint,
    )
    images = res.json["Images"]
    assert len(images) == 2
    assert all(png_size(base64.b64decode(i["ImageContent"])) == (40, 30) for i in images)


# --------------------------------------------------------------------------- errors
def client_error(fn, **kw):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as e:
        fn(**kw)
    return e.value.response


def test_sampling_interval_below_200_ms(server, uploaded):
    up = uploaded
    r = client_error(get_images, server=server, stream=up.stream, start_ms=up.base_ms, end_ms=up.base_ms + 1000,
                     SamplingInterval=199)
    assert r["Error"]["Code"] == "InvalidArgumentException"
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "samplingInterval" in r["Error"]["Message"] and "200" in r["Error"]["Message"], r["Error"]
    # 200 itself is fine.
    assert get_images(server, up.stream, up.base_ms, up.base_ms + 400, SamplingInterval=200,
                      WidthPixels=16, HeightPixels=16)["Images"]


@pytest.mark.parametrize(
    "kw",
    [
        {"WidthPixels": 0},
        {"HeightPixels": 2161},
        {"MaxResults": 0},
        {"MaxResults": 101},
        {"FormatConfig": {"JPEGQuality": "0"}},
        {"FormatConfig": {"JPEGQuality": "high"}},
        {"NextToken": "bm90IG91cnM="},
    ],
)
def test_invalid_arguments(server, uploaded, kw):
    up = uploaded
    r = client_error(get_images, server=server, stream=up.stream, start_ms=up.base_ms, end_ms=up.base_ms + 1000,
                     SamplingInterval=500, validate=False, **kw)
    assert r["Error"]["Code"] == "InvalidArgumentException", r["Error"]
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_bad_ranges(server, uploaded):
    up = uploaded
    # End before start.
    r = client_error(get_images, server=server, stream=up.stream, start_ms=up.base_ms, end_ms=up.base_ms - 1000)
    assert r["Error"]["Code"] == "InvalidArgumentException"
    # More than 300 s.
    r = client_error(get_images, server=server, stream=up.stream, start_ms=up.base_ms, end_ms=up.base_ms + 301_000)
    assert r["Error"]["Code"] == "InvalidArgumentException"
    assert "300" in r["Error"]["Message"]


def test_unknown_stream(server):
    now = whole_second_ms()
    r = client_error(get_images, server=server, stream=unique_name("nosuch"), start_ms=now - 10_000, end_ms=now)
    assert r["Error"]["Code"] == "ResourceNotFoundException"
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_no_data_retention(server):
    name = unique_name("img-noret")
    create_stream(server, name, retention_hours=0)
    now = whole_second_ms()
    r = client_error(get_images, server=server, stream=name, start_ms=now - 10_000, end_ms=now)
    assert r["Error"]["Code"] == "NoDataRetentionException"


def test_stream_without_media_in_range(server):
    """A stream with nothing stored: every instant is NO_MEDIA (not an error)."""
    name = unique_name("img-empty")
    create_stream(server, name)
    now = whole_second_ms()
    images = get_images(server, name, now - 3000, now, SamplingInterval=1000)["Images"]
    assert [i.get("Error") for i in images] == ["NO_MEDIA"] * 3


def test_undecodable_frames_give_media_error(server, clip_ball):
    """Valid MKV and avcC, but the frames are noise: MEDIA_ERROR, not a failed call."""
    name = unique_name("img-noise")
    create_stream(server, name)
    base = whole_second_ms(offset_s=300)
    kvs = ebml.to_kvs_mkv(clip_ball, timecode_base=base)
    noise = bytes((i * 131 + 7) % 251 for i in range(4096))
    clusters = []
    for f in kvs.fragments[:2]:
        blocks = [(t, rel, key, (noise * (len(data) // len(noise) + 1))[: len(data)]) for t, rel, key, data in f.blocks]
        clusters.append(ebml.make_cluster(f.timecode, blocks))
    parts = [kvs.header + clusters[0], *clusters[1:], kvs.trailer]
    res = server.put_media(name, parts, timecode_type="ABSOLUTE", start_timestamp_ms=base,
                           wait_persisted_timecode=kvs.fragments[1].timecode)
    assert res.status == 200
    assert len(wait_fragments(server, name, 2)) == 2
    images = get_images(server, name, base, base + 2000, SamplingInterval=500)["Images"]
    assert [i.get("Error") for i in images] == ["MEDIA_ERROR"] * 4, images


def test_codec_change_between_fragments(server, clip_ball, media_dir):
    """Two upload sessions with different SPS/PPS (320x240, then 160x120) in one page: each
    fragment is decoded with its own codec configuration."""
    name = unique_name("img-switch")
    create_stream(server, name)
    base = whole_second_ms(offset_s=400)
    first = ebml.to_kvs_mkv(clip_ball, timecode_base=base)
    small_path = media.gst_h264_mkv(media_dir / "small-160x120.mkv", seconds=2, width=160, height=120, pattern="ball")
    second = ebml.to_kvs_mkv(small_path.read_bytes(), timecode_base=base + SECONDS * 1000)
    for kvs in (first, second):
        res = server.put_media(name, kvs.parts(), timecode_type="ABSOLUTE", start_timestamp_ms=kvs.fragments[0].timecode,
                               wait_persisted_timecode=kvs.fragments[-1].timecode)
        assert res.status == 200
    assert len(wait_fragments(server, name, SECONDS + 2)) == SECONDS + 2
    images = get_images(server, name, base, base + (SECONDS + 2) * 1000, SamplingInterval=500)["Images"]
    sizes = [jpeg_size(content(i)) for i in images]
    assert sizes == [(W, H)] * (SECONDS * 2) + [(160, 120)] * 4, sizes
