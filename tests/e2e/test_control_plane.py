"""Control plane through the real boto3 client and the real AWS CLI."""

from __future__ import annotations

import datetime
import re
import time

import pytest

from conftest import HOST, REGION, create_stream, unique_name

ARN_RE = re.compile(r"^arn:aws:kinesisvideo:[a-z0-9-]+:\d{12}:stream/(?P<name>[a-zA-Z0-9_.-]+)/\d+$")


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def http_status(excinfo) -> int:
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_main_listener_offers_h2_and_data_listener_only_http11(server):
    assert server.tls_probe(server.port, ("h2", "http/1.1")) == "h2"
    assert server.tls_probe(server.port, ("http/1.1",)) == "http/1.1"
    assert server.tls_probe(server.data_port, ("h2", "http/1.1")) == "http/1.1"


def test_startup_wrote_ca_and_credentials_and_logged_listening(server):
    creds = server.credentials()
    assert creds.access_key and creds.secret_key
    assert "BEGIN CERTIFICATE" in open(server.ca_file).read()
    assert "listening" in server.log()


def test_create_describe_stream(server, stream_name):
    kv = server.kv()
    before = datetime.datetime.now(datetime.timezone.utc)
    arn = kv.create_stream(StreamName=stream_name, DeviceName="cam-1", MediaType="video/h264")["StreamARN"]
    m = ARN_RE.match(arn)
    assert m and m.group("name") == stream_name, arn

    info = kv.describe_stream(StreamName=stream_name)["StreamInfo"]
    assert info["StreamName"] == stream_name
    assert info["StreamARN"] == arn
    assert info["Status"] == "ACTIVE"
    assert info["DeviceName"] == "cam-1"
    assert info["MediaType"] == "video/h264"
    assert info["DataRetentionInHours"] == 0
    assert info["Version"]
    assert before - datetime.timedelta(seconds=5) <= info["CreationTime"] <= datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)

    by_arn = kv.describe_stream(StreamARN=arn)["StreamInfo"]
    assert by_arn == info


def test_create_with_retention_and_tags(server, stream_name):
    kv = server.kv()
    arn = kv.create_stream(StreamName=stream_name, DataRetentionInHours=48, Tags={"team": "video", "env": "test"})["StreamARN"]
    assert kv.describe_stream(StreamARN=arn)["StreamInfo"]["DataRetentionInHours"] == 48
    assert kv.list_tags_for_stream(StreamName=stream_name)["Tags"] == {"team": "video", "env": "test"}
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "video", "env": "test"}


def test_duplicate_stream_name(server, stream_name):
    kv = server.kv()
    kv.create_stream(StreamName=stream_name)
    with pytest.raises(kv.exceptions.ResourceInUseException) as e:
        kv.create_stream(StreamName=stream_name)
    assert http_status(e) == 400


@pytest.mark.parametrize("bad", ["has space", "slash/name", "x" * 257, "ünïcode", "semi;colon"])
def test_invalid_stream_names(server, bad):
    kv = server.kv(parameter_validation=False)
    with pytest.raises(kv.exceptions.InvalidArgumentException) as e:
        kv.create_stream(StreamName=bad)
    assert http_status(e) == 400
    assert e.value.response["Error"]["Message"]
    names = [s["StreamName"] for s in kv.list_streams(MaxResults=10000)["StreamInfoList"]]
    assert bad not in names


def test_longest_valid_name_and_all_allowed_characters(server):
    kv = server.kv()
    name = ("aZ09_.-" + unique_name("n")) + "x" * 256
    name = name[:256]
    kv.create_stream(StreamName=name)
    assert kv.describe_stream(StreamName=name)["StreamInfo"]["StreamName"] == name
    kv.delete_stream(StreamARN=kv.describe_stream(StreamName=name)["StreamInfo"]["StreamARN"])


def test_invalid_arguments_rejected(server, stream_name):
    kv = server.kv(parameter_validation=False)
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.create_stream(StreamName=stream_name, DataRetentionInHours=-1)
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.list_streams(MaxResults=0)
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.get_data_endpoint(StreamName=stream_name, APIName="NOT_AN_API")
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.describe_stream(StreamName=stream_name)


def test_unknown_stream_is_404(server):
    kv = server.kv()
    name = unique_name("missing")
    calls = [
        lambda: kv.describe_stream(StreamName=name),
        lambda: kv.get_data_endpoint(StreamName=name, APIName="GET_MEDIA"),
        lambda: kv.list_tags_for_stream(StreamName=name),
        lambda: kv.tag_stream(StreamName=name, Tags={"a": "b"}),
        lambda: kv.update_data_retention(StreamName=name, CurrentVersion="x", Operation="INCREASE_DATA_RETENTION", DataRetentionChangeInHours=1),
        lambda: kv.delete_stream(StreamARN=f"arn:aws:kinesisvideo:{REGION}:123456789012:stream/{name}/1"),
    ]
    for call in calls:
        with pytest.raises(kv.exceptions.ResourceNotFoundException) as e:
            call()
        assert http_status(e) == 404
        assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"].startswith("ResourceNotFoundException")


def test_list_streams_pagination_and_prefix(server):
    kv = server.kv()
    prefix = unique_name("page")
    names = sorted(f"{prefix}-{i:02d}" for i in range(7))
    for n in names:
        kv.create_stream(StreamName=n)
    kv.create_stream(StreamName=unique_name("other"))

    pages = list(
        kv.get_paginator("list_streams").paginate(
            StreamNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": prefix},
            PaginationConfig={"PageSize": 2},
        )
    )
    got = [s["StreamName"] for p in pages for s in p["StreamInfoList"]]
    assert sorted(got) == names
    assert len(got) == len(set(got))
    assert len(pages) >= 4, "PageSize 2 over 7 streams needs at least 4 pages"
    assert all(len(p["StreamInfoList"]) <= 2 for p in pages)
    assert "NextToken" not in pages[-1]
    for p in pages:
        for s in p["StreamInfoList"]:
            assert s["Status"] == "ACTIVE" and ARN_RE.match(s["StreamARN"])

    first = kv.list_streams(MaxResults=3, StreamNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": prefix})
    assert len(first["StreamInfoList"]) == 3 and first["NextToken"]
    rest = kv.list_streams(MaxResults=100, NextToken=first["NextToken"], StreamNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": prefix})
    assert sorted([s["StreamName"] for s in first["StreamInfoList"] + rest["StreamInfoList"]]) == names


def test_delete_stream_with_version(server, stream_name):
    kv = server.kv()
    arn = kv.create_stream(StreamName=stream_name)["StreamARN"]
    version = kv.describe_stream(StreamARN=arn)["StreamInfo"]["Version"]
    with pytest.raises(kv.exceptions.VersionMismatchException) as e:
        kv.delete_stream(StreamARN=arn, CurrentVersion=("0" if version[0] != "0" else "1") + version[1:])
    assert http_status(e) == 400
    assert kv.describe_stream(StreamARN=arn)["StreamInfo"]["Status"] == "ACTIVE"

    kv.delete_stream(StreamARN=arn, CurrentVersion=version)
    deadline = time.monotonic() + 5
    while True:
        try:
            status = kv.describe_stream(StreamARN=arn)["StreamInfo"]["Status"]
            assert status == "DELETING", status
        except kv.exceptions.ResourceNotFoundException:
            break
        assert time.monotonic() < deadline, "stream still describable 5 s after DeleteStream"
        time.sleep(0.2)
    assert stream_name not in [s["StreamName"] for s in kv.list_streams(MaxResults=10000)["StreamInfoList"]]
    # The name can be reused.
    arn2 = kv.create_stream(StreamName=stream_name)["StreamARN"]
    assert arn2 != arn


def test_delete_without_version(server, stream_name):
    kv = server.kv()
    arn = kv.create_stream(StreamName=stream_name)["StreamARN"]
    kv.delete_stream(StreamARN=arn)
    deadline = time.monotonic() + 5
    while True:
        try:
            kv.describe_stream(StreamName=stream_name)
        except kv.exceptions.ResourceNotFoundException:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_update_stream(server, stream_name):
    kv = server.kv()
    kv.create_stream(StreamName=stream_name, DeviceName="old", MediaType="video/h264")
    v1 = kv.describe_stream(StreamName=stream_name)["StreamInfo"]["Version"]
    with pytest.raises(kv.exceptions.VersionMismatchException):
        kv.update_stream(StreamName=stream_name, CurrentVersion=v1 + "x", DeviceName="nope")
    kv.update_stream(StreamName=stream_name, CurrentVersion=v1, DeviceName="new", MediaType="video/h265")
    info = kv.describe_stream(StreamName=stream_name)["StreamInfo"]
    assert (info["DeviceName"], info["MediaType"]) == ("new", "video/h265")
    assert info["Version"] != v1
    with pytest.raises(kv.exceptions.VersionMismatchException):
        kv.update_stream(StreamName=stream_name, CurrentVersion=v1, DeviceName="stale")
    assert kv.describe_stream(StreamName=stream_name)["StreamInfo"]["DeviceName"] == "new"


def test_update_data_retention(server, stream_name):
    kv = server.kv()
    kv.create_stream(StreamName=stream_name)
    v = kv.describe_stream(StreamName=stream_name)["StreamInfo"]["Version"]
    kv.update_data_retention(StreamName=stream_name, CurrentVersion=v, Operation="INCREASE_DATA_RETENTION", DataRetentionChangeInHours=5)
    info = kv.describe_stream(StreamName=stream_name)["StreamInfo"]
    assert info["DataRetentionInHours"] == 5 and info["Version"] != v
    with pytest.raises(kv.exceptions.VersionMismatchException):
        kv.update_data_retention(StreamName=stream_name, CurrentVersion=v, Operation="DECREASE_DATA_RETENTION", DataRetentionChangeInHours=1)
    assert kv.describe_stream(StreamName=stream_name)["StreamInfo"]["DataRetentionInHours"] == 5
    kv.update_data_retention(StreamARN=info["StreamARN"], CurrentVersion=info["Version"], Operation="DECREASE_DATA_RETENTION", DataRetentionChangeInHours=2)
    assert kv.describe_stream(StreamName=stream_name)["StreamInfo"]["DataRetentionInHours"] == 3


def test_get_data_endpoint_for_every_api(server, stream_name):
    kv = server.kv()
    kv.create_stream(StreamName=stream_name)
    for api in [
        "PUT_MEDIA",
        "GET_MEDIA",
        "LIST_FRAGMENTS",
        "GET_MEDIA_FOR_FRAGMENT_LIST",
        "GET_HLS_STREAMING_SESSION_URL",
        "GET_DASH_STREAMING_SESSION_URL",
        "GET_CLIP",
        "GET_IMAGES",
    ]:
        ep = kv.get_data_endpoint(StreamName=stream_name, APIName=api)["DataEndpoint"]
        assert ep == f"https://{HOST}:{server.data_port}", (api, ep)
    arn = kv.describe_stream(StreamName=stream_name)["StreamInfo"]["StreamARN"]
    assert kv.get_data_endpoint(StreamARN=arn, APIName="GET_MEDIA")["DataEndpoint"] == server.data_endpoint


def test_get_data_endpoint_uses_the_host_the_client_used(server, stream_name):
    # Certificate verification is covered everywhere else; here only the host
    # echo matters, so "localhost" is used without relying on a SAN for it.
    server.kv().create_stream(StreamName=stream_name)
    kv = server.kv(endpoint=f"https://localhost:{server.port}", verify=False)
    ep = kv.get_data_endpoint(StreamName=stream_name, APIName="GET_MEDIA")["DataEndpoint"]
    assert ep == f"https://localhost:{server.data_port}"


def test_data_endpoint_serves_the_control_plane_too(server, stream_name):
    kv = server.kv(endpoint=server.data_endpoint)
    kv.create_stream(StreamName=stream_name)
    assert server.kv().describe_stream(StreamName=stream_name)["StreamInfo"]["Status"] == "ACTIVE"


def test_tag_untag_stream_and_resource(server, stream_name):
    kv = server.kv()
    arn = kv.create_stream(StreamName=stream_name)["StreamARN"]
    assert kv.list_tags_for_stream(StreamName=stream_name).get("Tags", {}) == {}
    kv.tag_stream(StreamName=stream_name, Tags={"a": "1", "b": "2"})
    kv.tag_stream(StreamARN=arn, Tags={"b": "3", "c": "4"})
    assert kv.list_tags_for_stream(StreamARN=arn)["Tags"] == {"a": "1", "b": "3", "c": "4"}
    kv.untag_stream(StreamName=stream_name, TagKeyList=["a", "zz"])
    assert kv.list_tags_for_stream(StreamName=stream_name)["Tags"] == {"b": "3", "c": "4"}

    kv.tag_resource(ResourceARN=arn, Tags=[{"Key": "d", "Value": "5"}])
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"b": "3", "c": "4", "d": "5"}
    kv.untag_resource(ResourceARN=arn, TagKeyList=["b", "d"])
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"c": "4"}
    assert kv.list_tags_for_stream(StreamName=stream_name)["Tags"] == {"c": "4"}

    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.list_tags_for_resource(ResourceARN=arn.replace(stream_name, stream_name + "-nope"))


def test_aws_cli_control_plane(server, stream_name):
    cli = server.aws_cli
    arn = cli("kinesisvideo", "create-stream", "--stream-name", stream_name, "--data-retention-in-hours", "2", "--media-type", "video/h264").json["StreamARN"]
    assert ARN_RE.match(arn)
    info = cli("kinesisvideo", "describe-stream", "--stream-name", stream_name).json["StreamInfo"]
    assert (info["StreamName"], info["Status"], info["DataRetentionInHours"]) == (stream_name, "ACTIVE", 2)
    listed = cli("kinesisvideo", "list-streams", "--stream-name-condition", f"ComparisonOperator=BEGINS_WITH,ComparisonValue={stream_name}").json
    assert [s["StreamName"] for s in listed["StreamInfoList"]] == [stream_name]
    ep = cli("kinesisvideo", "get-data-endpoint", "--stream-name", stream_name, "--api-name", "GET_MEDIA").json["DataEndpoint"]
    assert ep == server.data_endpoint
    cli("kinesisvideo", "tag-stream", "--stream-name", stream_name, "--tags", "k1=v1,k2=v2")
    assert cli("kinesisvideo", "list-tags-for-stream", "--stream-name", stream_name).json["Tags"] == {"k1": "v1", "k2": "v2"}
    cli(
        "kinesisvideo", "update-data-retention", "--stream-name", stream_name, "--current-version", info["Version"],
        "--operation", "INCREASE_DATA_RETENTION", "--data-retention-change-in-hours", "3",
    )
    assert cli("kinesisvideo", "describe-stream", "--stream-arn", arn).json["StreamInfo"]["DataRetentionInHours"] == 5
    cli("kinesisvideo", "delete-stream", "--stream-arn", arn)
    res = cli("kinesisvideo", "describe-stream", "--stream-name", stream_name, check=False)
    deadline = time.monotonic() + 5
    while res.returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.3)
        res = cli("kinesisvideo", "describe-stream", "--stream-name", stream_name, check=False)
    assert res.returncode != 0
    assert "ResourceNotFoundException" in res.stderr


def test_aws_cli_errors(server, stream_name):
    server.aws_cli("kinesisvideo", "create-stream", "--stream-name", stream_name)
    res = server.aws_cli("kinesisvideo", "create-stream", "--stream-name", stream_name, check=False)
    assert res.returncode != 0 and "ResourceInUseException" in res.stderr
    res = server.aws_cli("kinesisvideo", "describe-stream", "--stream-name", stream_name + "-missing", check=False)
    assert res.returncode != 0 and "ResourceNotFoundException" in res.stderr


def test_control_plane_over_http2(server, stream_name):
    """boto3 speaks HTTP/1.1; a raw HTTP/2 client (httpx + h2) checks that the main
    listener serves signed requests over h2 (Host arrives as :authority)."""
    import json

    import httpx  # httpx[http2] is in requirements.txt

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    create_stream(server, stream_name)
    body = json.dumps({"StreamName": stream_name}).encode()
    req = AWSRequest(method="POST", url=f"{server.endpoint}/describeStream", data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(server.credentials(), "kinesisvideo", REGION).add_auth(req)
    import ssl

    with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=server.ca_file)) as c:
        r = c.post(f"{server.endpoint}/describeStream", content=body, headers=dict(req.headers.items()))
    assert r.http_version == "HTTP/2"
    assert r.status_code == 200, r.text
    assert r.json()["StreamInfo"]["StreamName"] == stream_name
