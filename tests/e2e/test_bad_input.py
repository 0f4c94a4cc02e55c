"""Bad producers and bad requests: the server must reject them the AWS way and
keep what it already acknowledged intact."""

from __future__ import annotations

import json
import os
import time

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

import ebml
from conftest import REGION, block_keys, create_stream, get_media, spec_keys, unique_name, wait_fragments, whole_second_ms


def errors(res):
    return [a for a in res.acks if a.get("EventType") == "ERROR"]


def persisted(res):
    return {a["FragmentTimecode"]: a["FragmentNumber"] for a in res.acks if a.get("EventType") == "PERSISTED"}


def fetch_fragments(server, stream, numbers):
    """GetMediaForFragmentList -> {fragment number: Fragment}."""
    from conftest import MediaReader

    if not numbers:
        return {}
    resp = server.archived().get_media_for_fragment_list(StreamName=stream, Fragments=list(numbers))
    reader = MediaReader(resp["Payload"]).read(timeout=15)
    assert reader.eof
    return {f.fragment_number: f for f in reader.fragments}


def assert_stored_intact(server, stream, kvs: ebml.KvsMkv):
    """Every listed fragment is one we sent, complete and byte-identical."""
    frags = wait_fragments(server, stream, 1)
    by_tc = {f.timecode: f for f in kvs.fragments}
    got = fetch_fragments(server, stream, [f["FragmentNumber"] for f in frags])
    assert set(got) == {f["FragmentNumber"] for f in frags}
    for number, frag in got.items():
        spec = by_tc.get(frag.cluster.timecode)
        assert spec is not None, f"fragment {number} has a timecode we never sent: {frag.cluster.timecode}"
        assert block_keys(frag.cluster.blocks) == spec_keys(spec), f"fragment {number} is not intact"
    return frags, got


def test_garbage_mid_upload(server, stream_name, clip6):
    create_stream(server, stream_name)
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip6, timecode_base=start)
    garbage = b"\x00\x00\x00\x00" + os.urandom(20000)
    parts = [kvs.header + kvs.fragments[0].data, kvs.fragments[1].data, kvs.fragments[2].data, garbage, kvs.fragments[3].data]
    res = server.put_media(stream_name, parts, start_timestamp_ms=start, complete_timeout=10)
    assert res.status == 200
    errs = errors(res)
    assert errs, res.acks
    assert errs[0]["ErrorId"] == 4006, errs
    assert errs[0].get("ErrorCode") == "INVALID_MKV_DATA", errs
    assert res.response_complete or res.server_closed, "the connection must end after INVALID_MKV_DATA"
    p = persisted(res)
    assert kvs.fragments[0].timecode in p and kvs.fragments[1].timecode in p, res.acks
    frags, got = assert_stored_intact(server, stream_name, kvs)
    numbers = {f["FragmentNumber"] for f in frags}
    assert {p[kvs.fragments[0].timecode], p[kvs.fragments[1].timecode]} <= numbers
    assert kvs.fragments[3].timecode not in {g.cluster.timecode for g in got.values()}, "nothing after the garbage"

    # The stream is usable again right away (the connection slot was released).
    kvs2 = ebml.to_kvs_mkv(clip6, timecode_base=start + 10_000)
    res2 = server.put_media(stream_name, kvs2.parts(), start_timestamp_ms=start + 10_000, wait_persisted_timecode=kvs2.fragments[-1].timecode)
    assert res2.status == 200 and not errors(res2)
    assert len(persisted(res2)) == len(kvs2.fragments)


def test_garbage_before_any_cluster(server, stream_name):
    create_stream(server, stream_name)
    res = server.put_media(stream_name, [b"this is not matroska at all" * 100], complete_timeout=10)
    assert res.status == 200
    errs = errors(res)
    assert errs and errs[0]["ErrorId"] == 4006, res.acks
    assert server.archived().list_fragments(StreamName=stream_name)["Fragments"] == []


def test_body_resuming_mid_stream_gets_a_retriable_error(server, stream_name, clip4):
    """A producer that reconnects and resumes inside a fragment, without a new EBML
    header (the AWS producer SDK does this after refused connections), gets 4000, which
    it retries by re-sending from its last PERSISTED fragment; 4006 would make it drop
    the fragment. Nothing of the headerless body is stored."""
    create_stream(server, stream_name)
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start)
    # The body starts at bare SimpleBlocks of fragment 1 (its Cluster header is gone).
    headerless = b"".join(ebml.simple_block(*block) for block in kvs.fragments[1].blocks[1:])
    # The producer keeps writing its backlog (~1 MB) after the error; the server reads
    # it for a moment so the producer gets the ack rather than a reset mid-write.
    backlog = [f.data for f in kvs.fragments[2:]] * 4
    res = server.put_media(stream_name, [headerless, *backlog], start_timestamp_ms=start, complete_timeout=10)
    assert res.status == 200
    errs = errors(res)
    assert errs and errs[0]["ErrorId"] == 4000 and errs[0]["ErrorCode"] == "STREAM_READ_ERROR", res.acks
    assert res.send_error is None, res.send_error
    assert res.response_complete, "the ack response must end cleanly after the error"
    assert server.archived().list_fragments(StreamName=stream_name)["Fragments"] == []
    # The producer's retry, with a fresh header, is stored whole.
    res2 = server.put_media(stream_name, kvs.parts(), start_timestamp_ms=start, wait_persisted_timecode=kvs.fragments[-1].timecode)
    assert not errors(res2), res2.acks
    assert_stored_intact(server, stream_name, kvs)


def test_decreasing_timecode(server, stream_name, clip4):
    create_stream(server, stream_name)
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start)
    f = kvs.fragments
    # Fragment 2, then fragment 1 (earlier timecode), then fragment 3.
    parts = [kvs.header + f[2].data, f[1].data, f[3].data, kvs.trailer]
    res = server.put_media(stream_name, parts, start_timestamp_ms=start, complete_timeout=10)
    assert res.status == 200
    errs = errors(res)
    assert errs and errs[0]["ErrorId"] == 4004, res.acks
    assert errs[0]["FragmentTimecode"] == f[1].timecode, errs
    p = persisted(res)
    assert f[2].timecode in p
    assert f[1].timecode not in p
    frags, got = assert_stored_intact(server, stream_name, kvs)
    assert f[1].timecode not in {g.cluster.timecode for g in got.values()}


def test_user_tag_limit(server, stream_name, clip4):
    create_stream(server, stream_name)
    start = whole_second_ms()
    ten = [(f"key{i}", f"value{i}") for i in range(10)]
    eleven = [(f"key{i}", f"value{i}") for i in range(11)]
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start, user_tags={0: ten, 1: eleven})
    res = server.put_media(stream_name, kvs.parts(), start_timestamp_ms=start, complete_timeout=10, wait_persisted_timecode=kvs.fragments[-1].timecode, persisted_timeout=5)
    assert res.status == 200
    errs = errors(res)
    assert errs and errs[0]["ErrorId"] == 4009, res.acks
    assert errs[0]["FragmentTimecode"] == kvs.fragments[1].timecode
    p = persisted(res)
    assert kvs.fragments[0].timecode in p, "10 tags are allowed"
    assert kvs.fragments[1].timecode not in p
    frags, got = assert_stored_intact(server, stream_name, kvs)
    first = got[p[kvs.fragments[0].timecode]]
    assert first.user_tags == ten


def test_second_concurrent_putmedia_is_refused(server, stream_name, clip4):
    create_stream(server, stream_name)
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start)
    first = server.session(stream_name, start_timestamp_ms=start)
    try:
        first.start()
        first.send_body(kvs.header + kvs.fragments[0].data)
        assert first.wait_ack("BUFFERING", kvs.fragments[0].timecode, 5)

        second = server.session(stream_name, start_timestamp_ms=start, seed=1)
        try:
            second.start(continue_timeout=5)
            second.wait_for(lambda s: s.status is not None, 5)
            r2 = second.result()
        finally:
            second.close()
        assert r2.status == 400, r2
        assert r2.header("x-amzn-errortype").split(":")[0] == "ConnectionLimitExceededException"
        assert json.loads(r2.body).get("message")

        # The first upload is unaffected.
        for frag in kvs.fragments[1:]:
            first.send_body(frag.data)
        first.send_body(kvs.trailer)
        assert first.wait_ack("PERSISTED", kvs.fragments[-1].timecode, 10), first.result().acks
        first.end_body()
        assert first.wait_complete(10)
    finally:
        first.close()
    r1 = first.result()
    assert not errors(r1) and len(persisted(r1)) == 4

    # After the first connection ended, a new one is accepted.
    kvs2 = ebml.to_kvs_mkv(clip4, timecode_base=start + 10_000)
    res = server.put_media(stream_name, kvs2.parts(), start_timestamp_ms=start + 10_000, wait_persisted_timecode=kvs2.fragments[-1].timecode)
    assert res.status == 200 and len(persisted(res)) == 4


def test_resent_fragments_are_deduplicated(server, stream_name, clip6):
    create_stream(server, stream_name)
    start = whole_second_ms(offset_s=30)
    kvs = ebml.to_kvs_mkv(clip6, timecode_base=start)
    f = kvs.fragments
    res1 = server.put_media(stream_name, [kvs.header + f[0].data, f[1].data, f[2].data, kvs.trailer], start_timestamp_ms=start, wait_persisted_timecode=f[2].timecode)
    p1 = persisted(res1)
    assert len(p1) == 3, res1.acks
    # Reconnect (new session, new start timestamp as the SDK does) and re-send
    # from fragment 1 with the original timecodes.
    res2 = server.put_media(stream_name, [kvs.header + f[1].data, f[2].data, f[3].data, f[4].data, kvs.trailer], start_timestamp_ms=whole_second_ms(), wait_persisted_timecode=f[4].timecode)
    assert res2.status == 200 and not errors(res2), res2.acks
    p2 = persisted(res2)
    assert p2[f[1].timecode] == p1[f[1].timecode], "a re-sent fragment keeps its existing fragment number"
    assert p2[f[2].timecode] == p1[f[2].timecode]
    assert p2[f[3].timecode] not in p1.values()
    frags = wait_fragments(server, stream_name, 5)
    assert len(frags) == 5, [f["FragmentNumber"] for f in frags]
    reader = get_media(server, stream_name, {"StartSelectorType": "EARLIEST"}, until_fragments=6, timeout=12)
    assert [g.cluster.timecode for g in reader.fragments] == [x.timecode for x in f[:5]]


def test_resend_after_aborted_connection(server, stream_name, clip6):
    """The kvssink recovery path: the connection dies in the middle of a
    fragment; the producer reconnects and re-sends every unacknowledged
    fragment (and some acknowledged ones) with their original timecodes."""
    create_stream(server, stream_name)
    start = whole_second_ms(offset_s=30)
    kvs = ebml.to_kvs_mkv(clip6, timecode_base=start)
    f = kvs.fragments
    s = server.session(stream_name, start_timestamp_ms=start)
    try:
        s.start()
        s.send_body(kvs.header + f[0].data + f[1].data + f[2].data)
        assert s.wait_ack("PERSISTED", f[1].timecode, 10)
        s.send_body(f[3].data[: len(f[3].data) // 2])
        time.sleep(0.3)
    finally:
        s.abort()
    p1 = persisted(s.result())
    res = server.put_media(stream_name, [kvs.header + f[1].data] + [x.data for x in f[2:]] + [kvs.trailer], start_timestamp_ms=whole_second_ms(), wait_persisted_timecode=f[-1].timecode)
    assert res.status == 200 and not errors(res), res.acks
    p2 = persisted(res)
    for tc, number in p1.items():
        assert p2.get(tc, number) == number
    frags = wait_fragments(server, stream_name, len(f))
    assert len(frags) == len(f), "each fragment stored exactly once"
    got = fetch_fragments(server, stream_name, [x["FragmentNumber"] for x in frags])
    assert sorted(g.cluster.timecode for g in got.values()) == [x.timecode for x in f]
    for g in got.values():
        assert block_keys(g.cluster.blocks) == spec_keys(next(x for x in f if x.timecode == g.cluster.timecode))


def test_retention_zero_sends_no_persisted(server, stream_name, clip4):
    server.kv().create_stream(StreamName=stream_name)  # DataRetentionInHours defaults to 0
    assert server.kv().describe_stream(StreamName=stream_name)["StreamInfo"]["DataRetentionInHours"] == 0
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start)
    s = server.session(stream_name, start_timestamp_ms=start)
    try:
        s.start()
        for p in kvs.parts():
            s.send_body(p)
        assert s.wait_ack("RECEIVED", kvs.fragments[-1].timecode, 10), s.result().acks
        time.sleep(1.5)  # time for any (wrong) PERSISTED ack to arrive
        s.end_body()
        s.wait_complete(10)
    finally:
        s.close()
    r = s.result()
    assert r.status == 200
    assert not errors(r)
    for frag in kvs.fragments:
        kinds = [a["EventType"] for a in r.acks if a.get("FragmentTimecode") == frag.timecode]
        assert kinds == ["BUFFERING", "RECEIVED"], (frag.timecode, kinds)
    assert not [a for a in r.acks if a["EventType"] == "PERSISTED"]


def test_putmedia_unknown_stream(server):
    s = server.session(unique_name("nope"))
    try:
        s.start(continue_timeout=5)
        s.wait_for(lambda x: x.status is not None, 5)
        r = s.result()
    finally:
        s.close()
    assert r.status == 404, r
    assert r.header("x-amzn-errortype").split(":")[0] == "ResourceNotFoundException"


def test_putmedia_missing_or_bad_headers(server, stream_name):
    create_stream(server, stream_name)
    for name, kw in (
        (stream_name, {"timecode_type": "SIDEWAYS"}),
        (None, {}),  # neither x-amzn-stream-name nor x-amzn-stream-arn
    ):
        s = server.session(name, **kw)
        try:
            s.start(continue_timeout=5)
            s.wait_for(lambda x: x.status is not None, 5)
            r = s.result()
        finally:
            s.close()
        assert r.status == 400, (kw, r)
        assert r.header("x-amzn-errortype").split(":")[0] == "InvalidArgumentException", (kw, r.headers)


def test_get_media_and_list_fragments_unknown_stream(server):
    name = unique_name("nope")
    med = server.media()
    with pytest.raises(med.exceptions.ResourceNotFoundException):
        med.get_media(StreamName=name, StartSelector={"StartSelectorType": "EARLIEST"})
    arch = server.archived()
    with pytest.raises(arch.exceptions.ResourceNotFoundException):
        arch.list_fragments(StreamName=name)


def _raw(server, path, body: bytes):
    """A signed POST with http.client, tolerant of a server that answers and
    closes before reading a huge body."""
    import http.client
    import ssl
    from types import SimpleNamespace

    req = AWSRequest(method="POST", url=f"{server.endpoint}{path}", data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(server.credentials(), "kinesisvideo", REGION).add_auth(req)
    ctx = ssl.create_default_context(cafile=server.ca_file)
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=30)
    try:
        send_error = None
        try:
            conn.request("POST", path, body=body, headers={**dict(req.headers.items()), "Content-Length": str(len(body))})
        except OSError as e:  # incl. ssl.SSLError: the server refused early; its answer may still be readable
            send_error = e
        try:
            r = conn.getresponse()
            data = r.read()
        except OSError as e:
            raise AssertionError(
                f"no HTTP response to a {len(body)}-byte body (error while sending: {send_error!r}; while reading: {e!r})"
            ) from e
        return SimpleNamespace(status=r.status, headers={k.lower(): v for k, v in r.getheaders()}, data=data)
    finally:
        conn.close()


def _all_streams(server):
    return sorted(
        (s["StreamName"], s["Version"], s["DataRetentionInHours"])
        for s in server.kv().list_streams(MaxResults=10000)["StreamInfoList"]
    )


@pytest.mark.parametrize(
    "path,body",
    [
        ("/createStream", b'{"StreamName": "broken-json"'),
        ("/createStream", b"\xff\xfe not utf-8 {"),
        ("/createStream", b'["an", "array"]'),
        ("/createStream", b'{"StreamName": 42}'),
        ("/createStream", b'{"StreamName": "x", "DataRetentionInHours": "ten"}'),
        ("/createStream", json.dumps({"StreamName": "oversized", "Tags": {f"k{i}": "v" * 200 for i in range(20000)}}).encode()),
        ("/createStream", b'{"StreamName": "' + b"a" * (8 * 1024 * 1024) + b'"}'),
        ("/tagStream", b'{"StreamName": "x", "Tags": "notamap"}'),
        ("/updateDataRetention", b'{"StreamName": "x", "CurrentVersion": "1", "Operation": "SIDEWAYS", "DataRetentionChangeInHours": 1}'),
    ],
    ids=["truncated", "not-utf8", "array", "wrong-type", "wrong-type-2", "oversized-tags", "oversized-8MiB", "tags-not-map", "bad-enum"],
)
def test_malformed_json_rejected_and_nothing_changed(server, path, body):
    before = _all_streams(server)
    r = _raw(server, path, body)
    assert r.status == 400, (r.status, r.data[:300])
    assert r.headers["x-amzn-errortype"].split(":")[0] == "InvalidArgumentException", r.headers
    assert json.loads(r.data).get("message")
    assert _all_streams(server) == before


# ------------------------------------------------ limits on a fragment's tracks and length
def _header_with_tracks(track_numbers: list[int]) -> bytes:
    """EBML header, unknown-size Segment, Info and a Tracks element with one video
    TrackEntry per number (built by hand: the limits below are about the header)."""
    info = ebml.uint_element(ebml.TIMECODE_SCALE, 1_000_000, 8)
    entries = b"".join(
        ebml.element(
            ebml.TRACK_ENTRY,
            ebml.uint_element(ebml.TRACK_NUMBER, n)
            + ebml.uint_element(0x73C5, n, 8)  # TrackUID
            + ebml.uint_element(0x83, 1)  # TrackType video
            + ebml.str_element(ebml.CODEC_ID, "V_MPEG4/ISO/AVC"),
        )
        for n in track_numbers
    )
    return (
        ebml.ebml_header()
        + ebml.encode_id(ebml.SEGMENT)
        + ebml.UNKNOWN_SIZE_1
        + ebml.element(ebml.INFO, info, 2)
        + ebml.element(ebml.TRACKS, entries, 4)
    )


@pytest.mark.parametrize(
    "tracks, blocks, error_id, error_code",
    [
        # A fragment spanning 21 s (the limit is 20 s).
        ([1], [(1, 0, True), (1, 21_000, False)], 4002, "MAX_FRAGMENT_DURATION_REACHED"),
        # A block for a track the header does not declare.
        ([1], [(1, 0, True), (2, 33, False)], 4010, "TRACK_NUMBER_MISMATCH"),
        # A declared track without a frame in the fragment.
        ([1, 2], [(1, 0, True), (1, 33, False)], 4011, "FRAMES_MISSING_FOR_TRACK"),
        # Four tracks (at most three).
        ([1, 2, 3, 4], [(1, 0, True)], 4012, "MORE_THAN_ALLOWED_TRACKS_FOUND"),
    ],
    ids=["duration", "track-mismatch", "frames-missing", "too-many-tracks"],
)
def test_fragment_limits(server, stream_name, tracks, blocks, error_id, error_code):
    create_stream(server, stream_name)
    start = whole_second_ms()
    frame = b"\x00\x00\x00\x02\x09\x10"  # an access unit delimiter NAL, AVCC-framed
    cluster = ebml.make_cluster(start, [(t, rel, key, frame) for t, rel, key in blocks])
    body = _header_with_tracks(tracks) + cluster
    res = server.put_media(stream_name, [body], start_timestamp_ms=start, complete_timeout=10)
    assert res.status == 200
    errs = errors(res)
    assert errs and errs[0]["ErrorId"] == error_id and errs[0]["ErrorCode"] == error_code, res.acks
    assert not persisted(res), res.acks
    assert server.archived().list_fragments(StreamName=stream_name)["Fragments"] == []
