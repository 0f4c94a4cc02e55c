"""Kinesis Data Streams through the AWS SDK for JavaScript v3 in Node (tests/kinesis-js/):
HTTP/2 for every call (ALPN h2 over TLS, h2c prior knowledge over plain HTTP), records,
and enhanced fan-out with SubscribeToShard: push latency, records after the client's
GOAWAY, ResourceInUseException on an immediate re-subscribe, resuming from
ContinuationSequenceNumber, ResourceNotFoundException after DeregisterStreamConsumer."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import kinesis as K

JS_DIR = Path(__file__).resolve().parents[1] / "kinesis-js"
SUBSCRIPTION_SECS = 3


@pytest.fixture(scope="module")
def node_modules():
    """`npm ci` (tests/run.sh does it; here too if it has not run, e.g. a lone pytest run)."""
    if not (JS_DIR / "node_modules" / "@aws-sdk" / "client-kinesis").is_dir():
        subprocess.run(["npm", "ci", "--prefix", str(JS_DIR), "--no-audit", "--no-fund"], check=True, timeout=300)
    return JS_DIR / "node_modules"


def run_js(server, stream: str, mode: str, timeout: float = 90) -> dict:
    creds = server.credentials()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        ENDPOINT=server.endpoint,
        STREAM=stream,
        MODE=mode,
        SUBSCRIPTION_SECS=str(SUBSCRIPTION_SECS),
        AWS_ACCESS_KEY_ID=creds.access_key,
        AWS_SECRET_ACCESS_KEY=creds.secret_key,
        AWS_REGION=K.REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    if not server.plain:
        env["NODE_EXTRA_CA_CERTS"] = server.ca_file
    res = subprocess.run([shutil.which("node") or "node", str(JS_DIR / "kinesis-e2e.mjs")], capture_output=True, text=True,
                         env=env, timeout=timeout, cwd=JS_DIR)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["ok"], report.get("failure", "") + "\n" + res.stderr
    return report


def check_basic(report: dict, h2_protocol: str):
    assert report["calls"], report
    for c in report["calls"]:
        assert c["status"] == 200, c
        assert c["requestId"] and K.UUID_RE.match(c["requestId"]), c
    assert report["sessions"], "the SDK opened no HTTP/2 session"
    for s in report["sessions"]:
        assert s["alpn"] == h2_protocol, s
        assert s["error"] is None, s
    assert report["put"]["shardId"] == K.shard_id(0) and report["put"]["failed"] == 0
    assert [base64.b64decode(r["data"]) for r in report["got"]] == [b"hello from node", b"\x00\x01\x02\xff", b"third"]
    assert [r["seq"] for r in report["got"]] == [report["put"]["sequenceNumber"], *report["put"]["batch"]]
    assert all(K.SEQ_RE.match(r["seq"]) for r in report["got"])
    assert all(isinstance(r["arrival"], (int, float)) for r in report["got"]), "ApproximateArrivalTimestamp parsed as a Date"
    assert report["millisBehindLatest"] == 0


def test_js_sdk_http2_and_enhanced_fan_out(private_server, node_modules):
    srv = private_server(*K.KINESIS_ARGS, "--kinesis-subscription-secs", str(SUBSCRIPTION_SECS))
    # The main listener negotiates h2 (the only protocol Node's http2 offers) and http/1.1.
    assert srv.tls_probe(srv.port, ("h2",)) == "h2"
    assert srv.tls_probe(srv.port, ("http/1.1",)) == "http/1.1"
    name = K.unique("js")
    r = run_js(srv, name, "full")
    check_basic(r, "h2")

    assert r["consumer"]["status"] == "CREATING"
    assert K.consumer_arn_re(name, "js-efo").match(r["consumer"]["arn"])
    sub = r["subscribe1"]
    assert sub["returnedAfterMs"] < 1000, "the initial response must come at once, not with the first records"
    # The SDK gives each subscription a session of its own and closes it (GOAWAY) as soon as
    # the response headers arrive; the server keeps streaming on the open stream.
    assert len(sub["sessions"]) == 1
    session = r["sessions"][sub["sessions"][0]]
    assert session["closedAt"] is not None, "the SDK did not send GOAWAY"
    received = [x["receivedAt"] for x in r["latency"]]
    assert all(t is not None for t in received), r["latency"]
    assert session["closedAt"] < min(received), "records must flow after the client's GOAWAY"
    # Pushed, not polled: every record within 1 s of its put (AWS: about 70 ms).
    for x in r["latency"]:
        assert x["ms"] < 1000, x
    assert sub["records"] == [f"live-{i}" for i in range(5)], "each record once, in order"
    assert sub["other"] == []
    assert all(isinstance(m, int) and m >= 0 for m in sub["millisBehind"])
    # The server ends a subscription after --kinesis-subscription-secs (AWS: 5 minutes).
    assert sub["ended"] == "end", sub["ended"]
    assert SUBSCRIPTION_SECS * 1000 - 500 <= sub["endedAfterMs"] <= SUBSCRIPTION_SECS * 1000 + 3000
    assert sub["continuation"] == r["latency"][-1]["seq"]

    errors = {e["label"]: e for e in r["errors"]}
    assert errors["resubscribe"]["name"] == "ResourceInUseException", errors["resubscribe"]
    assert errors["resubscribe"]["status"] == 400

    # Resumed from the continuation: the record put between the subscriptions comes first.
    assert r["subscribe2"]["finished"] == "done", r["subscribe2"]
    assert [x["data"] for x in r["subscribe2"]["records"]] == ["during-gap", "after-resume"]
    assert r["subscribe2"]["records"][0]["seq"] == r["gapSeq"]

    assert errors["deregistered"]["name"] == "ResourceNotFoundException", errors["deregistered"]


def test_js_sdk_over_plain_http_speaks_h2c(private_server, node_modules):
    srv = private_server(*K.KINESIS_ARGS, "--plain-http")
    r = run_js(srv, K.unique("js-h2c"), "basic")
    check_basic(r, "h2c")
