"""Kinesis Data Streams through the real AWS CLI: every ``aws kinesis`` command (every
operation of the model but SubscribeToShard, which the CLI does not offer), blobs in and out.

The commands run in a few independent chains on threads (the CLI's start-up dominates)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import botocore.session
from botocore import xform_name

import kinesis as K

def _binary_format_args() -> list[str]:
    """``--cli-binary-format raw-in-base64-out``: AWS CLI v2's switch to take blobs as raw
    text (v2 expects base64 by default). CLI v1 (what requirements.txt installs) has no such
    option and always takes blob arguments raw, which is the same thing on the wire."""
    out = subprocess.run([shutil.which("aws") or "aws", "--version"], capture_output=True, text=True)
    return ["--cli-binary-format", "raw-in-base64-out"] if (out.stdout + out.stderr).startswith("aws-cli/2") else []


RAW_BLOBS = _binary_format_args()

CLI_OPERATIONS = sorted(
    xform_name(op, "-") for op in botocore.session.get_session().get_service_model("kinesis").operation_names if op != "SubscribeToShard"
)


class Cli:
    def __init__(self, server):
        self.server = server
        self.kc = server.kinesis()
        self.ran: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, command: str, *args: str, check: bool = True):
        res = self.server.aws_cli("kinesis", command, *args, check=check)
        if res.returncode == 0:
            with self.lock:
                self.ran.add(command)
        return res

    def json(self, command: str, *args: str):
        return self(command, *args).json

    def active(self, name):
        return K.wait_status(self.kc, name)


def chain_records(cli: Cli, name: str):
    r = cli.json("put-record", "--stream-name", name, "--partition-key", "p", "--data", "hello from the cli", *RAW_BLOBS)
    assert r["ShardId"] == K.shard_id(0) and K.SEQ_RE.match(r["SequenceNumber"])
    records = [{"PartitionKey": "p", "Data": "second"}, {"PartitionKey": "q", "Data": "third", "ExplicitHashKey": "0"}]
    rs = cli.json("put-records", "--stream-name", name, "--records", json.dumps(records), *RAW_BLOBS)
    assert rs["FailedRecordCount"] == 0 and [x["ShardId"] for x in rs["Records"]] == [K.shard_id(0)] * 2
    it = cli.json("get-shard-iterator", "--stream-name", name, "--shard-id", K.shard_id(0), "--shard-iterator-type", "AT_SEQUENCE_NUMBER",
                  "--starting-sequence-number", r["SequenceNumber"])["ShardIterator"]
    got = cli.json("get-records", "--shard-iterator", it, "--limit", "10")
    # The CLI prints blobs base64-encoded: decode them to the bytes that were put.
    assert [base64.b64decode(x["Data"]) for x in got["Records"]] == [b"hello from the cli", b"second", b"third"]
    assert [x["SequenceNumber"] for x in got["Records"]] == [r["SequenceNumber"]] + [x["SequenceNumber"] for x in rs["Records"]]
    assert [x["PartitionKey"] for x in got["Records"]] == ["p", "p", "q"]
    assert got["NextShardIterator"] and got["MillisBehindLatest"] == 0


def chain_describe(cli: Cli, name: str):
    d = cli.json("describe-stream", "--stream-name", name)["StreamDescription"]
    assert d["StreamName"] == name and d["StreamARN"] == K.stream_arn(name) and d["StreamStatus"] == "ACTIVE"
    assert [s["ShardId"] for s in d["Shards"]] == [K.shard_id(0)]
    s = cli.json("describe-stream-summary", "--stream-arn", K.stream_arn(name))["StreamDescriptionSummary"]
    assert s["OpenShardCount"] == 1 and s["RetentionPeriodHours"] == 24
    names = cli.json("list-streams")["StreamNames"]
    assert name in names
    shards = cli.json("list-shards", "--stream-name", name, "--shard-filter", "Type=AT_LATEST")["Shards"]
    assert [x["HashKeyRange"] for x in shards] == [{"StartingHashKey": "0", "EndingHashKey": str(K.HASH_MAX)}]
    limits = cli.json("describe-limits")
    assert limits["ShardLimit"] == 500 and limits["OpenShardCount"] >= 1


def chain_tags(cli: Cli, name: str):
    arn = K.stream_arn(name)
    cli("add-tags-to-stream", "--stream-name", name, "--tags", "team=video,env=test")
    assert cli.json("list-tags-for-stream", "--stream-name", name)["Tags"] == [{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "video"}]
    cli("remove-tags-from-stream", "--stream-name", name, "--tag-keys", "env")
    cli("tag-resource", "--resource-arn", arn, "--tags", "owner=qa")
    tags = cli.json("list-tags-for-resource", "--resource-arn", arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("owner", "qa"), ("team", "video")]
    cli("untag-resource", "--resource-arn", arn, "--tag-keys", "owner", "team")
    assert cli.kc.list_tags_for_resource(ResourceARN=arn)["Tags"] == []


def chain_settings(cli: Cli, name: str):
    cli("increase-stream-retention-period", "--stream-name", name, "--retention-period-hours", "48")
    assert cli.active(name)["RetentionPeriodHours"] == 48
    cli("decrease-stream-retention-period", "--stream-name", name, "--retention-period-hours", "24")
    assert cli.active(name)["RetentionPeriodHours"] == 24
    r = cli.json("enable-enhanced-monitoring", "--stream-name", name, "--shard-level-metrics", "IncomingBytes")
    assert r["DesiredShardLevelMetrics"] == ["IncomingBytes"]
    cli.active(name)
    r = cli.json("disable-enhanced-monitoring", "--stream-name", name, "--shard-level-metrics", "IncomingBytes")
    assert r["DesiredShardLevelMetrics"] == []
    cli.active(name)
    cli("start-stream-encryption", "--stream-name", name, "--encryption-type", "KMS", "--key-id", "alias/aws/kinesis")
    assert cli.active(name)["EncryptionType"] == "KMS"
    cli("stop-stream-encryption", "--stream-name", name, "--encryption-type", "KMS", "--key-id", "alias/aws/kinesis")
    assert cli.active(name)["EncryptionType"] == "NONE"


def chain_consumers(cli: Cli, name: str):
    arn = K.stream_arn(name)
    c = cli.json("register-stream-consumer", "--stream-arn", arn, "--consumer-name", "cli-reader")["Consumer"]
    assert K.consumer_arn_re(name, "cli-reader").match(c["ConsumerARN"]) and c["ConsumerStatus"] == "CREATING"
    deadline = time.monotonic() + 10
    while cli.kc.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    d = cli.json("describe-stream-consumer", "--consumer-arn", c["ConsumerARN"])["ConsumerDescription"]
    assert d["ConsumerStatus"] == "ACTIVE" and d["StreamARN"] == arn and d["ConsumerName"] == "cli-reader"
    listed = cli.json("list-stream-consumers", "--stream-arn", arn)["Consumers"]
    assert [x["ConsumerName"] for x in listed] == ["cli-reader"]
    cli("deregister-stream-consumer", "--consumer-arn", c["ConsumerARN"])


def chain_policies_account(cli: Cli, name: str):
    arn = K.stream_arn(name)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                                                     "Action": "kinesis:GetRecords", "Resource": arn}]}
    cli("put-resource-policy", "--resource-arn", arn, "--policy", json.dumps(policy))
    assert json.loads(cli.json("get-resource-policy", "--resource-arn", arn)["Policy"]) == policy
    cli("delete-resource-policy", "--resource-arn", arn)
    assert cli.kc.get_resource_policy(ResourceARN=arn)["Policy"] == "{}"
    r = cli.json("update-account-settings", "--minimum-throughput-billing-commitment", "Status=ENABLED")
    assert r["MinimumThroughputBillingCommitment"]["Status"] == "ENABLED"
    assert cli.json("describe-account-settings")["MinimumThroughputBillingCommitment"]["Status"] == "ENABLED"


def chain_reshard(cli: Cli, name: str):
    cli("split-shard", "--stream-name", name, "--shard-to-split", K.shard_id(0), "--new-starting-hash-key", str(2**127))
    cli.active(name)
    cli("merge-shards", "--stream-name", name, "--shard-to-merge", K.shard_id(1), "--adjacent-shard-to-merge", K.shard_id(2))
    cli.active(name)
    r = cli.json("update-shard-count", "--stream-name", name, "--target-shard-count", "2", "--scaling-type", "UNIFORM_SCALING")
    assert r["CurrentShardCount"] == 1 and r["TargetShardCount"] == 2
    cli.active(name)
    cli("update-max-record-size", "--stream-arn", K.stream_arn(name), "--max-record-size-in-ki-b", "2048")
    assert cli.active(name)["MaxRecordSizeInKiB"] == 2048
    cli("update-stream-mode", "--stream-arn", K.stream_arn(name), "--stream-mode-details", "StreamMode=ON_DEMAND")
    assert cli.active(name)["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    r = cli.json("update-stream-warm-throughput", "--stream-name", name, "--warm-throughput-mi-bps", "50")
    assert r["WarmThroughput"]["TargetMiBps"] == 50
    cli.active(name)
    cli("delete-stream", "--stream-name", name)
    K.wait_gone(cli.kc, name)


def test_every_cli_command(private_server):
    srv = private_server(*K.KINESIS_ARGS)
    cli = Cli(srv)
    names = [K.unique("cli") for _ in range(7)]
    cli("create-stream", "--stream-name", names[0], "--shard-count", "1")
    for n in names[1:]:
        cli.kc.create_stream(StreamName=n, ShardCount=1)
    for n in names:
        cli.active(n)
    chains = [chain_records, chain_describe, chain_tags, chain_settings, chain_consumers, chain_policies_account, chain_reshard]
    with ThreadPoolExecutor(len(chains)) as pool:
        for f in [pool.submit(chain, cli, n) for chain, n in zip(chains, names)]:
            f.result()
    assert sorted(cli.ran) == CLI_OPERATIONS
    assert len(CLI_OPERATIONS) == 38


def test_cli_errors_exit_nonzero_with_the_aws_error(kinesis_server):
    srv = kinesis_server
    missing = K.unique("missing")
    res = srv.aws_cli("kinesis", "describe-stream-summary", "--stream-name", missing, check=False)
    assert res.returncode != 0
    assert "(ResourceNotFoundException)" in res.stderr
    assert K.NOT_FOUND.format(name=missing) in res.stderr
    res = srv.aws_cli("kinesis", "create-stream", "--stream-name", "bad name", "--shard-count", "1", check=False)
    assert res.returncode != 0 and "(ValidationException)" in res.stderr
