"""SigV4 authentication: real signatures from botocore, real failures."""

from __future__ import annotations

import json

import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import putmedia
from conftest import REGION, create_stream, unique_name


def raw_request(server, path, body: bytes, *, signer=None, headers=None, endpoint=None, url=None):
    """Send one HTTP/1.1 request (optionally signed by ``signer``) and return
    (status, headers, parsed JSON body or raw bytes)."""
    endpoint = endpoint or server.endpoint
    url = url or f"{endpoint}{path}"
    req = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json", **(headers or {})})
    if signer is not None:
        signer.add_auth(req)
    http = urllib3.PoolManager(ca_certs=server.ca_file, cert_reqs="CERT_REQUIRED")
    r = http.request("POST", req.url, body=body, headers=dict(req.headers.items()), retries=False, timeout=10)
    try:
        data = json.loads(r.data or b"{}")
    except ValueError:
        data = r.data
    return r.status, {k.lower(): v for k, v in r.headers.items()}, data


def error_type(headers) -> str:
    return headers.get("x-amzn-errortype", "").split(":")[0]


def test_signed_raw_request_accepted(server):
    status, headers, body = raw_request(server, "/listStreams", b"{}", signer=SigV4Auth(server.credentials(), "kinesisvideo", REGION))
    assert status == 200, body
    assert "StreamInfoList" in body


def test_any_region_accepted(server):
    for region in ("eu-central-1", "ap-southeast-2", "us-gov-west-1"):
        status, _, body = raw_request(server, "/listStreams", b"{}", signer=SigV4Auth(server.credentials(), "kinesisvideo", region))
        assert status == 200, (region, body)


def test_unsigned_request(server):
    status, headers, body = raw_request(server, "/listStreams", b"{}")
    assert status == 403
    assert error_type(headers) == "MissingAuthenticationTokenException"
    assert isinstance(body, dict) and body.get("message")


def test_unknown_access_key(server):
    kv = server.kv(creds=Credentials("AKIAUNKNOWNKEY000000", "x" * 40))
    with pytest.raises(kv.exceptions.ClientError) as e:
        kv.list_streams()
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_wrong_secret(server):
    good = server.credentials()
    kv = server.kv(creds=Credentials(good.access_key, good.secret_key[:-1] + ("A" if good.secret_key[-1] != "A" else "B")))
    with pytest.raises(kv.exceptions.ClientError) as e:
        kv.list_streams()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_tampered_body_rejected(server):
    """The signature covers the body hash of control-plane requests."""
    name = unique_name("tamper")
    req = AWSRequest(method="POST", url=f"{server.endpoint}/createStream", data=json.dumps({"StreamName": name}).encode(), headers={"Content-Type": "application/json"})
    SigV4Auth(server.credentials(), "kinesisvideo", REGION).add_auth(req)
    tampered = json.dumps({"StreamName": name + "x"}).encode()
    http = urllib3.PoolManager(ca_certs=server.ca_file)
    r = http.request("POST", req.url, body=tampered, headers=dict(req.headers.items()), retries=False)
    assert r.status == 403
    assert r.headers["x-amzn-ErrorType"].split(":")[0] == "InvalidSignatureException"
    kv = server.kv()
    for n in (name, name + "x"):
        with pytest.raises(kv.exceptions.ResourceNotFoundException):
            kv.describe_stream(StreamName=n)


def test_tampered_signed_header_rejected(server):
    req = AWSRequest(method="POST", url=f"{server.endpoint}/listStreams", data=b"{}", headers={"Content-Type": "application/json", "X-Custom": "a"})
    SigV4Auth(server.credentials(), "kinesisvideo", REGION).add_auth(req)
    assert "x-custom" in req.headers["Authorization"]
    headers = dict(req.headers.items())
    headers["X-Custom"] = "b"
    r = urllib3.PoolManager(ca_certs=server.ca_file).request("POST", req.url, body=b"{}", headers=headers, retries=False)
    assert r.status == 403
    assert r.headers["x-amzn-ErrorType"].split(":")[0] == "InvalidSignatureException"


@pytest.mark.parametrize("skew_min", [16, -16])
def test_clock_skew_over_15_minutes_rejected(server, skew_min):
    signer = putmedia.ShiftedSigV4Auth(server.credentials(), REGION, clock_offset=skew_min * 60)
    status, headers, body = raw_request(server, "/listStreams", b"{}", signer=signer)
    assert status == 403, body
    assert error_type(headers) == "InvalidSignatureException"


@pytest.mark.parametrize("skew_min", [14, -14])
def test_clock_skew_under_15_minutes_accepted(server, skew_min):
    signer = putmedia.ShiftedSigV4Auth(server.credentials(), REGION, clock_offset=skew_min * 60)
    status, headers, body = raw_request(server, "/listStreams", b"{}", signer=signer)
    assert status == 200, (headers, body)


def test_presigned_query_auth_accepted(server, stream_name):
    create_stream(server, stream_name)
    body = json.dumps({"StreamName": stream_name}).encode()
    req = AWSRequest(method="POST", url=f"{server.endpoint}/describeStream", data=body, headers={"Content-Type": "application/json"})
    putmedia.BodyKeepingQueryAuth(server.credentials(), "kinesisvideo", REGION, expires=300).add_auth(req)
    assert "X-Amz-Signature=" in req.url and "Authorization" not in req.headers
    r = urllib3.PoolManager(ca_certs=server.ca_file).request("POST", req.url, body=body, headers={"Content-Type": "application/json"}, retries=False)
    assert r.status == 200, r.data
    assert json.loads(r.data)["StreamInfo"]["StreamName"] == stream_name


def test_presigned_query_auth_bad_signature(server):
    body = b"{}"
    req = AWSRequest(method="POST", url=f"{server.endpoint}/listStreams", data=body, headers={"Content-Type": "application/json"})
    putmedia.BodyKeepingQueryAuth(server.credentials(), "kinesisvideo", REGION, expires=300).add_auth(req)
    sig_at = req.url.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    flipped = req.url[:sig_at] + ("0" if req.url[sig_at] != "0" else "1") + req.url[sig_at + 1 :]
    r = urllib3.PoolManager(ca_certs=server.ca_file).request("POST", flipped, body=body, headers={"Content-Type": "application/json"}, retries=False)
    assert r.status == 403
    assert r.headers["x-amzn-ErrorType"].split(":")[0] == "InvalidSignatureException"


def test_presigned_query_auth_expired(server):
    body = b"{}"
    req = AWSRequest(method="POST", url=f"{server.endpoint}/listStreams", data=body, headers={"Content-Type": "application/json"})
    signer = putmedia.BodyKeepingQueryAuth(server.credentials(), "kinesisvideo", REGION, expires=60)
    # Signed 10 minutes ago with a 60 s lifetime: expired (and still inside the 15 min skew window).
    import datetime

    from botocore.auth import SIGV4_TIMESTAMP
    from botocore.compat import get_current_datetime

    req.context["timestamp"] = (get_current_datetime() - datetime.timedelta(minutes=10)).strftime(SIGV4_TIMESTAMP)
    signer._modify_request_before_signing(req)
    sig = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
    signer._inject_signature_to_request(req, sig)
    r = urllib3.PoolManager(ca_certs=server.ca_file).request("POST", req.url, body=body, headers={"Content-Type": "application/json"}, retries=False)
    assert r.status == 403, r.data


def _putmedia_refused(server, stream, **kw):
    s = server.session(stream, **kw)
    try:
        s.start(continue_timeout=5)
        s.wait_for(lambda x: x.status is not None, 5)
        if not s.refused():
            # Not refused before the body: send a little and see what comes back.
            s.send_body(b"\x1a\x45\xdf\xa3")
            s.end_body()
            s.wait_complete(5)
        return s.result()
    finally:
        s.close()


def test_putmedia_auth_failures(server, stream_name):
    create_stream(server, stream_name)
    good = server.credentials()
    r = _putmedia_refused(server, stream_name, sign=False)
    assert r.status == 403 and r.header("x-amzn-errortype").split(":")[0] == "MissingAuthenticationTokenException", r
    r = _putmedia_refused(server, stream_name, credentials=Credentials("AKIAUNKNOWNKEY000000", "y" * 40))
    assert r.status == 403 and r.header("x-amzn-errortype").split(":")[0] == "UnrecognizedClientException", r
    r = _putmedia_refused(server, stream_name, credentials=Credentials(good.access_key, "wrong" + good.secret_key))
    assert r.status == 403 and r.header("x-amzn-errortype").split(":")[0] == "InvalidSignatureException", r
    r = _putmedia_refused(server, stream_name, clock_offset=16 * 60)
    assert r.status == 403 and r.header("x-amzn-errortype").split(":")[0] == "InvalidSignatureException", r
    # A signed header changed after signing (the stream name header is signed).
    s = server.session(stream_name)
    raw = s.build_request().replace(f"x-amzn-stream-name: {stream_name}".encode(), f"x-amzn-stream-name: {stream_name}X".encode())
    s.connect()
    try:
        s.send_raw(raw)
        s.wait_for(lambda x: x.status is not None, 5)
        r = s.result()
    finally:
        s.close()
    assert r.status == 403 and r.header("x-amzn-errortype").split(":")[0] == "InvalidSignatureException", r
    assert server.archived().list_fragments(StreamName=stream_name)["Fragments"] == []


def test_putmedia_host_header_with_port_accepted(server, stream_name, clip4):
    """libcurl sends Host without the port, the Java SDK and botocore with it:
    the signature is checked against the Host header as received."""
    import ebml
    from conftest import whole_second_ms

    create_stream(server, stream_name)
    start = whole_second_ms()
    kvs = ebml.to_kvs_mkv(clip4, timecode_base=start)
    res = server.put_media(
        stream_name, kvs.parts(), host_header=f"127.0.0.1:{server.data_port}", start_timestamp_ms=start,
        wait_persisted_timecode=kvs.fragments[-1].timecode,
    )
    assert res.status == 200, (res.status, res.body[:300])
    assert len([a for a in res.acks if a["EventType"] == "PERSISTED"]) == 4
