"""Helpers to drive the real ``edge-agent`` binary from the end-to-end tests.

The agent is a black box here: it is started as a subprocess with its documented
command line, observed through ``edge-agent status --json``, its stderr, its spool
directory and what arrives at the real ``ingest-server``. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AGENT_BIN = Path(os.environ.get("EDGE_AGENT_BIN", REPO / "target" / "debug" / "edge-agent"))
REGION = "us-west-2"

# Small, cheap capture settings for a 2-core machine: 320x240 at 15 fps with a key
# frame every second (keyframe interval = framerate), so 2 s fragments hold 30 frames.
FPS = 15
SMALL = ("--width", "320", "--height", "240", "--framerate", str(FPS), "--keyframe-interval", str(FPS))

STATUS_KEYS = {
    "stream": str,
    "state": str,
    "encoder": str,
    "spool": dict,
    "fragments": dict,
    "frames": dict,
    "bitrate_kbps": (int, float),
    "disk_write_bytes": int,
}
SPOOL_KEYS = ("fragments", "bytes", "disk_fragments", "disk_bytes", "oldest_age_secs")
FRAGMENT_KEYS = ("captured", "sent", "acked", "dropped", "errors")
FRAME_KEYS = ("captured", "dropped")
STATES = {"connecting", "connected", "backoff", "stopped"}


def require_binary():
    if not AGENT_BIN.exists():
        raise RuntimeError(
            f"agent binary {AGENT_BIN} does not exist: build it (cargo build -p edge-agent) or set EDGE_AGENT_BIN"
        )


def agent_env(server=None, *, access_key: str | None = None, secret_key: str | None = None, **extra) -> dict:
    """The environment for the agent: no AWS_* from the caller; credentials either from
    the server's own credentials file (AWS CLI INI format, profile ``default``), as a
    camera would be provisioned, or explicit keys; region matching the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_REGION=REGION, AWS_CONFIG_FILE=os.devnull, RUST_BACKTRACE="1", NO_COLOR="1")
    if access_key is not None:
        env.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key or "")
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    elif server is not None:
        env.update(AWS_SHARED_CREDENTIALS_FILE=str(server.data_dir / "credentials"), AWS_PROFILE="default")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(*args: str, env: dict | None = None, timeout: float = 15) -> subprocess.CompletedProcess:
    """One short-lived ``edge-agent`` invocation (status, metadata, fatal starts)."""
    require_binary()
    return subprocess.run(
        [str(AGENT_BIN), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or agent_env(),
    )


def check_status_schema(st: dict):
    """The documented shape of ``edge-agent status --json``."""
    for k, t in STATUS_KEYS.items():
        assert k in st, f"status lacks {k!r}: {st}"
        assert isinstance(st[k], t), f"status[{k!r}] has type {type(st[k]).__name__}: {st}"
    assert "last_error" in st and (st["last_error"] is None or isinstance(st["last_error"], str)), st
    assert st["state"] in STATES, st
    for k in SPOOL_KEYS:
        assert k in st["spool"], f"status.spool lacks {k!r}: {st}"
    for k in ("fragments", "bytes", "disk_fragments", "disk_bytes"):
        assert isinstance(st["spool"][k], int) and st["spool"][k] >= 0, st
    age = st["spool"]["oldest_age_secs"]
    assert age is None or (isinstance(age, (int, float)) and age >= 0), st
    for k in FRAGMENT_KEYS:
        assert isinstance(st["fragments"].get(k), int), f"status.fragments.{k}: {st}"
    for k in FRAME_KEYS:
        assert isinstance(st["frames"].get(k), int), f"status.frames.{k}: {st}"


class Agent:
    """One ``edge-agent run`` process (restartable on the same spool dir)."""

    def __init__(self, spool_dir: Path, log_dir: Path, name: str = "agent"):
        self.spool_dir = Path(spool_dir)
        self.log_dir = Path(log_dir)
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path: Path | None = None
        self.logs: list[Path] = []
        self.cmd: list[str] = []
        self.env: dict | None = None
        self.t_start: float | None = None
        self.returncode: int | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self, endpoint: str, stream: str, *, ca: str | None = None, source: str = "test", create_stream: bool = True, args=(), env: dict | None = None):
        require_binary()
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.log_path = self.log_dir / f"{self.name}-{self.starts}.stderr"
        self.logs.append(self.log_path)
        self.cmd = [str(AGENT_BIN), "run", "--endpoint", endpoint, "--stream", stream, "--source", source, "--spool-dir", str(self.spool_dir)]
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

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if it is still running after ``timeout``."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._close_log()
        return self.returncode

    def stop(self, timeout: float = 20.0, sig: int = signal.SIGTERM) -> int | None:
        """SIGTERM (or ``sig``) and wait (the agent flushes and exits 0); SIGKILL after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self.returncode = "killed after SIGTERM timeout"
                self._close_log()
                return None
        self.returncode = self.proc.returncode
        self._close_log()
        return self.returncode

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self.proc is not None:
            self.returncode = self.proc.returncode
        self._close_log()

    def _close_log(self):
        f = getattr(self, "_log_file", None)
        if f and not f.closed:
            f.close()

    # ----------------------------------------------------------------- logs
    def stderr(self, which: int | None = None) -> str:
        """The output of start number ``which`` (1-based; default the latest)."""
        path = self.logs[(which or len(self.logs)) - 1] if self.logs else None
        if path and path.exists():
            return path.read_text(errors="replace")
        return ""

    def all_stderr(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def stderr_tail(self, n: int = 40) -> str:
        return "\n".join(self.stderr().splitlines()[-n:])

    def describe(self) -> str:
        return f"{' '.join(self.cmd)}\n(exit: {self.proc.poll() if self.proc else None})\n--- agent stderr tail ({self.log_path}) ---\n{self.stderr_tail()}"

    # ---------------------------------------------------------- control socket
    def status_raw(self, timeout: float = 10) -> subprocess.CompletedProcess:
        return run_cli("status", "--spool-dir", str(self.spool_dir), "--json", env=self.env, timeout=timeout)

    def status(self) -> dict:
        res = self.status_raw()
        assert res.returncode == 0, f"edge-agent status failed ({res.returncode}): {res.stderr}\n{self.describe()}"
        try:
            return json.loads(res.stdout)
        except ValueError as e:
            raise AssertionError(f"edge-agent status --json printed no JSON object: {res.stdout!r} ({e})") from None

    def wait_status(self, pred, timeout: float, what: str = "condition", interval: float = 0.5) -> dict:
        """Poll the status until ``pred(status)``; fails with the last status and the log."""
        deadline = time.monotonic() + timeout
        last, last_err = None, None
        while True:
            if not self.running:
                raise AssertionError(f"agent exited while waiting for {what}\n{self.describe()}")
            res = self.status_raw()
            if res.returncode == 0:
                try:
                    last = json.loads(res.stdout)
                except ValueError:
                    last_err = f"not JSON: {res.stdout!r}"
                else:
                    if pred(last):
                        return last
            else:
                last_err = res.stderr.strip()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; last status: {last} (status error: {last_err})\n{self.describe()}")
            time.sleep(interval)

    def metadata_put(self, name: str, value: str, *, persistent: bool = False) -> subprocess.CompletedProcess:
        args = ["metadata", "put"]
        if persistent:
            args.append("--persistent")
        args += ["--spool-dir", str(self.spool_dir), name, value]
        return run_cli(*args, env=self.env)

    def metadata_remove(self, name: str) -> subprocess.CompletedProcess:
        return run_cli("metadata", "remove", "--spool-dir", str(self.spool_dir), name, env=self.env)

    # ----------------------------------------------------------------- spool
    @property
    def fragment_dir(self) -> Path:
        return self.spool_dir / "fragments"

    def spool_files(self) -> list[Path]:
        if not self.fragment_dir.exists():
            return []
        return sorted(p for p in self.fragment_dir.iterdir() if p.name.endswith(".frag"))


def spool_file_timestamp_ms(path: Path) -> int | None:
    """Best-effort producer timestamp (epoch ms) of a spooled fragment, to identify it in
    ListFragments. Not part of the agent's contract: the caller validates the value and
    falls back to counting. Tries the agent's record prefix (magic ``EAFR``, version,
    3 zero bytes, u64 LE timecode ms), then the first MKV Cluster Timecode in the file."""
    data = path.read_bytes()
    if len(data) >= 16 and data[:4] == b"EAFR":
        return struct.unpack_from("<Q", data, 8)[0]
    i = data.find(b"\x1f\x43\xb6\x75")
    if i < 0:
        return None
    import ebml  # the independent EBML walker of this suite

    try:
        _, slen, _ = ebml.read_vint(data, i + 4)
        pos = i + 4 + slen
        eid, idlen, _ = ebml.read_vint(data, pos, keep_marker=True)
        if eid != ebml.TIMECODE:
            return None
        size, sl, _ = ebml.read_vint(data, pos + idlen)
        start = pos + idlen + sl
        return int.from_bytes(data[start : start + size], "big")
    except ebml.EbmlError:
        return None
