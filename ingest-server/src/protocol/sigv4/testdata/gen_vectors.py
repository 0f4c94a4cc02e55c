#!/usr/bin/env python3
"""Generate SigV4 test vectors with botocore, an implementation independent of ours.

Run from this directory (needs `pip install botocore`, tested with 1.43.11):

    python3 gen_vectors.py > botocore_vectors.json

The signing time is frozen at 2015-08-30T12:36:00Z so the output is reproducible
byte for byte. Each vector is the request exactly as it goes on the wire (method,
raw path+query, headers in order, body); `verify()` must accept it at `now`.

Notes on what botocore does that matters to a verifier:
* SigV4Auth signs every header present except a blacklist (connection, expect,
  transfer-encoding, user-agent, ...). The Kinesis Video C producer signs
  `connection`, `transfer-encoding` and `user-agent` too, so for that vector we
  use a subclass that drops the blacklist; everything else is botocore's code.
* Non-S3 signers URI-encode the path again (`quote(path, safe='/~')`), so a path
  sent as `/a%20b` is canonicalized as `/a%2520b`.
* SigV4QueryAuth (generic presigned URL) signs the payload hash (empty-body hash
  for GET); S3SigV4QueryAuth signs the literal UNSIGNED-PAYLOAD.
"""

import datetime
import json
import sys
from unittest import mock

import botocore
from botocore.auth import S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

NOW = datetime.datetime(2015, 8, 30, 12, 36, 0, tzinfo=datetime.timezone.utc)
AK = "AKIAIOSFODNN7EXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class SignAllHeaders(SigV4Auth):
    """SigV4Auth without botocore's blacklist of unsigned headers."""

    def headers_to_sign(self, request):
        from botocore.awsrequest import HTTPHeaders

        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            header_map[name.lower()] = value
        return header_map


def sign(name, auth, method, url, headers, body=b"", params=None, payload="body"):
    req = AWSRequest(method=method, url=url, headers=headers, data=body, params=params or {})
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        auth.add_auth(req)
    prepared = req.prepare()
    # `prepared.url` is the absolute URL as sent; keep the origin-form target.
    target = prepared.url.split("://", 1)[1]
    target = target[target.index("/"):]
    out_headers = [[k, v] for k, v in prepared.headers.items()]
    return {
        "name": name,
        "method": method,
        "target": target,
        "headers": out_headers,
        "body": (body or b"").decode("utf-8"),
        "payload": payload,
        "service": auth._service_name,
        "region": auth._region_name,
        "access_key_id": AK,
        "secret_access_key": SK,
        "now": NOW.strftime("%Y%m%dT%H%M%SZ"),
    }


def main():
    creds = Credentials(AK, SK)
    kvs_w2 = SigV4Auth(creds, "kinesisvideo", "us-west-2")
    vectors = []

    # A REST-JSON control-plane call, as boto3 would send it to AWS.
    vectors.append(
        sign(
            "describe-stream-json",
            kvs_w2,
            "POST",
            "https://kinesisvideo.us-west-2.amazonaws.com/describeStream",
            {
                "Host": "kinesisvideo.us-west-2.amazonaws.com",
                "Content-Type": "application/json",
                "User-Agent": "Boto3/1.40 md/Botocore#1.43.11",
            },
            body=b'{"StreamName":"my-stream"}',
        )
    )

    # Same against a local server on a non-default port: botocore puts the
    # port in Host.
    vectors.append(
        sign(
            "list-fragments-local-port",
            SigV4Auth(creds, "kinesisvideo", "eu-central-1"),
            "POST",
            "https://127.0.0.1:4443/listFragments",
            {"Host": "127.0.0.1:4443", "Content-Type": "application/json"},
            body=b'{"StreamName":"cam-1","MaxResults":10}',
        )
    )

    # PutMedia as the Kinesis Video C producer sends it: these exact signed
    # headers, Host without the port although the connection is to :8443,
    # chunked body not hashed (empty-body hash in the canonical request).
    vectors.append(
        sign(
            "put-media-c-producer",
            SignAllHeaders(creds, "kinesisvideo", "us-west-2"),
            "POST",
            "https://127.0.0.1:8443/putMedia",
            {
                "connection": "keep-alive",
                "host": "127.0.0.1",
                "transfer-encoding": "chunked",
                "user-agent": "AWS-SDK-KVS/3.4.1 GCC/11.4.0 Linux/6.8.0 x86_64",
                "x-amzn-fragment-acknowledgment-required": "1",
                "x-amzn-fragment-timecode-type": "ABSOLUTE",
                "x-amzn-producer-start-timestamp": "1440938160.000",
                "x-amzn-stream-name": "my-stream",
            },
            body=b"",
            payload="streaming",
        )
    )

    # Path needing encoding: sent as /streams/my%20stream, canonicalized as
    # /streams/my%2520stream by non-S3 signers.
    vectors.append(
        sign(
            "path-double-encoding",
            kvs_w2,
            "GET",
            "https://127.0.0.1:4443/streams/my%20stream/info",
            {"Host": "127.0.0.1:4443"},
        )
    )

    # Query parameters needing encoding (space, UTF-8, reserved, empty value),
    # and repeated parameters sorted by value.
    vectors.append(
        sign(
            "query-encoding",
            kvs_w2,
            "GET",
            "https://127.0.0.1:4443/getImages",
            {"Host": "127.0.0.1:4443"},
            params=[
                ("StreamName", "cam 1/\u1234"),
                ("b", "2"),
                ("a", "z"),
                ("a", "a"),
                ("Empty", ""),
                ("sym", "a+b=c&d*e~"),
            ],
        )
    )

    # Date header instead of X-Amz-Date (botocore then signs `date`).
    vectors.append(
        sign(
            "date-header",
            kvs_w2,
            "POST",
            "https://kinesisvideo.us-west-2.amazonaws.com/listStreams",
            {
                "Host": "kinesisvideo.us-west-2.amazonaws.com",
                "Date": "placeholder",
                "Content-Type": "application/json",
            },
            body=b"{}",
        )
    )

    # Presigned URL, generic signer: payload hash = empty-body hash.
    vectors.append(
        sign(
            "presigned-generic",
            SigV4QueryAuth(creds, "kinesisvideo", "us-west-2", expires=300),
            "GET",
            "https://127.0.0.1:4443/getHLSMasterPlaylist",
            {"Host": "127.0.0.1:4443"},
            params={"SessionToken": "abc/def+ghi=="},
            payload="streaming",
        )
    )

    # Presigned URL, S3-style signer: payload hash = UNSIGNED-PAYLOAD, path
    # not re-encoded.
    vectors.append(
        sign(
            "presigned-unsigned-payload",
            S3SigV4QueryAuth(creds, "kinesisvideo", "ap-northeast-1", expires=604800),
            "GET",
            "https://127.0.0.1:4443/getMedia",
            {"Host": "127.0.0.1:4443"},
            payload="streaming",
        )
    )

    json.dump(
        {"generator": f"botocore {botocore.__version__}", "vectors": vectors},
        sys.stdout,
        indent=1,
        ensure_ascii=False,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
