"""Shared fixtures: a real nats-server per test module, settings, and CI processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.helpers import CIProc, Env, MilvusServer, NatsServer


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server with JetStream on a free port, shared by one test module."""
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture
def env(tmp_path: Path, nats_server: NatsServer) -> Env:
    """Fresh TEKTON_HOME and free port bases for this test's processes."""
    return Env(
        home=tmp_path / "home",
        nats_url=nats_server.url,
        extra={"TEKTON_HEARTBEAT_INTERVAL": "0.5", "TEKTON_STALE_AFTER": "2"},
    )


@pytest.fixture
def start_ci(env: Env) -> Iterator[Callable[..., CIProc]]:
    """Start CI processes for a test; all are stopped (and reaped) afterwards."""
    started: list[CIProc] = []

    def start(ci: str, ready: bool = True, **kwargs: object) -> CIProc:
        proc = CIProc(env, ci, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc.wait_ready() if ready else proc

    yield start
    for proc in started:
        proc.terminate()


@pytest.fixture
def start_many(env: Env, start_ci: Callable[..., CIProc]) -> Callable[..., dict[str, CIProc]]:
    """Start several CIs at once (name → extra environment), then wait for all."""

    def start(cis: dict[str, dict[str, str]]) -> dict[str, CIProc]:
        procs = {}
        for name, extra_env in cis.items():
            module = {"rhetor": "tekton_rhetor", "numa": "tekton_numa"}.get(
                name, "tekton_specialists"
            )
            procs[name] = start_ci(name, ready=False, module=module, extra_env=extra_env)
        for proc in procs.values():
            proc.wait_ready()
        return procs

    return start


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A local server that speaks Anthropic's Messages API."""
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    """Milvus Lite in server mode on a free port, shared by one test module."""
    server = MilvusServer(tmp_path_factory.mktemp("milvus")).start(timeout=60)
    yield server
    server.stop()


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    """An OTLP receiver (gRPC and HTTP) that keeps every span sent to it."""
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()
