"""PutMedia -> ListFragments / GetMedia / GetMediaForFragmentList round trips with
real H.264 media, a kvssink-like producer, boto3 and the AWS CLI."""

from __future__ import annotations

import datetime
import re
import threading
import time
from dataclasses import dataclass

import pytest

import ebml
import media
from conftest import (
    MediaReader,
    block_keys,
    create_stream,
    get_media,
    list_all_fragments,
    spec_keys,
    unique_name,
    wait_fragments,
    whole_second_ms,
)

TS_RE = re.compile(r"^\d{10}\.\d{3}$")


@dataclass
class Upload:
    stream: str
    kvs: ebml.KvsMkv
    result: object
    producer_ts_ms: list[int]  # expected producer timestamp of each fragment (epoch ms)
    t_start: float  # wall clock before the upload
    t_end: float  # wall clock after the upload
    numbers: list[str]  # fragment numbers from the PERSISTED acks, in upload order


USER_TAGS = {
    0: [("camera", "front-door"), ("event", "motion")],
    2: [("note", "third fragment ✓")],
}


def _upload(server, clip, mode: str, **kw) -> Upload:
    name = unique_name(f"pg-{mode.lower()}")
    create_stream(server, name)
    if mode == "ABSOLUTE":
        start_ms = whole_second_ms(offset_s=60)
        kvs = ebml.to_kvs_mkv(clip, timecode_base=start_ms, user_tags=USER_TAGS)
        producer = [f.timecode for f in kvs.fragments]
    else:
        # RELATIVE: producer timestamp = start timestamp + cluster timecode;
        # a start timestamp with milliseconds checks the ms arithmetic.
        start_ms = whole_second_ms(offset_s=120) + 250
        kvs = ebml.to_kvs_mkv(clip, timecode_base=0, user_tags=USER_TAGS)
        producer = [start_ms + f.timecode for f in kvs.fragments]
    t0 = time.time()
    res = server.put_media(
        name,
        kvs.parts(),
        timecode_type=mode,
        start_timestamp_ms=start_ms,
        wait_persisted_timecode=kvs.fragments[-1].timecode,
        **kw,
    )
    t1 = time.time()
    numbers = []
    for f in kvs.fragments:
        p = [a for a in res.acks if a.get("EventType") == "PERSISTED" and a.get("FragmentTimecode") == f.timecode]
        numbers.append(p[0]["FragmentNumber"] if p else None)
    return Upload(name, kvs, res, producer, t0, t1, numbers)


@pytest.fixture(scope="module", params=["ABSOLUTE", "RELATIVE"])
def upload(request, server, clip4) -> Upload:
    return _upload(server, clip4, request.param)


@pytest.fixture(scope="module")
def abs_upload(server, clip4) -> Upload:
    """A second ABSOLUTE upload, paced (0.4 s per fragment) so that server
    timestamps of consecutive fragments differ clearly."""
    return _upload(server, clip4, "ABSOLUTE", part_interval=0.4)


# ----------------------------------------------------------------- acks
def test_putmedia_response_and_transport(upload):
    r = upload.result
    assert r.alpn == "http/1.1", "the data endpoint must negotiate http/1.1 even when h2 is offered"
    assert r.status == 200, (r.status, r.body[:500])
    # libcurl waits ~1 s for "100 Continue" before it sends the body, even when the
    # final 200 has already arrived (seen with kvssink): the server must send 100 promptly.
    assert r.got_continue, "no 100 Continue for Expect: 100-continue"
    assert r.response_delay is not None and r.response_delay < 0.5, r.response_delay
    assert "chunked" in (r.header("transfer-encoding") or "")
    assert r.send_error is None
    assert r.response_complete, "the response must end (0-chunk) after the request body ended"
    assert not r.bad_lines, r.bad_lines
    assert max(r.chunk_sizes) <= 1024, "the C producer rejects ack reads over 1024 bytes: one small chunk per ack"


def test_ack_sequence_per_fragment(upload):
    acks = upload.result.acks
    assert not [a for a in acks if a.get("EventType") == "ERROR"], acks
    timecodes = [f.timecode for f in upload.kvs.fragments]
    for a in acks:
        assert a.get("EventType") in {"BUFFERING", "RECEIVED", "PERSISTED", "IDLE"}, a
        if a["EventType"] != "IDLE":
            assert a["FragmentTimecode"] in timecodes, ("FragmentTimecode must echo a raw cluster timecode", a)
            assert isinstance(a["FragmentNumber"], str) and a["FragmentNumber"].isdigit(), a
    numbers = []
    for tc in timecodes:
        seq = [(i, a) for i, a in enumerate(acks) if a.get("FragmentTimecode") == tc and a["EventType"] != "IDLE"]
        kinds = [a["EventType"] for _, a in seq]
        assert kinds == ["BUFFERING", "RECEIVED", "PERSISTED"], (tc, kinds)
        assert len({a["FragmentNumber"] for _, a in seq}) == 1, seq
        numbers.append(int(seq[0][1]["FragmentNumber"]))
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers), numbers
    # kvssink only sends the terminating 0-chunk after the last fragment's
    # PERSISTED ack: the END_OF_FRAGMENT tag must complete the last fragment.
    r = upload.result
    last_persisted = [t for a, t in zip(r.acks, r.ack_times) if a.get("EventType") == "PERSISTED" and a["FragmentTimecode"] == timecodes[-1]]
    assert r.t_body_end is not None and last_persisted and last_persisted[0] < r.t_body_end, (
        "the last fragment must be PERSISTED on the END_OF_FRAGMENT tag, before the body ends"
    )


def test_list_fragments_paginator(server, upload):
    frags = wait_fragments(server, upload.stream, len(upload.kvs.fragments))
    assert [f["FragmentNumber"] for f in frags] == upload.numbers
    arch = server.archived()
    pages = list(arch.get_paginator("list_fragments").paginate(StreamName=upload.stream, PaginationConfig={"PageSize": 1}))
    assert sum(len(p["Fragments"]) for p in pages) == len(upload.kvs.fragments)
    assert len(pages) >= len(upload.kvs.fragments)
    for f, spec, ts_ms in zip(frags, upload.kvs.fragments, upload.producer_ts_ms):
        assert f["ProducerTimestamp"].timestamp() == pytest.approx(ts_ms / 1000, abs=0.0011)
        assert upload.t_start - 2 <= f["ServerTimestamp"].timestamp() <= upload.t_end + 2
        assert 960 <= f["FragmentLengthInMilliseconds"] <= 1040, f
        payload = sum(len(x) for x in spec.frames)
        assert payload <= f["FragmentSizeInBytes"] <= payload + 64 * 1024, (payload, f)
    server_ts = [f["ServerTimestamp"] for f in frags]
    assert server_ts == sorted(server_ts)


def test_list_fragments_producer_timestamp_range(server, upload):
    wait_fragments(server, upload.stream, len(upload.kvs.fragments))
    ts = upload.producer_ts_ms
    # Fragments whose start is in [start, end] (inclusive, AWS FragmentSelector semantics).
    lo_ms = ts[1] - ts[1] % 1000 + (1000 if ts[1] % 1000 else 0)  # whole second at/after fragment 1 start
    expected = [n for n, t in zip(upload.numbers, ts) if lo_ms <= t <= lo_ms + 1000]
    assert expected, "range must select something"
    got = list_all_fragments(
        server,
        upload.stream,
        page_size=1,
        selector={
            "FragmentSelectorType": "PRODUCER_TIMESTAMP",
            "TimestampRange": {
                "StartTimestamp": datetime.datetime.fromtimestamp(lo_ms / 1000, datetime.timezone.utc),
                "EndTimestamp": datetime.datetime.fromtimestamp((lo_ms + 1000) / 1000, datetime.timezone.utc),
            },
        },
    )
    assert [f["FragmentNumber"] for f in got] == expected


def test_list_fragments_server_timestamp_range(server, upload):
    frags = wait_fragments(server, upload.stream, len(upload.kvs.fragments))
    start = datetime.datetime.fromtimestamp(int(upload.t_start) - 1, datetime.timezone.utc)
    end = datetime.datetime.fromtimestamp(int(upload.t_end) + 2, datetime.timezone.utc)
    got = list_all_fragments(server, upload.stream, selector={"FragmentSelectorType": "SERVER_TIMESTAMP", "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end}})
    assert [f["FragmentNumber"] for f in got] == [f["FragmentNumber"] for f in frags]
    past = datetime.datetime.fromtimestamp(int(upload.t_start) - 3600, datetime.timezone.utc)
    none = list_all_fragments(server, upload.stream, selector={"FragmentSelectorType": "SERVER_TIMESTAMP", "TimestampRange": {"StartTimestamp": past, "EndTimestamp": past + datetime.timedelta(seconds=60)}})
    assert none == []


# ----------------------------------------------------------------- GetMedia
def assert_fragment_matches(frag: ebml.Fragment, spec: ebml.FragmentSpec, number: str, producer_ms: int, upload: Upload):
    assert frag.fragment_number == number
    assert TS_RE.match(frag.raw_producer_timestamp or ""), frag.pre_tags
    assert TS_RE.match(frag.raw_server_timestamp or ""), frag.pre_tags
    assert frag.producer_timestamp == pytest.approx(producer_ms / 1000, abs=0.0005)
    assert upload.t_start - 2 <= frag.server_timestamp <= upload.t_end + 2
    assert frag.cluster.timecode == spec.timecode, "the Cluster keeps the producer's original Timecode"
    assert frag.cluster.has_known_size, "GetMedia emits the Cluster with a known size"
    assert block_keys(frag.cluster.blocks) == spec_keys(spec), "SimpleBlocks must be byte-identical"
    assert frag.user_tags == spec.user_tags
    assert frag.millis_behind_now is not None and frag.millis_behind_now.lstrip("-").isdigit()
    assert frag.continuation_token


def test_get_media_earliest_round_trip(server, upload, tmp_path):
    wait_fragments(server, upload.stream, len(upload.kvs.fragments))
    n = len(upload.kvs.fragments)
    reader = get_media(server, upload.stream, {"StartSelectorType": "EARLIEST"}, until_fragments=n, timeout=20)
    frags = reader.fragments
    assert len(frags) >= n, f"got {len(frags)} fragments\n{ebml.describe(bytes(reader.buf))}"
    frags = frags[:n]
    for frag, spec, number, pts, wall in zip(frags, upload.kvs.fragments, upload.numbers, upload.producer_ts_ms, reader.arrival_wall):
        assert_fragment_matches(frag, spec, number, pts, upload)
        behind = (wall - frag.server_timestamp) * 1000
        assert abs(int(frag.millis_behind_now) - behind) < 2000, (frag.millis_behind_now, behind)
        # Layout: EBML header, Segment, producer header (Info, Tracks), AWS tags, Cluster, tags.
        seg = frag.segment
        assert seg.ebml_header is not None
        ids = [c.id for c in seg.children]
        assert ids.index(ebml.INFO) < ids.index(ebml.TRACKS) < ids.index(ebml.CLUSTER)
        assert ids[-1] == ebml.TAGS and ids.index(ebml.TAGS) < ids.index(ebml.CLUSTER)
        first_tags = ebml.parse_tags(seg.of(ebml.TAGS)[0])
        assert [k for k, _ in first_tags[:3]] == [
            "AWS_KINESISVIDEO_FRAGMENT_NUMBER",
            "AWS_KINESISVIDEO_SERVER_TIMESTAMP",
            "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP",
        ]
        assert seg.of(ebml.TRACKS)[0].data == ebml.parse_stream(upload.kvs.header, strict=False)[0].of(ebml.TRACKS)[0].data

    out = tmp_path / "getmedia.mkv"
    out.write_bytes(b"".join(f.segment_bytes for f in frags))
    info = media.ffprobe_count_frames(out)
    assert info["returncode"] == 0, info["stderr"]
    assert (info.get("codec_name"), info.get("width"), info.get("height")) == ("h264", "320", "240")
    assert int(info["nb_read_frames"]) == sum(len(s.frames) for s in upload.kvs.fragments)


def test_get_media_ends_when_the_stream_is_idle(server, abs_upload):
    wait_fragments(server, abs_upload.stream, 4)
    t0 = time.monotonic()
    reader = get_media(server, abs_upload.stream, {"StartSelectorType": "EARLIEST"}, timeout=25)
    assert reader.eof, "GetMedia on a stream without new data must end after a few seconds idle"
    assert time.monotonic() - t0 < 20
    assert [f.fragment_number for f in reader.fragments] == abs_upload.numbers
    assert reader.content_type


def test_get_media_fragment_number_selector(server, abs_upload):
    wait_fragments(server, abs_upload.stream, 4)
    reader = get_media(server, abs_upload.stream, {"StartSelectorType": "FRAGMENT_NUMBER", "AfterFragmentNumber": abs_upload.numbers[1]}, until_fragments=2)
    assert [f.fragment_number for f in reader.fragments[:2]] == abs_upload.numbers[2:4]
    assert block_keys(reader.fragments[0].cluster.blocks) == spec_keys(abs_upload.kvs.fragments[2])


def test_get_media_producer_timestamp_selector(server, abs_upload):
    wait_fragments(server, abs_upload.stream, 4)
    ts = abs_upload.producer_ts_ms[2]
    assert ts % 1000 == 0
    start = datetime.datetime.fromtimestamp(ts / 1000, datetime.timezone.utc)
    reader = get_media(server, abs_upload.stream, {"StartSelectorType": "PRODUCER_TIMESTAMP", "StartTimestamp": start}, until_fragments=2)
    assert [f.fragment_number for f in reader.fragments[:2]] == abs_upload.numbers[2:4]


def test_get_media_server_timestamp_selector(server, abs_upload):
    frags = wait_fragments(server, abs_upload.stream, 4)
    server_ts = [f["ServerTimestamp"].timestamp() for f in frags]
    # boto3 sends whole seconds: the first whole second after fragment 1 arrived.
    t = int(server_ts[1]) + 1
    assert t > server_ts[1]
    start = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    reader = get_media(server, abs_upload.stream, {"StartSelectorType": "SERVER_TIMESTAMP", "StartTimestamp": start}, until_fragments=1)
    assert reader.fragments, "no fragment returned"
    first = abs_upload.numbers.index(reader.fragments[0].fragment_number)
    # "the chunk containing a fragment with the specified timestamp": the last
    # fragment that started at or before t, or (if a server reads it as a
    # lower bound) the first one that started at or after t.
    containing = max(i for i, s in enumerate(server_ts) if s <= t)
    at_or_after = [i for i, s in enumerate(server_ts) if s >= t]
    allowed = {containing} | ({at_or_after[0]} if at_or_after else set())
    assert first in allowed, (first, server_ts, t)


def test_get_media_continuation_token(server, abs_upload):
    wait_fragments(server, abs_upload.stream, 4)
    reader = get_media(server, abs_upload.stream, {"StartSelectorType": "EARLIEST"}, until_fragments=2)
    token = reader.fragments[1].continuation_token
    assert token
    reader2 = get_media(server, abs_upload.stream, {"StartSelectorType": "CONTINUATION_TOKEN", "ContinuationToken": token}, until_fragments=2)
    assert [f.fragment_number for f in reader2.fragments[:2]] == abs_upload.numbers[2:4]


def test_get_media_for_fragment_list(server, upload):
    wait_fragments(server, upload.stream, len(upload.kvs.fragments))
    wanted = [0, 2, 3]
    resp = server.archived().get_media_for_fragment_list(StreamName=upload.stream, Fragments=[upload.numbers[i] for i in wanted])
    reader = MediaReader(resp["Payload"]).read(timeout=15)
    assert reader.eof
    assert [f.fragment_number for f in reader.fragments] == [upload.numbers[i] for i in wanted]
    for frag, i in zip(reader.fragments, wanted):
        spec = upload.kvs.fragments[i]
        assert block_keys(frag.cluster.blocks) == spec_keys(spec)
        assert frag.cluster.timecode == spec.timecode
        assert frag.producer_timestamp == pytest.approx(upload.producer_ts_ms[i] / 1000, abs=0.0005)
        assert frag.user_tags == spec.user_tags


def test_get_media_for_unknown_fragment_number(server, upload):
    """As AWS answers it (aws-sdk-js issue #3217): 200 with an error chunk holding
    ERROR_CODE FRAGMENT_NOT_FOUND, ERROR_ID 3000 and the fragment number, no media;
    known fragments in the same list are still served."""
    arch = server.archived()
    bogus = str(int(upload.numbers[-1]) + 10**6)
    resp = arch.get_media_for_fragment_list(StreamName=upload.stream, Fragments=[upload.numbers[0], bogus])
    reader = MediaReader(resp["Payload"]).read(timeout=10)
    assert reader.eof
    assert [f.fragment_number for f in reader.fragments] == [upload.numbers[0]]
    error_chunks = [seg for seg in ebml.parse_stream(bytes(reader.buf)) if not seg.of(ebml.CLUSTER)]
    assert len(error_chunks) == 1, error_chunks
    tags = dict(t for el in error_chunks[0].of(ebml.TAGS) for t in ebml.parse_tags(el))
    assert tags["AWS_KINESISVIDEO_ERROR_CODE"] == "FRAGMENT_NOT_FOUND", tags
    assert tags["AWS_KINESISVIDEO_ERROR_ID"] == "3000", tags
    assert tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] == bogus, tags


def test_get_media_now_follows_live_upload(server, clip6):
    name = unique_name("live")
    create_stream(server, name)
    start_ms = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip6, timecode_base=start_ms)
    s = server.session(name, timecode_type="ABSOLUTE", start_timestamp_ms=start_ms)
    s.start()
    assert s.status in (None, 200)
    sender_error = []

    def send():
        try:
            for i, part in enumerate(kvs.parts()):
                if i:
                    time.sleep(1.0)
                s.send_body(part)
            s.wait_ack("PERSISTED", kvs.fragments[-1].timecode, 10)
            s.end_body()
        except Exception as e:  # surfaced below
            sender_error.append(e)

    t = threading.Thread(target=send)
    t.start()
    try:
        # Wait until two fragments are persisted, then start following.
        assert s.wait_ack("PERSISTED", kvs.fragments[1].timecode, 10), s.result().acks
        request_time = time.monotonic()
        last_tc = kvs.fragments[-1].timecode
        reader = get_media(
            server, name, {"StartSelectorType": "NOW"}, until=lambda fr: any(f.cluster.timecode == last_tc for f in fr), timeout=15
        )
    finally:
        t.join(30)
        s.close()
    assert not sender_error, sender_error
    res = s.result()
    persisted_at = {a["FragmentTimecode"]: at for a, at in zip(res.acks, res.ack_times) if a["EventType"] == "PERSISTED"}
    numbers = {a["FragmentTimecode"]: a["FragmentNumber"] for a in res.acks if a["EventType"] == "PERSISTED"}
    got = [f.cluster.timecode for f in reader.fragments]
    tcs = [f.timecode for f in kvs.fragments]
    assert got, "GetMedia NOW delivered nothing while the upload continued"
    first = tcs.index(got[0])
    assert first >= 1, "NOW must not start from the beginning of the stream"
    assert got == tcs[first : first + len(got)], "fragments must be consecutive"
    assert got[-1] == tcs[-1], "NOW must follow the upload to its last fragment"
    checked = 0
    for frag, arrived in zip(reader.fragments, reader.arrival):
        tc = frag.cluster.timecode
        assert frag.fragment_number == numbers[tc]
        assert block_keys(frag.cluster.blocks) == spec_keys(kvs.fragments[tcs.index(tc)])
        if persisted_at[tc] > request_time:
            lag = arrived - persisted_at[tc]
            assert lag < 1.0, f"fragment {tc} reached the GetMedia reader {lag:.2f}s after its PERSISTED ack"
            checked += 1
    assert checked >= 2, "at least two fragments must have been persisted while GetMedia was following"


def test_idle_acks_keep_a_quiet_connection_alive(server, stream_name, clip4):
    """With no data for a few seconds the server sends IDLE acks (curl aborts
    below 30 B/s for 30 s) and the upload then continues normally."""
    create_stream(server, stream_name)
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start)
    parts = kvs.parts()
    s = server.session(stream_name, start_timestamp_ms=start)
    try:
        s.start()
        s.send_body(parts[0])
        assert s.wait_for(lambda x: any(a.get("EventType") == "IDLE" for a in x.acks) or x.server_closed, 8), s.result().acks
        for p in parts[1:]:
            s.send_body(p)
        assert s.wait_ack("PERSISTED", kvs.fragments[-1].timecode, 10), s.result().acks
        s.end_body()
        s.wait_complete(10)
    finally:
        s.close()
    r = s.result()
    assert not r.server_closed or r.response_complete
    assert len([a for a in r.acks if a["EventType"] == "PERSISTED"]) == 4


def test_putmedia_by_arn_with_streaming_payload_signature(server, clip4):
    """The Java SDK's signing variant (x-amz-content-sha256 STREAMING-...) and
    x-amzn-stream-arn instead of the name."""
    name = unique_name("arn")
    info = create_stream(server, name)
    start_ms = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start_ms)
    s = server.session(None, stream_arn=info["StreamARN"], streaming_payload=True, start_timestamp_ms=start_ms)
    try:
        s.start()
        for p in kvs.parts():
            s.send_body(p)
        assert s.wait_ack("PERSISTED", kvs.fragments[-1].timecode, 15), s.result()
        s.end_body()
        s.wait_complete(10)
    finally:
        s.close()
    assert s.status == 200
    frags = wait_fragments(server, name, 4)
    assert len(frags) == 4


def test_aws_cli_get_media_and_list_fragments(server, media_dir, tmp_path):
    up = _upload(server, media.clip(media_dir, seconds=3), "ABSOLUTE")
    wait_fragments(server, up.stream, 3)
    listed = server.aws_cli("kinesis-video-archived-media", "list-fragments", "--stream-name", up.stream, endpoint=server.data_endpoint).json
    assert sorted(f["FragmentNumber"] for f in listed["Fragments"]) == sorted(up.numbers)
    out = tmp_path / "cli.mkv"
    res = server.aws_cli(
        "kinesis-video-media", "get-media", "--stream-name", up.stream,
        "--start-selector", "StartSelectorType=EARLIEST", str(out),
        endpoint=server.data_endpoint, timeout=60,
    )
    assert res.json and res.json.get("ContentType"), res.stdout
    frags = ebml.getmedia_fragments(out.read_bytes())
    assert [f.fragment_number for f in frags] == up.numbers
    for frag, spec in zip(frags, up.kvs.fragments):
        assert block_keys(frag.cluster.blocks) == spec_keys(spec)
    info = media.ffprobe_count_frames(out)
    assert info["returncode"] == 0 and int(info["nb_read_frames"]) == 90, info


def test_putmedia_on_the_main_listener_over_http11(server, stream_name, clip4):
    """The main listener serves every API; a client that offers only http/1.1
    can upload there too."""
    create_stream(server, stream_name)
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start)
    res = server.put_media(
        stream_name, kvs.parts(), port=server.port, alpn=("http/1.1",), start_timestamp_ms=start,
        wait_persisted_timecode=kvs.fragments[-1].timecode,
    )
    assert res.alpn == "http/1.1"
    assert res.status == 200 and len([a for a in res.acks if a["EventType"] == "PERSISTED"]) == 4, res.acks


@pytest.mark.parametrize("chunk_min,chunk_max", [(1, 300), (1 << 20, 1 << 20)], ids=["tiny-chunks", "one-huge-chunk"])
def test_chunk_boundaries_do_not_matter(server, stream_name, media_dir, chunk_min, chunk_max):
    """HTTP chunk boundaries fall anywhere inside EBML elements (IDs, sizes,
    frames) or the whole body comes in one chunk: the result is the same."""
    clip = media.clip(media_dir, seconds=3)
    create_stream(server, stream_name)
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip, timecode_base=start, user_tags={1: [("chunked", "yes")]})
    res = server.put_media(
        stream_name, [kvs.body()], chunk_min=chunk_min, chunk_max=chunk_max, start_timestamp_ms=start,
        wait_persisted_timecode=kvs.fragments[-1].timecode,
    )
    assert res.status == 200 and not [a for a in res.acks if a["EventType"] == "ERROR"], res.acks
    assert len([a for a in res.acks if a["EventType"] == "PERSISTED"]) == 3
    reader = get_media(server, stream_name, {"StartSelectorType": "EARLIEST"}, until_fragments=3)
    for frag, spec in zip(reader.fragments, kvs.fragments):
        assert block_keys(frag.cluster.blocks) == spec_keys(spec)
        assert frag.user_tags == spec.user_tags


def test_new_ebml_header_inside_one_session(server, stream_name, clip4):
    """A producer that restarts its MKV stream (new EBML header + Segment) on
    the same connection: every Cluster is still one fragment."""
    create_stream(server, stream_name)
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start)
    f = kvs.fragments
    body = kvs.header + f[0].data + f[1].data + kvs.header + f[2].data + f[3].data + kvs.trailer
    res = server.put_media(stream_name, [body], start_timestamp_ms=start, wait_persisted_timecode=f[3].timecode)
    assert res.status == 200 and not [a for a in res.acks if a["EventType"] == "ERROR"], res.acks
    persisted_tcs = [a["FragmentTimecode"] for a in res.acks if a["EventType"] == "PERSISTED"]
    assert persisted_tcs == [x.timecode for x in f]
    reader = get_media(server, stream_name, {"StartSelectorType": "EARLIEST"}, until_fragments=4)
    assert [g.cluster.timecode for g in reader.fragments] == [x.timecode for x in f]
    for g, spec in zip(reader.fragments, f):
        assert block_keys(g.cluster.blocks) == spec_keys(spec)


def test_body_end_completes_the_last_fragment(server, stream_name, clip4):
    """Without the END_OF_FRAGMENT tag the last (unknown-size) Cluster is complete
    when the body ends: its acks still arrive before the response ends."""
    create_stream(server, stream_name)
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start, end_of_fragment=False)
    res = server.put_media(stream_name, kvs.parts(), start_timestamp_ms=start)
    assert res.status == 200 and res.response_complete
    assert [a["FragmentTimecode"] for a in res.acks if a["EventType"] == "PERSISTED"] == [f.timecode for f in kvs.fragments]
    assert len(wait_fragments(server, stream_name, 4)) == 4


def test_acks_not_required(server, stream_name, clip4):
    create_stream(server, stream_name)
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start)
    res = server.put_media(stream_name, kvs.parts(), start_timestamp_ms=start, ack_required=False)
    assert res.status == 200 and res.response_complete
    assert [a for a in res.acks if a["EventType"] != "IDLE"] == []
    assert len(wait_fragments(server, stream_name, 4)) == 4


def test_delete_stream_during_upload(server, stream_name, clip4):
    """AWS ErrorId 4008 (STREAM_NOT_ACTIVE) once the stream is deleted under a producer."""
    info = create_stream(server, stream_name)
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start)
    parts = kvs.parts()
    s = server.session(stream_name, start_timestamp_ms=start)
    try:
        s.start()
        s.send_body(parts[0])
        s.send_body(parts[1])
        assert s.wait_ack("PERSISTED", kvs.fragments[0].timecode, 5)
        server.kv().delete_stream(StreamARN=info["StreamARN"])
        for p in parts[2:]:
            s.send_body(p)
        s.wait_for(lambda x: any(a["EventType"] == "ERROR" for a in x.acks) or x.server_closed, 5)
    finally:
        s.close()
    errs = [a for a in s.result().acks if a["EventType"] == "ERROR"]
    assert errs and errs[0]["ErrorId"] == 4008, s.result().acks


def test_archived_and_media_argument_validation(server, upload):
    arch = server.archived(parameter_validation=False)
    med = server.media(parameter_validation=False)
    calls = [
        lambda: arch.list_fragments(StreamName=upload.stream, NextToken="not base64 !!"),
        lambda: arch.list_fragments(StreamName=upload.stream, MaxResults=5000),
        lambda: med.get_media(StreamName=upload.stream, StartSelector={"StartSelectorType": "FRAGMENT_NUMBER"}),
        lambda: med.get_media(StreamName=upload.stream, StartSelector={"StartSelectorType": "PRODUCER_TIMESTAMP"}),
        lambda: med.get_media(StreamName=upload.stream, StartSelector={"StartSelectorType": "SOMETIME"}),
        lambda: arch.get_media_for_fragment_list(StreamName=upload.stream, Fragments=[]),
    ]
    for i, call in enumerate(calls):
        with pytest.raises(arch.exceptions.ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "InvalidArgumentException", (i, e.value.response["Error"])
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
