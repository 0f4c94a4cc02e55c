"""Helpers for the Kinesis Data Streams end-to-end tests (test_kinesis_*.py).

Everything here talks to the real server through real clients: boto3, raw HTTPS requests
signed by botocore's SigV4Auth (JSON 1.1 or CBOR bodies), nothing mocked. Facts about AWS
that the tests rely on are named constants here, so that the service's behaviour and the
tests' expectations can be compared in one place."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass, field

import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

ACCOUNT = "000000000000"
REGION = "us-west-2"
SERVICE = "kinesis"
TARGET_PREFIX = "Kinesis_20131202"
JSON_CT = "application/x-amz-json-1.1"
CBOR_CT = "application/x-amz-cbor-1.1"
HASH_SPACE = 2**128
HASH_MAX = HASH_SPACE - 1
MIB = 1024 * 1024
STATE_DELAY_MS = 100
# Every Kinesis test server runs with short transitional states (CREATING, UPDATING, DELETING).
KINESIS_ARGS = ("--kinesis-state-delay-ms", str(STATE_DELAY_MS))

SEQ_RE = re.compile(r"^\d{56}$")
SHARD_ID_RE = re.compile(r"^shardId-\d{12}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
STREAM_NAME_PATTERN = "[a-zA-Z0-9_.-]+"

# AWS's exact messages (as kinesalite's test-suite recorded them from the real service).
NOT_FOUND = "Stream {name} under account " + ACCOUNT + " not found."
IN_USE = "Stream {name} under account " + ACCOUNT + " already exists."
NOT_ACTIVE = "Stream {name} under account " + ACCOUNT + " not ACTIVE, instead in state {state}"
SHARD_NOT_FOUND = "Shard {shard} in stream {name} under account " + ACCOUNT + " does not exist"
COULD_NOT_FIND_SHARD = "Could not find shard {shard} in stream {name} under account " + ACCOUNT + "."
BAD_HASH_KEY = "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {key}"
INVALID_ITERATOR = "Invalid ShardIterator."
SEQ_TYPE_MISMATCH = (
    "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or "
    "(2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {detail}."
)
NO_TIMESTAMP = "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter."
MIN_RETENTION = "Minimum allowed retention period is 24 hours. Requested retention period ({hours} hours) is too short."
INCREASE_SHORTER = (
    "Requested retention period ({hours} hours) for stream {name} can not be shorter than existing retention period "
    "({current} hours). Use DecreaseRetentionPeriod API."
)
DECREASE_LONGER = (
    "Requested retention period ({hours} hours) for stream {name} can not be longer than existing retention period "
    "({current} hours). Use IncreaseRetentionPeriod API."
)
SHARD_LIMIT = (
    "This request would exceed the shard limit for the account " + ACCOUNT + " in " + REGION + ". "
    "Current shard count for the account: {current}. Limit: {limit}. "
    "Number of additional shards that would have resulted from this request: {extra}. "
    "Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) "
    "for current limits and how to request higher limits."
)
SPLIT_BAD_HASH = (
    "NewStartingHashKey {key} used in SplitShard() on shard {shard} in stream {name} under account " + ACCOUNT + " "
    "is not both greater than one plus the shard's StartingHashKey {start} and less than the shard's EndingHashKey {end}."
)
NOT_ADJACENT = (
    "Shards {a} and {b} in stream {name} under account " + ACCOUNT + " are not an adjacent pair of shards eligible for merging"
)
RECORDS_TOO_LARGE = "Records size exceeds 5 MB limit"
TAG_BAD_CHARS = "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @."
LIST_SHARDS_TOKEN_AND_NAME = "NextToken and StreamName cannot be provided together."
EXPIRED_ITERATOR_RE = (
    r"^Iterator expired\. The iterator was created at time \w{{3}} \w{{3}} \d{{2}} \d{{2}}:\d{{2}}:\d{{2}} UTC \d{{4}} "
    r"while right now it is \w{{3}} \w{{3}} \d{{2}} \d{{2}}:\d{{2}}:\d{{2}} UTC \d{{4}} "
    r"which is further in the future than the tolerated delay of {ms} milliseconds\.$"
)
ALL_METRICS = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
]


# ------------------------------------------------------------------- names, ARNs, hashing
def unique(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def stream_arn(name: str) -> str:
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def consumer_arn_re(stream: str, consumer: str) -> re.Pattern:
    return re.compile("^" + re.escape(f"{stream_arn(stream)}/consumer/{consumer}:") + r"(\d+)$")


def shard_id(index: int) -> str:
    return f"shardId-{index:012d}"


def even_ranges(n: int) -> list[tuple[int, int]]:
    """The hash key ranges AWS gives n shards of a new stream (2^128 split evenly, the
    last shard taking the remainder)."""
    step = HASH_SPACE // n
    return [(i * step, (i + 1) * step - 1 if i < n - 1 else HASH_MAX) for i in range(n)]


def pk_hash(partition_key: str) -> int:
    """Kinesis maps a partition key to the 128-bit integer of its MD5 digest."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def shard_range(shard: dict) -> tuple[int, int]:
    r = shard["HashKeyRange"]
    return int(r["StartingHashKey"]), int(r["EndingHashKey"])


def shard_holding(shards: list[dict], hash_key: int) -> str:
    """The id of the open shard whose hash key range holds ``hash_key``."""
    hits = [s["ShardId"] for s in shards if is_open(s) and shard_range(s)[0] <= hash_key <= shard_range(s)[1]]
    assert len(hits) == 1, (hash_key, shards)
    return hits[0]


def is_open(shard: dict) -> bool:
    return "EndingSequenceNumber" not in shard.get("SequenceNumberRange", {})


def key_for_shard(shards: list[dict], wanted: str, prefix: str = "pk") -> str:
    """A partition key that hashes into shard ``wanted``."""
    for i in range(100000):
        k = f"{prefix}-{i}"
        if shard_holding(shards, pk_hash(k)) == wanted:
            return k
    raise AssertionError(f"no partition key found for {wanted}")


# ------------------------------------------------------------------------------ errors
def err(excinfo_or_exc) -> tuple[str, str, int]:
    """(code, message, HTTP status) of a botocore ClientError (or pytest excinfo)."""
    e = getattr(excinfo_or_exc, "value", excinfo_or_exc)
    r = e.response
    return r["Error"].get("Code"), r["Error"].get("Message"), r["ResponseMetadata"]["HTTPStatusCode"]


def expect_error(fn, code: str, message: str | re.Pattern | None = None, status: int = 400, **kwargs) -> ClientError:
    """Call ``fn(**kwargs)`` and assert it fails with exactly this AWS error."""
    with pytest.raises(ClientError) as e:
        fn(**kwargs)
    got_code, got_msg, got_status = err(e)
    assert got_code == code, (got_code, got_msg)
    assert got_status == status, (got_status, got_code, got_msg)
    if isinstance(message, re.Pattern):
        assert message.search(got_msg or ""), f"\n got: {got_msg!r}\nwant: /{message.pattern}/"
    elif message is not None:
        assert got_msg == message, f"\n got: {got_msg!r}\nwant: {message!r}"
    return e.value


def validation_parts(message: str) -> tuple[int, list[str]]:
    """Split AWS's ``N validation error(s) detected: a; b`` into (N, [a, b])."""
    m = re.match(r"^(\d+) validation errors? detected: (.*)$", message, re.S)
    assert m, message
    n = int(m.group(1))
    assert message.startswith(f"{n} validation {'error' if n == 1 else 'errors'} detected: "), message
    return n, m.group(2).split("; ")


def constraint(value, member: str, rule: str) -> str:
    """One validation failure, in AWS's words. ``value`` None renders as ``null``."""
    shown = "null" if value is None else f"'{value}'"
    return f"Value {shown} at '{member}' failed to satisfy constraint: Member must {rule}"


def assert_validation(exc_or_msg, *parts: str):
    """The message lists exactly these failures (in any order: AWS does not fix one)."""
    msg = exc_or_msg if isinstance(exc_or_msg, str) else err(exc_or_msg)[1]
    n, got = validation_parts(msg)
    assert n == len(parts), msg
    assert sorted(got) == sorted(parts), msg


# ----------------------------------------------------------------------------- streams
def summary(client, name: str) -> dict:
    return client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]


def wait_status(client, name: str, status: str = "ACTIVE", timeout: float = 15.0, seen: list | None = None) -> dict:
    """Poll DescribeStreamSummary until the stream has ``status``; returns the summary.
    ``seen`` collects every status observed on the way."""
    deadline = time.monotonic() + timeout
    while True:
        s = summary(client, name)
        if seen is not None and (not seen or seen[-1] != s["StreamStatus"]):
            seen.append(s["StreamStatus"])
        if s["StreamStatus"] == status:
            return s
        if time.monotonic() > deadline:
            raise AssertionError(f"stream {name} still {s['StreamStatus']} after {timeout}s (wanted {status})")
        time.sleep(0.02)


def wait_gone(client, name: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            summary(client, name)
        except client.exceptions.ResourceNotFoundException:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"stream {name} still exists after {timeout}s")
        time.sleep(0.02)


def wait_account_settled(client, timeout: float = 15.0):
    """Until no stream of the account is CREATING, UPDATING or DELETING (earlier tests'
    clean-up), so that account-wide counts stay put during a test."""
    deadline = time.monotonic() + timeout
    while True:
        busy = []
        for page in client.get_paginator("list_streams").paginate():
            busy += [s["StreamName"] for s in page.get("StreamSummaries", []) if s["StreamStatus"] != "ACTIVE"]
        if not busy:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"streams still changing state after {timeout}s: {busy}")
        time.sleep(0.05)


def create(client, name: str, shards: int | None = 1, *, mode: str | None = None, wait: bool = True, **kw) -> dict:
    args = {"StreamName": name, **kw}
    if shards is not None:
        args["ShardCount"] = shards
    if mode:
        args["StreamModeDetails"] = {"StreamMode": mode}
    client.create_stream(**args)
    return wait_status(client, name) if wait else {}


def delete_quietly(client, name: str):
    try:
        client.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
    except ClientError:
        pass


class Streams:
    """Creates uniquely named streams for one test and deletes them afterwards."""

    def __init__(self, client, prefix: str):
        self.client = client
        self.prefix = re.sub(r"[^a-zA-Z0-9_.-]", "-", prefix)[:90]
        self.names: list[str] = []

    def name(self) -> str:
        n = f"{self.prefix}-{uuid.uuid4().hex[:10]}"
        self.names.append(n)
        return n

    def create(self, shards: int | None = 1, **kw) -> str:
        n = self.name()
        create(self.client, n, shards, **kw)
        return n

    def cleanup(self):
        for n in self.names:
            delete_quietly(self.client, n)


def all_shards(client, name: str, **kw) -> list[dict]:
    """Every shard, following NextToken the way AWS requires: the next pages carry only the
    token (botocore's list_shards paginator resends StreamName, which AWS refuses with
    "NextToken and StreamName cannot be provided together.": boto/botocore#2009)."""
    r = client.list_shards(StreamName=name, **kw)
    out = list(r["Shards"])
    while r.get("NextToken"):
        r = client.list_shards(NextToken=r["NextToken"], **({"MaxResults": kw["MaxResults"]} if "MaxResults" in kw else {}))
        out.extend(r["Shards"])
    return out


def open_shards(client, name: str) -> list[dict]:
    return [s for s in all_shards(client, name) if is_open(s)]


def iterator(client, name: str, shard: str, kind: str = "TRIM_HORIZON", **kw) -> str:
    return client.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType=kind, **kw)["ShardIterator"]


@dataclass
class ShardRead:
    records: list[dict] = field(default_factory=list)
    responses: list[dict] = field(default_factory=list)
    closed: bool = False  # the shard's end was reached (NextShardIterator absent)
    child_shards: list[dict] | None = None


def read_iterator(client, it: str, *, limit: int | None = None, min_records: int = 0, timeout: float = 10.0,
                  max_calls: int = 10000) -> ShardRead:
    """GetRecords from ``it`` until caught up (an empty answer with MillisBehindLatest 0,
    after at least ``min_records``), or the end of a closed shard, or ``timeout``."""
    out = ShardRead()
    deadline = time.monotonic() + timeout
    for _ in range(max_calls):
        kw = {"ShardIterator": it}
        if limit:
            kw["Limit"] = limit
        r = client.get_records(**kw)
        out.responses.append(r)
        out.records.extend(r["Records"])
        if "ChildShards" in r and r.get("NextShardIterator") is None:
            out.child_shards = r["ChildShards"]
        if r.get("NextShardIterator") is None:
            out.closed = True
            return out
        it = r["NextShardIterator"]
        if not r["Records"] and r["MillisBehindLatest"] == 0 and len(out.records) >= min_records:
            return out
        if time.monotonic() > deadline:
            return out
        if not r["Records"]:
            time.sleep(0.02)
    return out


def read_shard(client, name: str, shard: str, **kw) -> ShardRead:
    return read_iterator(client, iterator(client, name, shard), **kw)


def read_all(client, name: str, **kw) -> dict[str, list[dict]]:
    """Every record of every shard (open and closed) from TRIM_HORIZON, by shard id."""
    return {s["ShardId"]: read_shard(client, name, s["ShardId"], **kw).records for s in all_shards(client, name)}


def lineage_order(shards: list[dict]) -> list[str]:
    """Shard ids ordered so that every parent comes before its children."""
    ids = {s["ShardId"] for s in shards}
    done: list[str] = []
    pending = list(shards)
    while pending:
        progressed = False
        for s in list(pending):
            parents = [p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p and p in ids]
            if all(p in done for p in parents):
                done.append(s["ShardId"])
                pending.remove(s)
                progressed = True
        assert progressed, f"shard lineage has a cycle: {pending}"
    return done


def put_many(client, name: str, items: list[tuple[str, bytes]]) -> list[dict]:
    """PutRecords in batches of 500; every record must succeed. Returns the result entries."""
    results = []
    for i in range(0, len(items), 500):
        batch = items[i : i + 500]
        r = client.put_records(StreamName=name, Records=[{"PartitionKey": k, "Data": d} for k, d in batch])
        assert r["FailedRecordCount"] == 0, r
        results.extend(r["Records"])
    return results


# --------------------------------------------------------------------- raw HTTP requests
@dataclass
class RawResponse:
    status: int
    headers: dict
    data: bytes

    @property
    def json(self):
        return json.loads(self.data) if self.data else None

    def cbor(self):
        import cbor2

        return cbor2.loads(self.data, semantic_decoders={1: lambda value, _immutable: cbor2.CBORTag(1, value)})

    @property
    def error_type(self) -> str:
        return self.headers.get("x-amzn-errortype", "").split(":")[0]


_POOLS: dict[str, urllib3.PoolManager] = {}


def raw_call(server, operation: str | None, body: bytes, *, content_type: str = JSON_CT, sign: bool = True,
             creds: Credentials | None = None, headers: dict | None = None, target: str | None = None,
             timeout: float = 30) -> RawResponse:
    """One POST / to the main endpoint with ``X-Amz-Target: Kinesis_20131202.<operation>``
    (or ``target`` verbatim), signed with SigV4 for service ``kinesis`` unless ``sign`` is False."""
    h = {"Content-Type": content_type}
    if target is not None or operation is not None:
        h["X-Amz-Target"] = target if target is not None else f"{TARGET_PREFIX}.{operation}"
    h.update(headers or {})
    url = server.endpoint + "/"
    req = AWSRequest(method="POST", url=url, data=body, headers=h)
    if sign:
        SigV4Auth(creds or server.credentials(), SERVICE, REGION).add_auth(req)
    pool = _POOLS.get(server.ca_file)
    if pool is None:
        pool = _POOLS[server.ca_file] = urllib3.PoolManager(ca_certs=server.ca_file, cert_reqs="CERT_REQUIRED")
    r = pool.request("POST", url, body=body, headers=dict(req.headers.items()), retries=False, timeout=timeout)
    return RawResponse(r.status, {k.lower(): v for k, v in r.headers.items()}, r.data)


def raw_json(server, operation: str, payload: dict, **kw) -> RawResponse:
    return raw_call(server, operation, json.dumps(payload).encode(), **kw)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
