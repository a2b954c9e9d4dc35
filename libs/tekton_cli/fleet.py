"""`tekton up` and `tekton down`: start and stop nats-server and the CI processes."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from tekton_cli import local_server, supervisor
from tekton_cli.postgres import ensure_postgres, stop_postgres
from tekton_cli.procs import (
    ProcessRecord,
    alive,
    api_command,
    ci_command,
    http_status,
    milvus_command,
    milvus_serves,
    nats_command,
    pid_file,
    port_open,
    read_record,
    spawn,
    stages_command,
    stages_port,
    stop_process,
)
from tekton_common import bus
from tekton_common.catalog import CISpec, fleet_order, get_ci
from tekton_common.contract.seats import parse_seat
from tekton_common.errors import ConfigError, TektonError, TransportError
from tekton_common.providers.local import PREFIX, is_local, local_name, served, verify
from tekton_common.registry import read_registry, remove_ci
from tekton_common.settings import Settings

NATS = "nats-server"
MILVUS = "milvus"
STAGES = "tekton-stages"
API = "tekton-api"
LOCAL = local_server.NAME
#: the setting that moves each embedded server's port
PORT_SETTINGS = {NATS: "TEKTON_NATS_PORT", MILVUS: "TEKTON_MILVUS_PORT", LOCAL: "TEKTON_LOCAL_PORT"}
Say = Callable[[str], None]


class StartResult(msgspec.Struct):
    """Outcome of starting one CI."""

    ci: str
    pid: int
    ready: bool
    registered: bool
    seconds: float
    detail: str = ""


def select(names: list[str]) -> list[CISpec]:
    """The CIs named (any alias), in fleet order; all of them when none are named."""
    if not names:
        return fleet_order()
    wanted = {get_ci(n).name for n in names}
    return [spec for spec in fleet_order() if spec.name in wanted]


def tail(path: str, lines: int = 8) -> str:
    """The last lines of a log, for error messages."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def ensure_server(
    settings: Settings,
    name: str,
    command: list[str],
    port: int,
    say: Say,
    timeout: float,
    ready: Callable[[], Awaitable[bool]] | None = None,
) -> None:
    """Start an embedded server (`name` on loopback `port`) unless it is running already;
    `ready` tells when it serves (an open port, unless given)."""

    async def serving() -> bool:
        return await port_open("127.0.0.1", port) and (ready is None or await ready())

    if alive(read_record(settings, name)) and await serving():
        say(f"{name:<15} already running on port {port}")
        return
    if await port_open("127.0.0.1", port):
        raise TransportError(f"port {port} is taken by another program; set {PORT_SETTINGS[name]}")
    started = time.monotonic()
    record = spawn(settings, name, command)
    while time.monotonic() - started < timeout:
        if await serving():
            say(
                f"{name:<15} ready  port {port}  pid {record.pid}  "
                f"{time.monotonic() - started:.1f}s"
            )
            return
        if alive(record) is None:
            break
        await asyncio.sleep(0.05)
    raise TransportError(f"{name} did not start; log {record.log}:\n{tail(record.log)}")


def ensure_supervisor(settings: Settings, say: Say) -> None:
    """Start the supervisor that restarts crashed processes (unless it runs already)."""
    if alive(read_record(settings, supervisor.SUPERVISOR)):
        return
    record = spawn(settings, supervisor.SUPERVISOR, supervisor.command())
    say(f"{supervisor.SUPERVISOR:<15} started  pid {record.pid} (restarts crashed processes)")


async def ensure_nats(settings: Settings, say: Say) -> None:
    """Start the embedded nats-server unless TEKTON_NATS_URL names one."""
    if not settings.embedded_nats:
        say(f"using NATS at {settings.bus_url}")
        return
    await ensure_server(settings, NATS, nats_command(settings), settings.nats_port, say, 15.0)


async def ensure_milvus(settings: Settings, say: Say) -> None:
    """Start the embedded Milvus Lite server unless TEKTON_MILVUS_URI names one."""
    if settings.milvus_uri:
        say("using Milvus at TEKTON_MILVUS_URI")
        return
    command = milvus_command(settings)
    uri = settings.memory_uri

    async def ready() -> bool:
        return await asyncio.to_thread(milvus_serves, uri)

    await ensure_server(settings, MILVUS, command, settings.milvus_port, say, 60.0, ready)


def _chosen_models(settings: Settings) -> list[str]:
    models = settings.models
    chosen = [
        settings.model,
        *(o.model for o in settings.ci.values()),
        *models.stages.values(),
        *(models.for_capability(c) for c in ("chat", "code", "planning", "reasoning")),
        *(parse_seat(s).model for s in settings.seats),
    ]
    return [models.profile(spec) for spec in chosen if spec]


def local_wanted(settings: Settings) -> bool:
    """True when any model the settings choose is the local one (then `up` serves it)."""
    return any(is_local(spec) for spec in _chosen_models(settings))


async def check_local(settings: Settings) -> None:
    """Fail before anything starts when the local model cannot be served: the model
    unknown or missing, its sha256 not the pinned one, or its server not installed."""
    model = served(settings.local_model, settings.local_model_sha256)
    for spec in _chosen_models(settings):
        if is_local(spec) and spec not in (PREFIX, model.spec):
            raise ConfigError(
                f"{spec} is not what the local server serves ({model.spec}): set "
                f"TEKTON_LOCAL_MODEL={local_name(spec)} (one local model at a time)"
            )
    if alive(read_record(settings, LOCAL)):
        return
    await asyncio.to_thread(verify, model)
    if importlib.util.find_spec("xllamacpp") is None:
        raise ConfigError(
            "the local model needs its server: pip install 'tekton[local]' (xllamacpp)"
        )


async def ensure_local(settings: Settings, say: Say) -> None:
    """Serve the local model with llama.cpp (`check_local` first)."""

    async def ready() -> bool:
        return await http_status("127.0.0.1", settings.local_port, "/health") == 200

    await ensure_server(
        settings, LOCAL, local_server.command(), settings.local_port, say, 180.0, ready
    )


async def wait_ready(
    settings: Settings, port: int, record: ProcessRecord, timeout: float
) -> tuple[bool, str]:
    """Poll /readyz on `port` until it answers 200, the process dies, or time runs out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if await http_status(settings.host, port, "/readyz") == 200:
            return True, ""
        if alive(record) is None:
            return False, f"exited; log {record.log}:\n{tail(record.log)}"
        await asyncio.sleep(0.1)
    return False, f"not ready after {timeout:.0f}s; log {record.log}:\n{tail(record.log)}"


async def start_process(
    settings: Settings, name: str, command: list[str], port: int, timeout: float
) -> StartResult:
    """Start one process (unless running) and wait for its /readyz."""
    started = time.monotonic()
    existing = read_record(settings, name)
    if alive(existing) and existing is not None:
        record = existing
    else:
        record = spawn(settings, name, command)
    ready, detail = await wait_ready(settings, port, record, timeout)
    return StartResult(
        ci=name,
        pid=record.pid,
        ready=ready,
        registered=False,
        seconds=round(time.monotonic() - started, 2),
        detail=detail,
    )


async def confirm_registered(settings: Settings, results: list[StartResult]) -> None:
    """Mark the results whose CI has a registry record (when registration is on)."""
    if not settings.register_ai:
        return
    nc = await bus.connect(settings, "tekton-cli")
    try:
        for _ in range(50):
            present = {r.ci for r in await read_registry(settings, nc)}
            for result in results:
                result.registered = result.ci in present
            if all(r.registered for r in results if r.ready):
                return
            await asyncio.sleep(0.1)
    finally:
        await bus.close(nc)


async def up(
    settings: Settings,
    names: list[str],
    say: Say,
    timeout: float = 30.0,
    serve_local: bool = False,
) -> list[StartResult]:
    """Start nats-server (embedded) and the selected CIs, Numa last; wait for readiness.

    For the whole platform, the CIs start while PostgreSQL and Milvus do (they need
    neither); the stages service and the API start as soon as those serve. The local
    model's server starts beside them when a chosen model is local (or `serve_local`)."""
    serve_local = serve_local or local_wanted(settings)
    if serve_local:
        await check_local(settings)
    await ensure_nats(settings, say)
    ensure_supervisor(settings, say)
    local = ensure_local(settings, say) if serve_local else None
    specs = select(names)
    components = [str(s.ci_id) for s in specs]
    results: list[StartResult] = []

    def ci_start(spec: CISpec) -> Awaitable[StartResult]:
        return start_process(
            settings,
            str(spec.ci_id),
            ci_command(spec, components),
            spec.component_port(settings.port_base),
            timeout,
        )

    async def started(batch: list[Awaitable[StartResult]]) -> None:
        for result in await asyncio.gather(*batch):
            results.append(result)
            say(_started_line(settings, result))

    async def services() -> None:
        # run history and memory need their databases
        dsn, _ = await asyncio.gather(
            asyncio.to_thread(ensure_postgres, settings, say), ensure_milvus(settings, say)
        )
        with_history = msgspec.structs.replace(settings, postgres_dsn=dsn)
        await started(
            [
                start_process(
                    with_history, STAGES, stages_command(), stages_port(settings), timeout
                ),
                start_process(with_history, API, api_command(), settings.api_port, timeout),
            ]
        )

    cis = started([ci_start(s) for s in specs if s.name != "numa"])
    await asyncio.gather(cis, *([services()] if not names else []), *([local] if local else []))
    await started([ci_start(s) for s in specs if s.name == "numa"])  # it reports on the rest
    with contextlib.suppress(TektonError):
        await confirm_registered(settings, [r for r in results if r.ci not in (STAGES, API)])
    return results


def _started_line(settings: Settings, result: StartResult) -> str:
    state = "ready" if result.ready else "FAILED"
    if result.ci == STAGES:
        ports = f"http {stages_port(settings)}"
    elif result.ci == API:
        ports = f"http {settings.api_port}  (dashboard http://{settings.host}:{settings.api_port}/)"
    else:
        spec = get_ci(result.ci)
        ports = (
            f"socket {spec.ci_port(settings.ci_port_base)}  "
            f"http {spec.component_port(settings.port_base)}"
        )
    return f"{result.ci:<15} {state:<6} {ports}  pid {result.pid}  {result.seconds:.1f}s" + (
        f"\n{result.detail}" if result.detail else ""
    )


async def down(
    settings: Settings, names: list[str], say: Say, grace: float = 10.0
) -> dict[str, str]:
    """Stop the selected CIs in reverse order (Numa first), deregister them, then NATS."""
    specs = list(reversed(select(names)))
    outcome: dict[str, str] = {}
    # Numa first, then the stages process (whole fleet only), then the other CIs
    batches = [[str(s.ci_id) for s in specs if s.name == "numa"]]
    if not names:
        batches.append([STAGES, API])
    batches.append([str(s.ci_id) for s in specs if s.name != "numa"])
    if not names:  # the supervisor first, or it would bring the others back
        batches.insert(0, [supervisor.SUPERVISOR])
    for batch in batches:
        records = [(name, record) for name in batch if (record := read_record(settings, name))]
        for name, _ in records:  # no pid file: the supervisor leaves it stopped
            pid_file(settings, name).unlink(missing_ok=True)
        ended = await asyncio.gather(
            *(asyncio.to_thread(stop_process, record, grace) for _, record in records)
        )
        for (ci, _), how in zip(records, ended, strict=True):
            outcome[ci] = how
    await deregister(settings, [str(s.ci_id) for s in specs])
    for ci, how in outcome.items():
        if how != "not running":
            say(f"{ci:<15} {how}")
    if not names and (how := await asyncio.to_thread(stop_postgres, settings, say)) != (
        "not running"
    ):
        outcome["postgres"] = how
    if not names:
        supervisor.state_file(settings).unlink(missing_ok=True)
    servers = [LOCAL] + ([MILVUS] if not settings.milvus_uri else [])
    servers += [NATS] if settings.embedded_nats else []
    for server in servers if not names else []:
        record = read_record(settings, server)
        if record is not None:
            pid_file(settings, server).unlink(missing_ok=True)
            how = await asyncio.to_thread(stop_process, record, grace)
            if how != "not running":
                say(f"{server:<15} {how}")
            outcome[server] = how
    return outcome


async def deregister(settings: Settings, cis: list[str]) -> None:
    """Remove registry records of stopped CIs (KV when reachable, and files)."""
    nc = None
    with contextlib.suppress(TektonError):
        nc = await bus.connect(settings, "tekton-cli")
    try:
        for ci in cis:
            await remove_ci(settings, nc, ci)
    finally:
        if nc is not None:
            await bus.close(nc)
