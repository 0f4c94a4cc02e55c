"""Fixtures for the end-to-end suite: the real ``ingest-server`` binary over
real TLS, boto3 / AWS CLI clients, media and upload helpers."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ebml  # noqa: E402
import media  # noqa: E402
import putmedia  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SERVER_BIN = Path(os.environ.get("INGEST_SERVER_BIN", REPO / "target" / "debug" / "ingest-server"))
REGION = "us-west-2"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """One ``ingest-server`` process on a data directory (restartable)."""

    def __init__(self, data_dir: Path, log_dir: Path, extra_args: tuple[str, ...] = (), ca_file: str | None = None):
        self.data_dir = Path(data_dir)
        self.plain = "--plain-http" in extra_args
        self._ca_override = ca_file
        self.log_dir = Path(log_dir)
        self.extra_args = tuple(extra_args)
        self.port = free_port()
        self.data_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.starts = 0

    # ---------------------------------------------------------------- paths
    @property
    def ca_file(self) -> str:
        return self._ca_override or str(self.data_dir / "tls" / "ca.pem")

    @property
    def scheme(self) -> str:
        return "http" if self.plain else "https"

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://{HOST}:{self.port}"

    @property
    def data_endpoint(self) -> str:
        return f"{self.scheme}://{HOST}:{self.data_port}"

    def log(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")
        return ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    # ------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 30.0):
        if not SERVER_BIN.exists():
            raise RuntimeError(
                f"server binary {SERVER_BIN} does not exist: build it (cargo build -p ingest-server) "
                "or set INGEST_SERVER_BIN"
            )
        self.starts += 1
        self.log_path = self.log_dir / f"server-{self.data_dir.name}-{self.starts}.log"
        cmd = [
            str(SERVER_BIN),
            "--data-dir",
            str(self.data_dir),
            "--listen",
            f"{HOST}:{self.port}",
            "--data-listen",
            f"{HOST}:{self.data_port}",
            *self.extra_args,
        ]
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT, env={**os.environ, "RUST_BACKTRACE": "1", "NO_COLOR": "1"})
        deadline = time.monotonic() + timeout
        last_err = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"ingest-server exited with {self.proc.returncode} during start-up: {' '.join(cmd)}\n"
                    f"--- server log ---\n{self.log_tail()}"
                )
            if (self.plain or os.path.exists(self.ca_file)) and (self.data_dir / "credentials").exists():
                try:
                    for port in (self.port, self.data_port):
                        if self.plain:
                            socket.create_connection((HOST, port), timeout=2).close()
                        else:
                            self.tls_probe(port)
                    return self
                except (OSError, ssl.SSLError) as e:
                    last_err = e
            time.sleep(0.1)
        self.kill9()
        raise RuntimeError(
            f"ingest-server did not accept TLS connections on {self.port}/{self.data_port} within {timeout}s "
            f"(last error: {last_err!r})\n--- server log ---\n{self.log_tail()}"
        )

    def tls_probe(self, port: int, alpn=("h2", "http/1.1")) -> str | None:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        with socket.create_connection((HOST, port), timeout=2) as raw:
            with ctx.wrap_socket(raw, server_hostname=HOST) as s:
                return s.selected_alpn_protocol()

    def stop(self, timeout: float = 10.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._close_log()

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def restart(self):
        self.stop()
        return self.start()

    def _close_log(self):
        f = getattr(self, "log_file", None)
        if f and not f.closed:
            f.close()

    # ----------------------------------------------------------- credentials
    def credentials(self) -> Credentials:
        cp = configparser.ConfigParser()
        cp.read(self.data_dir / "credentials")
        sec = cp["default"]
        return Credentials(sec["aws_access_key_id"].strip(), sec["aws_secret_access_key"].strip())

    # --------------------------------------------------------------- clients
    def client(self, service: str, *, endpoint: str | None = None, creds: Credentials | None = None, verify=None, **config):
        creds = creds or self.credentials()
        cfg = {"retries": {"total_max_attempts": 1}, "connect_timeout": 5, "read_timeout": 30}
        cfg.update(config)
        if endpoint is None:
            endpoint = self.endpoint if service == "kinesisvideo" else self.data_endpoint
        return boto3.session.Session().client(
            service,
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id=creds.access_key,
            aws_secret_access_key=creds.secret_key,
            verify=(None if self.plain else self.ca_file) if verify is None else verify,
            config=Config(**cfg),
        )

    def kv(self, **kw):
        return self.client("kinesisvideo", **kw)

    def media(self, **kw):
        return self.client("kinesis-video-media", **kw)

    def archived(self, **kw):
        return self.client("kinesis-video-archived-media", **kw)

    def kinesis(self, **kw):
        """A boto3 Kinesis Data Streams client: served on the MAIN endpoint (not the
        video data endpoint that ``client()`` defaults to for other services)."""
        kw.setdefault("endpoint", self.endpoint)
        return self.client("kinesis", **kw)

    def aws_cli(self, *args: str, endpoint: str | None = None, check: bool = True, timeout: float = 60):
        """Run the real AWS CLI against the server; returns the CompletedProcess
        (``.json`` holds the parsed stdout when it is JSON)."""
        creds = self.credentials()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_")
        }
        env.update(
            AWS_CA_BUNDLE=self.ca_file,
            AWS_ACCESS_KEY_ID=creds.access_key,
            AWS_SECRET_ACCESS_KEY=creds.secret_key,
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_MAX_ATTEMPTS="1",
            AWS_PAGER="",
        )
        aws = shutil.which("aws") or "aws"
        cmd = [aws, *args, "--endpoint-url", endpoint or self.endpoint, "--output", "json"]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        res.json = None
        if res.stdout.strip():
            try:
                res.json = json.loads(res.stdout)
            except ValueError:
                pass
        if check and res.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    # ------------------------------------------------------------- PutMedia
    def put_media(self, stream: str, parts, **kw) -> putmedia.PutMediaResult:
        kw.setdefault("credentials", self.credentials())
        kw.setdefault("ca_file", self.ca_file)
        kw.setdefault("region", REGION)
        kw.setdefault("plain", self.plain)
        port = kw.pop("port", self.data_port)
        return putmedia.put_media(HOST, port, parts, stream_name=stream, **kw)

    def session(self, stream: str | None, **kw) -> putmedia.PutMediaSession:
        kw.setdefault("credentials", self.credentials())
        kw.setdefault("ca_file", self.ca_file)
        kw.setdefault("region", REGION)
        kw.setdefault("plain", self.plain)
        return putmedia.PutMediaSession(HOST, kw.pop("port", self.data_port), stream_name=stream, **kw)


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The shared server for all tests that do not restart or kill it."""
    data = tmp_path_factory.mktemp("server-data")
    srv = Server(data, tmp_path_factory.mktemp("logs"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def private_server(tmp_path_factory):
    """A server of its own (for crash/restart tests); factory with extra args."""
    servers = []

    def make(*extra_args, ca_file=None):
        srv = Server(tmp_path_factory.mktemp("private-data"), tmp_path_factory.mktemp("logs"), extra_args, ca_file=ca_file)
        servers.append(srv)
        return srv.start()

    yield make
    for s in servers:
        s.kill9()


@pytest.fixture(scope="session")
def kinesis_server(tmp_path_factory):
    """The shared server for the Kinesis Data Streams tests (test_kinesis_*.py): short
    CREATING/UPDATING/DELETING states so that the suite stays fast."""
    import kinesis as kinesis_helpers

    srv = Server(tmp_path_factory.mktemp("kinesis-data"), tmp_path_factory.mktemp("logs"), kinesis_helpers.KINESIS_ARGS)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def kstreams(request, kinesis_server):
    """Uniquely named Kinesis streams for one test, deleted afterwards:
    ``kstreams.create(shards)`` returns the name of an ACTIVE stream, ``kstreams.name()`` a fresh name."""
    import kinesis as kinesis_helpers

    streams = kinesis_helpers.Streams(kinesis_server.kinesis(), request.node.name)
    yield streams
    streams.cleanup()


@pytest.fixture(autouse=True)
def _show_kinesis_server_log_on_failure(request):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "kinesis_server" in request.fixturenames:
        srv = request.getfixturevalue("kinesis_server")
        print(f"\n--- kinesis server log tail ({srv.log_path}) ---\n{srv.log_tail(40)}")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip4(media_dir) -> bytes:
    """4 s of 320x240 30 fps H.264, one key frame per second (4 fragments)."""
    return media.clip(media_dir, seconds=4)


@pytest.fixture(scope="session")
def clip6(media_dir) -> bytes:
    return media.clip(media_dir, seconds=6, pattern="ball")


def unique_name(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def stream_name(request) -> str:
    base = re.sub(r"[^a-zA-Z0-9_.-]", "-", request.node.name)[:60]
    return unique_name(base)


def whole_second_ms(offset_s: int = 0) -> int:
    """Now (minus ``offset_s`` seconds) in epoch ms, rounded down to a whole second
    (boto3 serialises timestamps as whole seconds)."""
    return (int(time.time()) - offset_s) * 1000


def create_stream(server: Server, name: str, retention_hours: int = 24, **kw) -> dict:
    kv = server.kv()
    kv.create_stream(StreamName=name, DataRetentionInHours=retention_hours, MediaType="video/h264", **kw)
    return kv.describe_stream(StreamName=name)["StreamInfo"]


def list_all_fragments(server: Server, stream: str, page_size: int = 1000, selector=None) -> list[dict]:
    arch = server.archived()
    kwargs = {"StreamName": stream, "PaginationConfig": {"PageSize": page_size}}
    if selector:
        kwargs["FragmentSelector"] = selector
    frags = []
    for page in arch.get_paginator("list_fragments").paginate(**kwargs):
        frags.extend(page["Fragments"])
    return sorted(frags, key=lambda f: int(f["FragmentNumber"]))


def wait_fragments(server: Server, stream: str, count: int, timeout: float = 5.0) -> list[dict]:
    """ListFragments is eventually consistent (AWS: typically < 1 s): poll."""
    deadline = time.monotonic() + timeout
    while True:
        frags = list_all_fragments(server, stream)
        if len(frags) >= count or time.monotonic() > deadline:
            return frags
        time.sleep(0.2)


class MediaReader:
    """Reads a GetMedia / GetMediaForFragmentList streaming body incrementally,
    decoding fragments as they arrive and recording their arrival times."""

    def __init__(self, payload):
        self.payload = payload
        self.raw = payload._raw_stream
        self.buf = bytearray()
        self.fragments: list[ebml.Fragment] = []
        self.arrival: list[float] = []
        self.arrival_wall: list[float] = []
        self.eof = False
        self.timed_out = False

    def _read_some(self) -> bytes:
        try:
            return self.raw.read1(65536)
        except AttributeError:
            return self.raw.read(4096)

    def read(self, *, until_fragments: int | None = None, until=None, timeout: float = 20.0) -> "MediaReader":
        """Read until ``until_fragments`` complete fragments arrived, or EOF, or
        ``timeout`` (then ``eof`` stays False). The client's read timeout bounds
        a single blocked read."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if until_fragments is not None and len(self.fragments) >= until_fragments:
                break
            if until is not None and until(self.fragments):
                break
            if time.monotonic() > deadline:
                break
            try:
                data = self._read_some()
            except Exception as e:  # urllib3 ReadTimeoutError and friends
                if "timed out" in str(e).lower() or "timeout" in type(e).__name__.lower():
                    self.timed_out = True
                    break
                raise
            if not data:
                self.eof = True
                self.fragments = ebml.getmedia_fragments(bytes(self.buf), strict=True)
                while len(self.arrival) < len(self.fragments):
                    self.arrival.append(time.monotonic())
                break
            self.buf += data
            frags = ebml.getmedia_fragments(bytes(self.buf), strict=False)
            now = time.monotonic()
            while len(self.arrival) < len(frags):
                self.arrival.append(now)
                self.arrival_wall.append(time.time())
            self.fragments = frags
        return self

    def _force_close(self):
        try:
            self.payload.close()
        except Exception:
            pass

    def close(self):
        self._force_close()


def get_media(server: Server, stream: str, selector: dict, *, until_fragments=None, until=None, timeout=20.0) -> MediaReader:
    resp = server.media(read_timeout=timeout).get_media(StreamName=stream, StartSelector=selector)
    reader = MediaReader(resp["Payload"])
    reader.content_type = resp.get("ContentType")
    try:
        reader.read(until_fragments=until_fragments, until=until, timeout=timeout)
    finally:
        if not reader.eof:
            reader.close()
    return reader


def block_keys(fragment_blocks) -> list[tuple]:
    return [(b.track, b.timecode, b.keyframe, b.frame) for b in fragment_blocks]


def spec_keys(spec: ebml.FragmentSpec) -> list[tuple]:
    return [(t, rel, key, frame) for t, rel, key, frame in spec.blocks]


@pytest.fixture(autouse=True)
def _show_server_log_on_failure(request):
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        print(f"\n--- server log tail ({srv.log_path}) ---\n{srv.log_tail(40)}")


# ------------------------------------------------------------ session expiry
EXPIRY_TEST = "test_session_expiry.py::test_expired_session_token_is_refused"


def pytest_collection_modifyitems(session, config, items):
    """The session-expiry test needs a playback session created 300 s (AWS's shortest Expires)
    before it runs: the first test of the run creates it, and the test runs last."""
    expiry = [i for i in items if i.nodeid.endswith(EXPIRY_TEST)]
    if not expiry:
        return
    for item in expiry:
        items.remove(item)
    items.extend(expiry)
    if items[0] not in expiry:
        items[0].fixturenames.append("early_playback_session")


@dataclass
class EarlySession:
    request: dict
    master: str
    media: str
    segment: str
    expires: int
    created: float
    server_starts: int


@pytest.fixture(scope="session")
def early_playback_session(server, clip6) -> EarlySession:
    from urllib.parse import urljoin

    from playback import fetch, master_variant, parse_media_playlist
    from test_playback import producer_range, record

    rec = record(server, clip6, unique_name("expiry"))
    request = {
        "StreamName": rec.stream,
        "PlaybackMode": "ON_DEMAND",
        "HLSFragmentSelector": producer_range(rec.start_ms, rec.end_ms + 500),
    }
    expires = 300
    master = server.archived().get_hls_streaming_session_url(**request, Expires=expires)["HLSStreamingSessionURL"]
    created = time.monotonic()
    resp = fetch(server, master)
    assert resp.status_code == 200, resp.text
    media = urljoin(master, master_variant(resp.text)[1])
    resp = fetch(server, media)
    assert resp.status_code == 200, resp.text
    segment = urljoin(media, parse_media_playlist(resp.text).segments[0].uri)
    assert fetch(server, segment).status_code == 200
    return EarlySession(request, master, media, segment, expires, created, server.starts)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
