"""``edge-agent tail`` end to end: the real agent binary follows real files into a
Kinesis data stream of the real ``ingest-server`` (PutRecords, SigV4 service ``kinesis``
on the main listener); what arrived is read back with boto3 GetRecords.

Checked: lines arrive in order within a couple of seconds (new files start at their end, a
partial line waits for its newline) and ``edge-agent status --state-dir`` shows the counters;
rotation by rename and copytruncate lose nothing; kill -9 and restart deliver every line,
duplicating at most the last unacknowledged batch (also before the first acknowledgement);
a clean stop and restart resumes from the checkpoint without duplicates; a 10 s server
outage loses nothing; records refused for throughput are retried in order; a line longer
than a record is split; wrong keys, an unknown stream and an untrusted certificate stop the
agent with exit 3 and a clear message."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import kinesis as K
from agent import AGENT_BIN, Agent, agent_env, require_binary, run_cli

PANIC = re.compile(r"panicked", re.I)
BATCH = 500  # PutRecords' record limit: the most a crash can resend


class Tailer(Agent):
    """One ``edge-agent tail`` process; lifecycle, logs and kill -9 as the video agent's."""

    def __init__(self, state_dir: Path, log_dir: Path, name: str = "tail"):
        super().__init__(state_dir, log_dir, name)

    def start(self, endpoint: str, stream: str, files, *, ca: str | None = None, create_stream: bool = True, args=(), env: dict | None = None):
        require_binary()
        self.starts += 1
        self.log_path = self.log_dir / f"{self.name}-{self.starts}.stderr"
        self.logs.append(self.log_path)
        self.cmd = [str(AGENT_BIN), "tail", "--endpoint", endpoint, "--stream", stream, "--state-dir", str(self.spool_dir)]
        for f in files:
            self.cmd += ["--file", str(f)]
        if ca:
            self.cmd += ["--ca", ca]
        if create_stream:
            self.cmd.append("--create-stream")
        self.cmd += list(args)
        self.env = env if env is not None else agent_env()
        self._log_file = open(self.log_path, "wb")
        self.t_start = time.time()
        self.returncode = None
        self.proc = subprocess.Popen(self.cmd, stdout=self._log_file, stderr=subprocess.STDOUT, env=self.env)
        return self

    def wait_log(self, pattern: str, timeout: float = 15.0, count: int = 1):
        """Wait until ``pattern`` appears ``count`` times in this start's output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(re.findall(pattern, self.stderr())) >= count:
                return
            if not self.running:
                raise AssertionError(f"agent exited while waiting for {pattern!r}\n{self.describe()}")
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the agent's output after {timeout}s\n{self.describe()}")


@pytest.fixture
def tailers(request, tmp_path):
    made: list[Tailer] = []

    def make(name: str = "tail") -> Tailer:
        t = Tailer(tmp_path / f"state-{name}", tmp_path, name)
        made.append(t)
        return t

    yield make
    for t in made:
        if t.running:
            t.stop(timeout=10)
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.failed:
        for t in made:
            print(f"\n=== {t.name}: {' '.join(t.cmd)} (exit {t.returncode})")
            for i, path in enumerate(t.logs, 1):
                lines = t.stderr(i).splitlines()
                print(f"--- output of start {i} ({path}), last 40 of {len(lines)} lines ---")
                print("\n".join(lines[-40:]))
    for t in made:
        assert not PANIC.search(t.all_stderr()), f"{t.name} panicked:\n{t.all_stderr()[-3000:]}"


# ------------------------------------------------------------------ helpers
def append(path: Path, lines: list[str]):
    with open(path, "a") as f:
        f.write("".join(line + "\n" for line in lines))


def read_records(kc, stream: str, want: int, timeout: float = 10.0, pace: float = 0.0) -> list[dict]:
    """Every record of the stream (all shards, from TRIM_HORIZON), polling until at least
    ``want`` arrived or ``timeout``. ``pace``: seconds between calls, and read throttling
    (ProvisionedThroughputExceededException) waited out, for servers enforcing limits."""
    deadline = time.monotonic() + timeout
    while True:
        records = []
        for shard in K.all_shards(kc, stream):
            records += read_shard(kc, stream, shard["ShardId"], pace)
        if len(records) >= want or time.monotonic() > deadline:
            return sorted(records, key=lambda r: int(r["SequenceNumber"]))
        time.sleep(max(0.2, pace))


def read_shard(kc, stream: str, shard: str, pace: float) -> list[dict]:
    records, it = [], None
    for _ in range(1000):
        try:
            if it is None:
                it = K.iterator(kc, stream, shard)
            r = kc.get_records(ShardIterator=it)
        except ClientError as e:
            if e.response["Error"]["Code"] != "ProvisionedThroughputExceededException":
                raise
            time.sleep(1.0)
            continue
        records += r["Records"]
        it = r.get("NextShardIterator")
        if it is None or (not r["Records"] and r["MillisBehindLatest"] == 0):
            return records
        time.sleep(pace)
    return records


def texts(records: list[dict]) -> list[str]:
    return [r["Data"].decode() for r in records]


def first_occurrences(items: list[str]) -> list[str]:
    seen, out = set(), []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


# -------------------------------------------------------------------- tests
def test_appended_lines_arrive_in_order_within_seconds(kinesis_server, kstreams, tailers, tmp_path):
    kc = kinesis_server.kinesis()
    stream = kstreams.name()
    log = tmp_path / "app.log"
    append(log, ["written before the agent started"])
    t = tailers().start(kinesis_server.endpoint, stream, [log], ca=kinesis_server.ca_file, env=agent_env(kinesis_server))
    t.wait_log("edge-agent tail running")
    lines = [f"line {i:04d} " + "x" * (i % 50) for i in range(300)]
    for i in range(0, len(lines), 30):
        append(log, lines[i : i + 30])
        time.sleep(0.05)
    with open(log, "a") as f:
        f.write("partial line without its newline")
    t_written = time.monotonic()
    records = read_records(kc, stream, len(lines), timeout=10)
    latency = time.monotonic() - t_written
    assert texts(records) == lines, f"got {len(records)} records: {texts(records)[:5]}..."
    assert latency < 3.0, f"the last lines took {latency:.1f}s to arrive"
    assert {r["PartitionKey"] for r in records} == {socket.gethostname()}
    # `edge-agent status --state-dir` shows the running tailer's files and counters.
    res = run_cli("status", "--state-dir", str(t.spool_dir), "--json", env=t.env)
    assert res.returncode == 0, res
    st = json.loads(res.stdout)
    assert st["command"] == "tail" and st["stream"] == stream and st["state"] == "running", st
    (f,) = st["files"]
    assert f["path"] == str(log) and f["lines_read"] == len(lines) and f["records_acked"] == len(lines), st
    assert f["unacknowledged"] == 0 and f["checkpoint"]["offset"] > 0, st
    res = run_cli("status", "--state-dir", str(t.spool_dir), env=t.env)
    assert res.returncode == 0 and "records acked" in res.stdout, res
    res = run_cli("metadata", "put", "--spool-dir", str(t.spool_dir), "k", "v", env=t.env)
    assert res.returncode != 0 and "no fragment metadata" in res.stderr, res
    # The partial line goes once its newline is written.
    append(log, [" now complete"])
    records = read_records(kc, stream, len(lines) + 1, timeout=5)
    assert texts(records)[-1] == "partial line without its newline now complete"
    assert len(records) == len(lines) + 1
    assert t.stop() == 0


def test_rotation_by_rename_and_copytruncate_lose_nothing(kinesis_server, kstreams, tailers, tmp_path):
    kc = kinesis_server.kinesis()
    stream = kstreams.name()
    log = tmp_path / "app.log"
    t = tailers().start(kinesis_server.endpoint, stream, [log], ca=kinesis_server.ca_file, env=agent_env(kinesis_server), args=["--partition-key", "fixed"])
    t.wait_log("waiting for the file to appear")  # a file that does not exist yet is awaited
    t.wait_log("edge-agent tail running")
    a = [f"a {i:03d}" for i in range(100)]
    late = [f"late {i:03d}" for i in range(20)]
    b = [f"b {i:03d} with a somewhat longer text" for i in range(100)]
    c = [f"c {i:03d}" for i in range(50)]
    writer = open(log, "a")
    writer.write("".join(x + "\n" for x in a[:50]))
    writer.flush()
    time.sleep(0.3)
    writer.write("".join(x + "\n" for x in a[50:]))
    writer.flush()
    # logrotate: rename, the writer keeps its old descriptor a moment longer, new file.
    os.rename(log, tmp_path / "app.log.1")
    writer.write("".join(x + "\n" for x in late))
    writer.close()
    append(log, b)
    t.wait_log("rotated file read to its end", timeout=10)
    time.sleep(0.5)
    # copytruncate: copy, then truncate in place; the writer goes on at offset 0.
    (tmp_path / "app.log.2").write_bytes(log.read_bytes())
    with open(log, "r+") as f:
        f.truncate(0)
    append(log, c)
    expected = a + late + b + c
    records = read_records(kc, stream, len(expected), timeout=10)
    got = texts(records)
    missing = [x for x in expected if x not in set(got)]
    assert not missing, f"lost {len(missing)} lines: {missing[:10]}"
    assert got == expected, "lines duplicated or out of order"
    assert "file truncated" in t.stderr()


def test_kill9_and_restart_deliver_every_line(kinesis_server, kstreams, tailers, tmp_path):
    kc = kinesis_server.kinesis()
    stream = kstreams.name()
    log = tmp_path / "app.log"
    log.touch()
    t = tailers()
    t.start(kinesis_server.endpoint, stream, [log], ca=kinesis_server.ca_file, env=agent_env(kinesis_server))
    t.wait_log("edge-agent tail running")
    lines = [f"{i:05d} " + "y" * 40 for i in range(2400)]
    done = threading.Event()

    def write():
        for i in range(0, len(lines), 20):  # about 800 lines/s
            append(log, lines[i : i + 20])
            time.sleep(0.025)
        done.set()

    w = threading.Thread(target=write)
    w.start()
    time.sleep(1.6)
    t.kill9()
    time.sleep(0.7)
    t.start(kinesis_server.endpoint, stream, [log], ca=kinesis_server.ca_file, env=agent_env(kinesis_server))
    w.join()
    records = read_records(kc, stream, len(lines), timeout=20)
    got = texts(records)
    missing = sorted(set(lines) - set(got))
    assert not missing, f"lost {len(missing)} lines after kill -9: {missing[:5]}..."
    assert first_occurrences(got) == lines, "lines out of order"
    # Duplicates: only what was acknowledged but not yet checkpointed when killed, i.e.
    # one batch at most, and contiguous.
    counts: dict[str, int] = {}
    for x in got:
        counts[x] = counts.get(x, 0) + 1
    dup_idx = sorted(lines.index(x) for x, n in counts.items() if n > 1)
    assert all(counts[x] <= 2 for x in counts), "a line was sent more than twice"
    assert len(dup_idx) <= BATCH, f"{len(dup_idx)} duplicated lines: more than the last batch"
    if dup_idx:
        assert dup_idx == list(range(dup_idx[0], dup_idx[0] + len(dup_idx))), "duplicates are not one contiguous batch"
    assert t.stop() == 0


def test_clean_stop_resumes_from_the_checkpoint_without_duplicates(kinesis_server, kstreams, tailers, tmp_path):
    kc = kinesis_server.kinesis()
    stream = kstreams.name()
    log = tmp_path / "app.log"
    log.touch()
    t = tailers()
    args = ["--flush-interval-ms", "200"]
    t.start(kinesis_server.endpoint, stream, [log], ca=kinesis_server.ca_file, env=agent_env(kinesis_server), args=args)
    t.wait_log("edge-agent tail running")
    first = [f"first {i}" for i in range(40)]
    append(log, first)
    assert texts(read_records(kc, stream, 40)) == first
    assert t.stop() == 0
    checkpoints = list((t.spool_dir).glob("*.json"))
    assert len(checkpoints) == 1 and f'"offset":{log.stat().st_size}' in checkpoints[0].read_text(), checkpoints
    while_stopped = [f"while stopped {i}" for i in range(40)]
    append(log, while_stopped)
    t.start(kinesis_server.endpoint, stream, [log], ca=kinesis_server.ca_file, env=agent_env(kinesis_server), args=args)
    after = [f"after {i}" for i in range(10)]
    t.wait_log("edge-agent tail running")
    append(log, after)
    expected = first + while_stopped + after
    records = read_records(kc, stream, len(expected))
    time.sleep(0.5)
    records = read_records(kc, stream, len(expected))
    assert texts(records) == expected


def test_server_outage_of_10s_loses_nothing(private_server, tailers, tmp_path):
    srv = private_server(*K.KINESIS_ARGS)
    stream = K.unique("tail-outage")
    log = tmp_path / "app.log"
    log.touch()
    t = tailers().start(srv.endpoint, stream, [log], ca=srv.ca_file, env=agent_env(srv))
    t.wait_log("edge-agent tail running")
    before = [f"before {i}" for i in range(50)]
    append(log, before)
    assert texts(read_records(srv.kinesis(), stream, 50)) == before
    srv.stop()
    during = [f"during {i}" for i in range(100)]
    for i in range(0, 100, 10):
        append(log, during[i : i + 10])
        time.sleep(1.0)  # 10 s without a server
    t.wait_log("PutRecords failed; lines wait in their files")
    assert t.running, t.describe()
    srv.start()
    after = [f"after {i}" for i in range(50)]
    append(log, after)
    expected = before + during + after
    records = read_records(srv.kinesis(), stream, len(expected), timeout=20)
    got = texts(records)
    missing = [x for x in expected if x not in set(got)]
    assert not missing, f"lost {len(missing)} lines over the outage: {missing[:5]}"
    assert first_occurrences(got) == expected


def test_wrong_secret_exits_3_with_a_clear_message(kinesis_server, tmp_path):
    key = kinesis_server.credentials().access_key
    env = agent_env(access_key=key, secret_key="not-the-secret")
    res = run_cli("tail", "--endpoint", kinesis_server.endpoint, "--ca", kinesis_server.ca_file, "--stream", "any",
                  "--file", str(tmp_path / "x.log"), "--state-dir", str(tmp_path / "st"), env=env)
    assert res.returncode == 3, res
    assert "refused the credentials" in res.stderr and "InvalidSignatureException" in res.stderr, res.stderr


def test_unknown_stream_without_create_exits_3(kinesis_server, tmp_path):
    name = K.unique("tail-missing")
    res = run_cli("tail", "--endpoint", kinesis_server.endpoint, "--ca", kinesis_server.ca_file, "--stream", name,
                  "--file", str(tmp_path / "x.log"), "--state-dir", str(tmp_path / "st"), env=agent_env(kinesis_server))
    assert res.returncode == 3, res
    assert "ResourceNotFoundException" in res.stderr and name in res.stderr and "--create-stream" in res.stderr, res.stderr


def test_untrusted_certificate_and_bad_flags(kinesis_server, tmp_path):
    common = ["--stream", "s", "--file", str(tmp_path / "x.log"), "--state-dir", str(tmp_path / "st")]
    res = run_cli("tail", "--endpoint", kinesis_server.endpoint, *common, env=agent_env(kinesis_server))
    assert res.returncode == 3 and "not trusted" in res.stderr and "--ca" in res.stderr, res
    res = run_cli("tail", "--endpoint", kinesis_server.endpoint, "--stream", "s", env=agent_env(kinesis_server))
    assert res.returncode == 2 and "--file" in res.stderr, res


def test_kill9_before_the_first_acknowledgement_skips_nothing(kinesis_server, kstreams, tailers, tmp_path):
    """A new file starts at its end; that start is checkpointed at once, so lines written
    before the first PutRecords of a killed agent are still sent after the restart."""
    kc = kinesis_server.kinesis()
    stream = kstreams.name()
    log = tmp_path / "app.log"
    append(log, ["old, before the first start"])
    t = tailers()
    args = ["--flush-interval-ms", "5000"]
    t.start(kinesis_server.endpoint, stream, [log], ca=kinesis_server.ca_file, env=agent_env(kinesis_server), args=args)
    t.wait_log("edge-agent tail running")
    lines = [f"unsent {i}" for i in range(10)]
    append(log, lines)
    time.sleep(0.5)
    t.kill9()
    assert read_records(kc, stream, 1, timeout=0.5) == []
    t.start(kinesis_server.endpoint, stream, [log], ca=kinesis_server.ca_file, env=agent_env(kinesis_server))
    assert texts(read_records(kc, stream, len(lines))) == lines


def test_records_refused_for_throughput_are_retried_in_order(private_server, tailers, tmp_path):
    """With AWS's per-shard limits (1000 records/s) a backlog of 3000 lines overruns the
    shard: PutRecords refuses records with ProvisionedThroughputExceededException; the agent
    retries them before newer lines, so every line arrives once and in order."""
    srv = private_server(*K.KINESIS_ARGS, "--kinesis-throughput-limits")
    stream = K.unique("tail-throttled")
    log = tmp_path / "app.log"
    lines = [f"backlog {i:05d}" for i in range(3000)]
    append(log, lines)
    t = tailers().start(srv.endpoint, stream, [log], ca=srv.ca_file, env=agent_env(srv), args=["--from-start"])
    records = read_records(srv.kinesis(), stream, len(lines), timeout=30, pace=0.3)
    got = texts(records)
    assert len(got) == len(lines) and set(got) == set(lines), f"{len(got)} records for {len(lines)} lines"
    assert got == lines, "retried lines out of order"
    assert "ProvisionedThroughputExceededException" in t.stderr(), "the server never refused a record: the test proves nothing"


def test_a_line_longer_than_a_record_is_split_not_lost(kinesis_server, kstreams, tailers, tmp_path):
    """Records hold at most 1 MiB including the partition key: a 2.5 MiB line becomes
    consecutive records of 1 MiB minus the key, which concatenate to the line."""
    kc = kinesis_server.kinesis()
    stream = kstreams.name()
    log = tmp_path / "app.log"
    log.touch()
    key = "key"
    t = tailers().start(kinesis_server.endpoint, stream, [log], ca=kinesis_server.ca_file, env=agent_env(kinesis_server), args=["--partition-key", key])
    t.wait_log("edge-agent tail running")
    long_line = "".join(chr(ord("a") + i % 26) for i in range(2_621_440))
    append(log, ["before", long_line, "after"])
    records = read_records(kc, stream, 5, timeout=15)
    data = [r["Data"] for r in records]
    limit = K.MIB - len(key)
    assert [len(d) for d in data] == [6, limit, limit, len(long_line) - 2 * limit, 5]
    assert b"".join(data[1:4]).decode() == long_line
    assert "line longer than a record" in t.stderr()


def test_kill9_with_a_batch_in_flight_loses_nothing(private_server, tailers, tmp_path):
    """The server is frozen (SIGSTOP) while the agent's PutRecords is in flight and the agent
    is killed: that batch was never acknowledged, so the restarted agent sends it again from
    the checkpoint. Whether or not the resumed server stored the orphaned request, nothing is
    lost and only lines of that batch may appear twice."""
    srv = private_server(*K.KINESIS_ARGS)
    stream = K.unique("tail-inflight")
    log = tmp_path / "app.log"
    log.touch()
    t = tailers().start(srv.endpoint, stream, [log], ca=srv.ca_file, env=agent_env(srv))
    t.wait_log("edge-agent tail running")
    first = [f"first {i:03d}" for i in range(100)]
    append(log, first)
    assert texts(read_records(srv.kinesis(), stream, len(first))) == first
    inflight = [f"in flight {i:03d}" for i in range(200)]
    os.kill(srv.proc.pid, signal.SIGSTOP)
    try:
        append(log, inflight)
        time.sleep(2.0)  # past the 1 s flush interval: the batch is on its way
        t.kill9()
    finally:
        os.kill(srv.proc.pid, signal.SIGCONT)
    after = [f"after {i:03d}" for i in range(100)]
    append(log, after)
    t.start(srv.endpoint, stream, [log], ca=srv.ca_file, env=agent_env(srv))
    expected = first + inflight + after
    got = texts(read_records(srv.kinesis(), stream, len(expected), timeout=15))
    time.sleep(1.0)
    got = texts(read_records(srv.kinesis(), stream, len(expected), timeout=15))
    assert first_occurrences(got) == expected, "lines lost or out of order"
    dups = sorted({x for x in got if got.count(x) > 1})
    assert set(dups) <= set(inflight), f"duplicated lines outside the batch in flight: {dups[:5]}"
    assert len(got) - len(expected) == len(dups) <= BATCH


def test_several_files_keep_their_own_order_and_keys(kinesis_server, kstreams, tailers, tmp_path):
    kc = kinesis_server.kinesis()
    stream = kstreams.name()
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.touch()
    b.touch()
    t = tailers().start(kinesis_server.endpoint, stream, [a, b], ca=kinesis_server.ca_file, env=agent_env(kinesis_server),
                        args=["--partition-key-from", "file", "--shard-count", "2", "--flush-interval-ms", "200"])
    t.wait_log("edge-agent tail running")
    for i in range(20):
        append(a, [f"a {i}"])
        append(b, [f"b {i}", f"b {i}+"])
    records = read_records(kc, stream, 60)
    by_key: dict[str, list[str]] = {}
    for r in records:
        by_key.setdefault(r["PartitionKey"], []).append(r["Data"].decode())
    assert by_key == {
        str(a): [f"a {i}" for i in range(20)],
        str(b): [x for i in range(20) for x in (f"b {i}", f"b {i}+")],
    }
    assert len(K.all_shards(kc, stream)) == 2
