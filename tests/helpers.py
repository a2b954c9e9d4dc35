"""Helpers for tests that start real processes: free ports, nats-server, CI processes."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from tekton_cli.procs import milvus_serves
from tekton_common.catalog import STAGES_PORT_OFFSET, get_ci
from tekton_common.client import SocketClient

BIN = Path(sys.executable).parent
PORT_SPAN = 81  # component ports run from base+0 to base+80 (Hephaestus)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _span_free(base: int, span: int) -> bool:
    for port in range(base, base + span):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_base(span: int = PORT_SPAN) -> int:
    """A port base whose whole span is free (for TEKTON_PORT_BASE / _CI_PORT_BASE)."""
    for _ in range(200):
        # below Linux's ephemeral range (32768+), where outgoing connections of the
        # processes being started could hold a port the span needs
        base = random.randrange(20000, 32400, 200)
        if _span_free(base, span):
            return base
    raise RuntimeError("no free port span found")


async def streamed(port: int, content: str, **fields: object) -> list[dict]:
    """A streamed request on a CI's socket: every event, stream_start to its end."""
    async with SocketClient("127.0.0.1", port) as client:
        await client.send({"content": content, "stream": True, **fields})
        events = [await client.receive()]
        while events[-1]["type"] not in ("stream_end", "stream_error"):
            events.append(await client.receive())
    return events


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05) -> bool:
    """Poll `predicate` until true or `timeout`; returns whether it became true."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False


def tcp_open(port: int) -> bool:
    """True when 127.0.0.1:port accepts connections."""
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_get(port: int, path: str) -> tuple[int, str]:
    """GET http://127.0.0.1:port/path → (status, body); (0, '') when unreachable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@dataclass
class LoopbackServer:
    """A real server process on a free loopback port, its data in `store`."""

    store: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def serving(self) -> bool:
        return tcp_open(self.port)

    def start(self, timeout: float = 30) -> Self:
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not wait_for(self.serving, timeout):
            raise RuntimeError(f"{self.command()[0]} did not start")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class NatsServer(LoopbackServer):
    """nats-server with JetStream."""

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        store, port = str(self.store), str(self.port)
        return [str(BIN / "nats-server"), "-js", "-sd", store, "-a", "127.0.0.1", "-p", port]


class MilvusServer(LoopbackServer):
    """Milvus Lite in server mode."""

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serving(self) -> bool:
        return tcp_open(self.port) and milvus_serves(self.uri)

    def command(self) -> list[str]:
        store, port = str(self.store), str(self.port)
        return [
            str(BIN / "milvus-lite"),
            "server",
            "--data-dir",
            store,
            "--host",
            "127.0.0.1",
            "--port",
            port,
        ]


@dataclass
class Env:
    """Settings for one test's processes, passed through the environment."""

    home: Path
    nats_url: str
    extra: dict[str, str] = field(default_factory=dict)
    port_base: int = 0
    ci_port_base: int = 0

    def __post_init__(self) -> None:
        # one free span holds both: component ports at base, CI ports at base + 100
        if not self.port_base:
            self.port_base = free_base(100 + PORT_SPAN)
            self.ci_port_base = self.port_base + 100

    def vars(self) -> dict[str, str]:
        # a developer's own model key must never turn a test into a paid API call
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TEKTON_", "ANTHROPIC_", "OPENAI_"))
        }
        env.update(
            {
                "TEKTON_HOME": str(self.home),
                "TEKTON_NATS_URL": self.nats_url,
                "TEKTON_PORT_BASE": str(self.port_base),
                "TEKTON_CI_PORT_BASE": str(self.ci_port_base),
                "PYTHONUNBUFFERED": "1",
                **self.extra,
            }
        )
        return env

    def tekton(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the `tekton` command with these settings."""
        return subprocess.run(
            [sys.executable, "-m", "tekton_cli.main", *args],
            env=self.vars(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ci_port(self, offset: int) -> int:
        return self.ci_port_base + offset

    def http_port(self, offset: int) -> int:
        return self.port_base + offset


class CIProc:
    """One CI process started by a test."""

    def __init__(
        self,
        env: Env,
        ci: str,
        module: str = "tekton_specialists",
        extra_args: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.env = env
        self.spec = get_ci(ci)
        args = ["--ci", ci] if module == "tekton_specialists" else []
        self.log = env.home / f"{self.spec.name}-{time.monotonic_ns()}.log"
        env.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, *args, *(extra_args or [])],
                env={**env.vars(), **(extra_env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def ci_port(self) -> int:
        return self.env.ci_port(self.spec.port_offset)

    @property
    def http_port(self) -> int:
        return self.env.http_port(self.spec.port_offset)

    def wait_ready(self, timeout: float = 20.0) -> CIProc:
        ok = wait_for(
            lambda: http_get(self.http_port, "/readyz")[0] == 200 or self.proc.poll() is not None,
            timeout,
        )
        if not ok or self.proc.poll() is not None:
            raise RuntimeError(f"{self.spec.name} not ready:\n{self.log.read_text()}")
        return self

    def wait_listening(self, timeout: float = 20.0) -> CIProc:
        if not wait_for(lambda: http_get(self.http_port, "/healthz")[0] == 200, timeout):
            raise RuntimeError(f"{self.spec.name} not listening:\n{self.log.read_text()}")
        return self

    def terminate(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        return int(self.proc.returncode)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()


class StagesProc:
    """The stages service (stage endpoints, run coordinator) started by a test."""

    def __init__(self, env: Env, extra_env: dict[str, str] | None = None) -> None:
        self.env = env
        self.log = env.home / f"stages-{time.monotonic_ns()}.log"
        env.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tekton_stages"],
                env={**env.vars(), **(extra_env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30.0) -> StagesProc:
        port = self.env.http_port(STAGES_PORT_OFFSET)
        ok = wait_for(
            lambda: http_get(port, "/readyz")[0] == 200 or self.proc.poll() is not None, timeout
        )
        if not ok or self.proc.poll() is not None:
            raise RuntimeError(f"stages not ready:\n{self.log.read_text()}")
        return self

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
