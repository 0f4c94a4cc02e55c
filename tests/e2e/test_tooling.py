"""Checks of the suite's own tooling against independent references (no server):
the EBML walker and kvssink-style rewriter against mkvinfo and ffprobe, and the
PutMedia signer against a from-scratch SigV4 computation."""

from __future__ import annotations

import hashlib
import hmac
import re
import subprocess

from botocore.credentials import Credentials

import ebml
import media
import putmedia


def test_clip_has_one_cluster_per_key_frame(clip4):
    seg = ebml.parse_stream(clip4)[0]
    cls = [ebml.parse_cluster(c) for c in seg.of(ebml.CLUSTER)]
    assert [c.timecode for c in cls] == [0, 1000, 2000, 3000]
    for c in cls:
        assert len(c.blocks) == 30
        assert [b.keyframe for b in c.blocks] == [True] + [False] * 29


def test_kvs_rewrite_matches_mkvinfo_and_decodes(clip4, tmp_path):
    base = 1_700_000_000_000
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=base, user_tags={1: [("color", "blue"), ("k2", "v2")]})
    body = kvs.body()
    path = tmp_path / "kvs.mkv"
    path.write_bytes(body)

    # Layout as the producer SDK writes it.
    assert body.startswith(bytes.fromhex("1a45dfa3"))
    seg_at = body.index(bytes.fromhex("18538067"))
    assert body[seg_at + 4] == 0xFF, "Segment must have the 1-byte unknown size"
    for f in kvs.fragments:
        at = f.data.index(bytes.fromhex("1f43b675"))
        assert f.data[at + 4] == 0xFF, "Cluster must have the 1-byte unknown size"
        assert f.data[at + 5 : at + 7] == bytes.fromhex("e788"), "8-byte Timecode"

    # Our walker round-trips the frames.
    cls = ebml.clusters(body)
    assert [c.timecode for c in cls] == [base, base + 1000, base + 2000, base + 3000]
    src_frames = [f.frame for f in ebml.source_frames(clip4)[1]]
    assert [fr for c in cls for fr in c.frames] == src_frames
    seg = ebml.parse_stream(body)[0]
    tags = [ebml.parse_tags(t) for t in seg.of(ebml.TAGS)]
    assert tags == [[("color", "blue"), ("k2", "v2")], [(ebml.END_OF_FRAGMENT, "")]]

    # mkvinfo (an independent parser) sees the same structure.
    out = subprocess.run(["mkvinfo", "-v", str(path)], capture_output=True, text=True, check=True).stdout
    assert out.count("+ Cluster\n") == 4
    assert len(re.findall(r"Simple block: key, track number 1", out)) == 4
    assert len(re.findall(r"Simple block: track number 1", out)) == 116
    assert "Name: color" in out and "String: blue" in out
    assert "AWS_KINESISVIDEO_END_OF_FRAGMENT" in out

    info = media.ffprobe_count_frames(path)
    assert info["returncode"] == 0, info["stderr"]
    assert (info["codec_name"], info["width"], info["height"], info["nb_read_frames"]) == ("h264", "320", "240", "120")


def test_walker_handles_truncation(clip4):
    body = ebml.to_kvs_mkv(clip4, timecode_base=0).body()
    cut = body[: len(body) // 2]
    segs = ebml.parse_stream(cut, strict=False)
    assert len(segs) == 1
    # Unknown-size clusters: the cut one still parses (its blocks up to the cut),
    # the walker must not invent data beyond the end.
    got = [ebml.parse_cluster(c) for c in segs[0].of(ebml.CLUSTER)]
    assert 1 <= len(got) <= 2 and not segs[0].complete
    assert sum(len(c.frame) for cl in got for c in cl.blocks) < len(cut)
    try:
        ebml.parse_stream(cut[:-7])
        raise AssertionError("strict parsing of a truncated stream must fail")
    except ebml.Truncated:
        pass


def _independent_sigv4(method, path, headers, signed, payload_hash, secret, date, region):
    canon_headers = "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed)
    creq = "\n".join([method, path, "", canon_headers, ";".join(signed), payload_hash])
    scope = f"{date[:8]}/{region}/kinesisvideo/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (date[:8], region, "kinesisvideo", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


def _parse_request(raw: bytes):
    head = raw.decode("latin-1").split("\r\n\r\n")[0].split("\r\n")
    assert head[0] == "POST /putMedia HTTP/1.1"
    headers = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return headers


def test_putmedia_signature_is_the_c_producers():
    s = putmedia.PutMediaSession(
        "127.0.0.1",
        8443,
        credentials=Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        ca_file=None,
        stream_name="my-stream",
        start_timestamp_ms=1_700_000_000_123,
    )
    h = _parse_request(s.build_request())
    assert h["host"] == "127.0.0.1", "Host must not carry the port (like libcurl in the C producer)"
    assert h["x-amzn-producer-start-timestamp"] == "1700000000.123"
    assert h["expect"] == "100-continue"
    assert h["transfer-encoding"] == "chunked"
    auth = h["authorization"]
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/(\d{8})/us-west-2/kinesisvideo/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})", auth)
    assert m, auth
    signed = m.group(2).split(";")
    assert signed == list(putmedia.PRODUCER_SIGNED_HEADERS)
    expected = _independent_sigv4(
        "POST", "/putMedia", h, signed, hashlib.sha256(b"").hexdigest(), "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", h["x-amz-date"], "us-west-2"
    )
    assert m.group(3) == expected


def test_putmedia_streaming_payload_signature():
    s = putmedia.PutMediaSession(
        "127.0.0.1", 8443, credentials=Credentials("AK", "SK"), ca_file=None, stream_name="s", streaming_payload=True
    )
    h = _parse_request(s.build_request())
    m = re.search(r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})", h["authorization"])
    signed = m.group(1).split(";")
    assert "x-amz-content-sha256" in signed
    assert h["x-amz-content-sha256"] == putmedia.STREAMING_PAYLOAD
    assert m.group(2) == _independent_sigv4("POST", "/putMedia", h, signed, putmedia.STREAMING_PAYLOAD, "SK", h["x-amz-date"], "us-west-2")


def test_walker_reads_a_real_aws_getmedia_capture():
    from pathlib import Path

    # The shared fixtures sit beside the repository root (../shared), as in CI.
    fixtures = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "kvs-getmedia"
    data = (fixtures / "test_mixed_tags.mkv").read_bytes()
    frags = ebml.getmedia_fragments(data)
    assert len(frags) == 10
    numbers = [int(f.fragment_number) for f in frags]
    assert numbers == sorted(numbers) and len(str(numbers[0])) == 47
    assert frags[0].raw_server_timestamp == "1537574915.281"
    assert [f.producer_timestamp for f in frags[:3]] == [0.0, 5.0, 10.0]
    assert [f.cluster.timecode for f in frags[:3]] == [0, 5000, 10000]
    assert all(f.continuation_token == f.fragment_number for f in frags)
    assert all(f.millis_behind_now.isdigit() for f in frags)
    assert all(len(f.cluster.blocks) == 10 for f in frags)
    assert ("testTag_0", "testTag_0_Value") in frags[0].user_tags
