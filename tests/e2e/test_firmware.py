"""Device builds end to end (issue 8): the cross-compiled ``edge-agent`` (aarch64, armv7)
runs under qemu-user with the target's own Debian 12 GStreamer (the build sysroot) and
streams the test source over TLS to the real x86_64 ``ingest-server``; the fragments are
listed and decoded with ffprobe. ``edge-agent provision`` writes a device configuration,
checks it against the real server and reports each kind of problem with its own exit status;
the configuration it writes is then used by ``edge-agent run``.

The qemu tests are skipped, with the command to run, when a cross binary is not built
(``firmware/build.sh aarch64 --package edge-agent``) or is older than the agent's sources;
``firmware/test.sh`` builds and runs them. The provisioning tests use the native binary of
the suite (EDGE_AGENT_BIN)."""

from __future__ import annotations

import atexit
import configparser
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path

import pytest

import media
from conftest import HOST, REGION, REPO, MediaReader, free_port, list_all_fragments, unique_name

TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
SYSROOT_DIR = Path(os.environ.get("FIRMWARE_SYSROOT_DIR", TARGET_DIR / "firmware" / "sysroot"))
NATIVE_AGENT = Path(os.environ.get("EDGE_AGENT_BIN", REPO / "target" / "debug" / "edge-agent"))
# arch -> (Rust target, Debian architecture, qemu-user binary)
CROSS = {
    "aarch64": ("aarch64-unknown-linux-gnu", "arm64", "qemu-aarch64-static"),
    "armv7": ("armv7-unknown-linux-gnueabihf", "armhf", "qemu-arm-static"),
}
FPS = 15
SMALL = ["--width", "320", "--height", "240", "--framerate", str(FPS), "--keyframe-interval", str(FPS)]

# provision's exit statuses (edge-agent provision --help)
EXIT_CONFIG, EXIT_UNREACHABLE, EXIT_CERTIFICATE, EXIT_CREDENTIALS, EXIT_STREAM_MISSING = 2, 4, 5, 6, 7


# ------------------------------------------------------------------ helpers
def clean_env(**extra) -> dict:
    """No AWS_* from the caller: each test says where credentials come from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, RUST_BACKTRACE="1", NO_COLOR="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def newest_source_mtime() -> float:
    """Of the agent's own code (Cargo.lock is left out: other crates' dependencies change it)."""
    paths = [REPO / "edge-agent" / "Cargo.toml"]
    for sub in ("edge-agent/src", "mkv-fragment/src", "aws-credentials-file/src"):
        paths.extend((REPO / sub).rglob("*.rs"))
    return max(p.stat().st_mtime for p in paths if p.exists())


def cross_agent(arch: str) -> list[str]:
    """The command prefix running the cross-built agent under qemu-user, or a skip."""
    triple, debarch, qemu = CROSS[arch]
    binary = Path(os.environ.get(f"FIRMWARE_AGENT_{arch.upper()}", TARGET_DIR / triple / "firmware" / "edge-agent"))
    sysroot = SYSROOT_DIR / debarch
    build = f"firmware/build.sh {arch} --package edge-agent (or firmware/test.sh)"
    if not binary.exists():
        pytest.skip(f"the {arch} agent is not built ({binary} is missing): run {build}")
    if not (sysroot / ".firmware-sysroot").exists():
        pytest.skip(f"the {debarch} sysroot {sysroot} is missing: run {build}")
    if binary.stat().st_mtime < newest_source_mtime() and not os.environ.get("FIRMWARE_ALLOW_STALE"):
        pytest.skip(f"the {arch} agent {binary} is older than the agent's sources: run {build}")
    qemu_bin = shutil.which(qemu)
    if not qemu_bin:
        pytest.skip(f"{qemu} is not installed (apt-get install qemu-user-static; firmware/test.sh does)")
    return [qemu_bin, "-L", str(sysroot), str(binary)]


def qemu_env(tmp_path: Path, arch: str = "aarch64", **extra) -> dict:
    """GStreamer scans the target's plugins in-process (no gst-plugin-scanner child, which
    qemu-user would have to start as well) into a registry file of this test. For the
    32-bit target the plugins are listed from a copy on tmpfs: under qemu-user the kernel
    serves a 64-bit process and gives ext4's 64-bit directory offsets, which the 32-bit
    readdir() GLib uses cannot represent (EOVERFLOW: no plugin found). On a device the
    kernel gives 32-bit processes 32-bit offsets."""
    env = dict(GST_REGISTRY_FORK="no", GST_REGISTRY=tmp_path / "gst-registry.bin")
    if arch == "armv7":
        env["GST_PLUGIN_SYSTEM_PATH"] = tmpfs_plugins("armhf", "arm-linux-gnueabihf")
    return clean_env(**env, **extra)


_TMPFS_PLUGINS: dict[str, str] = {}


def tmpfs_plugins(debarch: str, triplet: str) -> str:
    if debarch not in _TMPFS_PLUGINS:
        shm = Path("/dev/shm")
        if not shm.is_dir():
            pytest.skip("/dev/shm (tmpfs) is needed to run a 32-bit target's GStreamer under qemu-user")
        dest = Path(tempfile.mkdtemp(prefix=f"firmware-gst-{debarch}-", dir=shm))
        atexit.register(shutil.rmtree, dest, True)
        for so in (SYSROOT_DIR / debarch / "usr" / "lib" / triplet / "gstreamer-1.0").glob("*.so"):
            shutil.copy2(so, dest / so.name)
        _TMPFS_PLUGINS[debarch] = str(dest)
    return _TMPFS_PLUGINS[debarch]


def server_keys(server) -> tuple[str, str]:
    creds = server.credentials()
    return creds.access_key, creds.secret_key


def wait_fragments(server, stream: str, count: int, timeout: float, proc: subprocess.Popen, log: Path) -> list[dict]:
    deadline = time.monotonic() + timeout
    frags: list[dict] = []
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"agent exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            frags = list_all_fragments(server, stream)
        except Exception as e:  # the stream is created by the agent
            if "ResourceNotFound" not in str(e):
                raise
        if len(frags) >= count:
            return frags
        time.sleep(1)
    raise AssertionError(f"{len(frags)} fragments after {timeout}s (wanted {count}):\n{log.read_text(errors='replace')[-3000:]}")


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def decode(server, stream: str, numbers: list[str], out: Path) -> tuple[list, dict]:
    resp = server.archived().get_media_for_fragment_list(StreamName=stream, Fragments=numbers)
    reader = MediaReader(resp["Payload"]).read(timeout=30)
    assert reader.eof, "GetMediaForFragmentList did not end"
    out.write_bytes(b"".join(f.segment_bytes for f in reader.fragments))
    return reader.fragments, media.ffprobe_count_frames(out)


# ------------------------------------------------- 1. the cross builds under qemu
@pytest.mark.timeout(240)
@pytest.mark.parametrize("arch", sorted(CROSS))
def test_cross_agent_streams_under_qemu(arch, server, stream_name, tmp_path):
    agent = cross_agent(arch)
    version = subprocess.run([*agent, "--version"], capture_output=True, text=True, timeout=60, env=qemu_env(tmp_path, arch))
    assert version.returncode == 0 and version.stdout.startswith("edge-agent "), version

    log = tmp_path / f"agent-{arch}.log"
    cmd = [
        *agent, "run", "--endpoint", server.endpoint, "--ca", server.ca_file, "--stream", stream_name,
        "--create-stream", "--source", "test", "--encoder", "x264enc", "--spool-dir", str(tmp_path / "spool"), *SMALL,
    ]
    env = qemu_env(tmp_path, arch, AWS_SHARED_CREDENTIALS_FILE=server.data_dir / "credentials", AWS_REGION=REGION)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            # Emulated x264 and TLS are slow to start: allow a generous first fragment.
            frags = wait_fragments(server, stream_name, 3, 150, proc, log)
        finally:
            code = stop(proc)
    text = log.read_text(errors="replace")
    assert code == 0, f"SIGTERM should stop the agent cleanly (exit {code}):\n{text[-3000:]}"
    assert "panicked" not in text, text[-3000:]
    assert "encoder=x264enc" in text, text[-3000:]

    frags = sorted(frags, key=lambda f: f["ProducerTimestamp"])
    numbers = [f["FragmentNumber"] for f in frags[:3]]
    got, info = decode(server, stream_name, numbers, tmp_path / f"{arch}.mkv")
    assert [g.fragment_number for g in got] == numbers
    for g in got:
        assert g.cluster.blocks and g.cluster.blocks[0].keyframe, f"fragment {g.fragment_number} must start with a key frame"
    assert info["returncode"] == 0, info["stderr"]
    assert (info.get("codec_name"), info.get("width"), info.get("height")) == ("h264", "320", "240"), info
    assert int(info["nb_read_frames"]) == sum(len(g.cluster.blocks) for g in got) > 0, info


@pytest.mark.timeout(120)
def test_cross_agent_provisions_under_qemu(server, stream_name, tmp_path):
    """The provisioning path of the device binary (rustls/ring on aarch64) against the server."""
    agent = cross_agent("aarch64")
    key, secret = server_keys(server)
    conf = tmp_path / "etc"
    res = subprocess.run(
        [*agent, "provision", "--config-dir", str(conf), "--endpoint", server.endpoint, "--ca", server.ca_file,
         "--stream", stream_name, "--create-stream", "--source", "test", "--region", REGION, "--no-enable"],
        capture_output=True, text=True, timeout=100,
        env=qemu_env(tmp_path, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret),
    )
    assert res.returncode == 0, res
    assert server.kv().describe_stream(StreamName=stream_name)["StreamInfo"]["Status"] == "ACTIVE"
    assert tomllib.loads((conf / "edge-agent.toml").read_text())["stream"] == stream_name


# --------------------------------------------------------------- 2. provisioning
def provision(*args: str, env: dict, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    if not NATIVE_AGENT.exists():
        raise RuntimeError(f"agent binary {NATIVE_AGENT} does not exist: cargo build -p edge-agent, or set EDGE_AGENT_BIN")
    return subprocess.run([str(NATIVE_AGENT), "provision", *args], capture_output=True, text=True, input=stdin, timeout=timeout, env=env)


def key_env(server, **extra) -> dict:
    key, secret = server_keys(server)
    return clean_env(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, **extra)


@pytest.mark.timeout(120)
def test_provision_writes_a_config_the_agent_runs_with(server, stream_name, tmp_path):
    conf = tmp_path / "etc-edge-agent"
    res = provision(
        "--config-dir", str(conf), "--endpoint", server.endpoint, "--ca", server.ca_file, "--stream", stream_name,
        "--create-stream", "--retention-hours", "2", "--source", "test", "--region", REGION,
        "--spool-dir", str(tmp_path / "spool"), "--no-enable",
        env=key_env(server),
    )
    assert res.returncode == 0, res
    assert "ACTIVE" in res.stdout and "not enabled" in res.stdout, res.stdout
    info = server.kv().describe_stream(StreamName=stream_name)["StreamInfo"]
    assert (info["Status"], info["DataRetentionInHours"]) == ("ACTIVE", 2), info

    config = tomllib.loads((conf / "edge-agent.toml").read_text())
    assert config["endpoint"] == server.endpoint
    assert config["stream"] == stream_name
    assert config["ca"] == str(conf / "ca.pem")
    assert config["region"] == REGION
    assert config["create_stream"] is True and config["retention_hours"] == 2
    assert config["capture"]["source"] == "test"
    assert config["spool"]["dir"] == str(tmp_path / "spool")
    assert config["uplink"]["stale_after"] == 10.0, "the rest of the example configuration is kept"
    assert (conf / "ca.pem").read_bytes() == Path(server.ca_file).read_bytes()
    creds_path = conf / "credentials"
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o640
    cp = configparser.ConfigParser()
    cp.read(creds_path)
    key, secret = server_keys(server)
    assert (cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"]) == (key, secret)
    assert sorted(p.name for p in conf.iterdir()) == ["ca.pem", "credentials", "edge-agent.toml"], "no staged files left"

    # The unit's command line with the unit's credentials variable: the agent streams.
    log = tmp_path / "agent.log"
    env = clean_env(AWS_SHARED_CREDENTIALS_FILE=creds_path)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(NATIVE_AGENT), "run", "--config", str(conf / "edge-agent.toml"), *SMALL],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
        try:
            frags = wait_fragments(server, stream_name, 2, 40, proc, log)
        finally:
            code = stop(proc)
    assert code == 0, log.read_text(errors="replace")[-3000:]
    assert len(frags) >= 2


@pytest.mark.timeout(60)
def test_provision_reads_the_secret_from_stdin_and_keeps_keys_on_reprovisioning(server, tmp_path):
    conf = tmp_path / "etc"
    key, secret = server_keys(server)
    stream = unique_name("stdin")
    base = ("--config-dir", str(conf), "--endpoint", server.endpoint, "--ca", server.ca_file, "--create-stream", "--no-enable", "--region", REGION)
    res = provision(*base, "--stream", stream, "--access-key-id", key, "--secret-stdin", env=clean_env(), stdin=secret + "\n")
    assert res.returncode == 0, res
    # Again without keys: the provisioned ones are kept, the new stream name is taken.
    stream2 = unique_name("again")
    res = provision(*base, "--stream", stream2, env=clean_env())
    assert res.returncode == 0, res
    cp = configparser.ConfigParser()
    cp.read(conf / "credentials")
    assert cp["default"]["aws_secret_access_key"] == secret
    assert tomllib.loads((conf / "edge-agent.toml").read_text())["stream"] == stream2


@pytest.mark.timeout(60)
def test_provision_names_the_stream_after_the_device(server, tmp_path):
    if Path("/proc/device-tree/serial-number").exists():
        pytest.skip("this machine has a device-tree serial number")
    cpuinfo_serial = any(line.split(":")[0].strip() == "Serial" for line in Path("/proc/cpuinfo").read_text().splitlines())
    if cpuinfo_serial:
        pytest.skip("this machine has a cpuinfo serial number")
    conf = tmp_path / "etc"
    res = provision("--config-dir", str(conf), "--endpoint", server.endpoint, "--ca", server.ca_file, "--create-stream", "--no-enable", env=key_env(server, AWS_REGION=REGION))
    assert res.returncode == 0, res
    hostname = socket.gethostname()
    expected = "".join(c if c.isascii() and (c.isalnum() or c in "_.-") else "-" for c in hostname)
    assert tomllib.loads((conf / "edge-agent.toml").read_text())["stream"] == expected
    assert "from the host name" in res.stdout, res.stdout
    server.kv().describe_stream(StreamName=expected)


def problem_cases(server, tmp_path):
    """(name, extra args, env, expected status, words expected in the message)."""
    missing = unique_name("missing")
    closed_port = free_port()
    good = key_env(server)
    key, _ = server_keys(server)
    return [
        ("unreachable", ["--endpoint", f"https://{HOST}:{closed_port}", "--ca", server.ca_file, "--stream", missing], good, EXIT_UNREACHABLE, ["unreachable", str(closed_port)]),
        ("certificate", ["--endpoint", server.endpoint, "--stream", missing], good, EXIT_CERTIFICATE, ["certificate", "--ca"]),
        ("credentials", ["--endpoint", server.endpoint, "--ca", server.ca_file, "--stream", missing],
         clean_env(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY="wrong-secret"), EXIT_CREDENTIALS, ["credentials", "refused"]),
        ("stream-missing", ["--endpoint", server.endpoint, "--ca", server.ca_file, "--stream", missing], good, EXIT_STREAM_MISSING, ["stream", missing, "--create-stream"]),
        ("bad-endpoint", ["--endpoint", "ftp://nowhere", "--stream", missing], good, EXIT_CONFIG, ["https://"]),
    ]


@pytest.mark.timeout(120)
def test_provision_reports_each_problem_and_changes_nothing(server, tmp_path):
    for name, args, env, status, words in problem_cases(server, tmp_path):
        conf = tmp_path / f"etc-{name}"
        res = provision("--config-dir", str(conf), "--region", REGION, "--no-enable", *args, env=env)
        assert res.returncode == status, f"{name}: {res}"
        message = res.stderr.lower()
        for w in words:
            assert w.lower() in message, f"{name}: {w!r} not in {res.stderr!r}"
        assert "wrong-secret" not in res.stderr + res.stdout, "the secret must never be printed"
        assert not conf.exists() or not any(conf.iterdir()), f"{name}: files left in {conf}: {list(conf.iterdir())}"
