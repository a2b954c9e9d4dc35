"""`tekton status`: what is running, registered and active, per CI."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request

import msgspec

from tekton_cli import output
from tekton_cli.fleet import LOCAL, MILVUS, NATS, STAGES
from tekton_cli.procs import alive, read_record
from tekton_cli.supervisor import SUPERVISOR, read_state
from tekton_common import bus
from tekton_common.catalog import CATALOG
from tekton_common.client import Tekton
from tekton_common.contract.platform import MemoryInfo
from tekton_common.errors import TektonError
from tekton_common.gather import gather_all
from tekton_common.history import embedded_dsn
from tekton_common.providers.local import served
from tekton_common.registry import is_active, read_registry
from tekton_common.settings import Settings


class CIStatus(msgspec.Struct):
    """One CI's line in `tekton status`."""

    ci: str
    component: str
    ci_port: int
    component_port: int
    pid: int | None
    running: bool
    registered: bool
    active: bool
    instances: int
    model: str | None
    last_activity: float | None
    uptime: float | None
    memory_mb: float | None
    restarts: int = 0
    supervision: str = "-"


class FleetStatus(msgspec.Struct):
    """`tekton status --json`."""

    nats_url: str
    nats_reachable: bool
    registry: str
    register_ai: bool
    cis: list[CIStatus]
    stages_pid: int | None = None
    #: stages services answering on the bus (here or elsewhere: a container, a pod)
    stages_on_bus: int = 0
    postgres: str = "not configured"
    memory: MemoryInfo = MemoryInfo(reachable=False, error="not asked")
    supervisor_pid: int | None = None
    local: LocalStatus | None = None


class LocalStatus(msgspec.Struct):
    """The local model's llama.cpp server (when `up` started one)."""

    pid: int
    port: int
    serving: bool
    model: str | None = None
    slots: int = 0
    busy: int = 0
    memory_mb: float | None = None


def _slots(port: int) -> list[dict[str, object]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/slots", timeout=2) as reply:
            found = msgspec.json.decode(reply.read())
    except (OSError, ValueError, msgspec.DecodeError):
        return None
    return found if isinstance(found, list) else None


async def local_status(settings: Settings) -> LocalStatus | None:
    """The local server's model, slots (and how many are busy) and memory."""
    proc = alive(read_record(settings, LOCAL))
    if proc is None:
        return None
    slots = await asyncio.to_thread(_slots, settings.local_port)
    memory = model = None
    with contextlib.suppress(Exception):
        memory = round(proc.memory_info().rss / 2**20, 1)
    with contextlib.suppress(TektonError):  # the settings name a model no longer there
        model = served(settings.local_model, settings.local_model_sha256).spec
    return LocalStatus(
        pid=proc.pid,
        port=settings.local_port,
        serving=slots is not None,
        model=model,
        slots=len(slots or []),
        busy=sum(1 for slot in slots or [] if slot.get("is_processing")),
        memory_mb=memory,
    )


async def fleet_status(settings: Settings) -> FleetStatus:
    """Read pid files, the registry (KV or file fallback) and process tables."""
    nc = None
    with contextlib.suppress(TektonError):
        nc = await bus.connect(settings, "tekton-cli")
    try:
        if nc is None:
            records = await read_registry(settings, None)
            memory_report = MemoryInfo(reachable=False, error="NATS unreachable")
            on_bus = 0
        else:  # at once: the ping's deadline costs no time of its own
            records, memory_report, pings = await asyncio.gather(
                read_registry(settings, nc),
                Tekton(nc).memory(),
                gather_all(nc, f"$SRV.PING.{STAGES}", deadline=0.3),
            )
            on_bus = len(pings)
        now = time.time()
    finally:
        if nc is not None:
            await bus.close(nc)
    watches = read_state(settings)
    rows = []
    for spec in CATALOG:
        ci = str(spec.ci_id)
        proc = alive(read_record(settings, ci))
        mine = [r for r in records if r.ci == ci]
        live = [r for r in mine if is_active(r, settings, now)]
        newest = max(mine, key=lambda r: r.last_heartbeat, default=None)
        memory = uptime = None
        if proc is not None:
            with contextlib.suppress(Exception):
                memory = round(proc.memory_info().rss / 2**20, 1)
                uptime = round(now - proc.create_time(), 1)
        rows.append(
            CIStatus(
                ci=ci,
                component=spec.component,
                ci_port=spec.ci_port(settings.ci_port_base),
                component_port=spec.component_port(settings.port_base),
                pid=proc.pid if proc else None,
                running=proc is not None,
                registered=bool(mine),
                active=bool(live),
                instances=len(mine),
                model=newest.model if newest else None,
                last_activity=max((r.last_activity for r in mine), default=None),
                uptime=uptime,
                memory_mb=memory,
                restarts=watches[ci].restarts if ci in watches else 0,
                supervision=watches[ci].state if ci in watches else "-",
            )
        )
    reachable = nc is not None
    stages = alive(read_record(settings, STAGES))
    return FleetStatus(
        nats_url=settings.bus_url,
        nats_reachable=reachable,
        registry="kv" if reachable else "file",
        register_ai=settings.register_ai,
        cis=rows,
        stages_pid=stages.pid if stages else None,
        stages_on_bus=on_bus,
        postgres=(
            "configured (TEKTON_POSTGRES_DSN)"
            if settings.postgres_dsn
            else "embedded, running"
            if embedded_dsn(settings)
            else "the stages service's own"
            if on_bus and stages is None
            else "embedded, not running"
        ),
        memory=memory_report,
        supervisor_pid=sup.pid if (sup := alive(read_record(settings, SUPERVISOR))) else None,
        local=await local_status(settings),
    )


def nats_line(settings: Settings, status: FleetStatus) -> str:
    """One line about the bus for the human-readable status."""
    embedded = alive(read_record(settings, NATS))
    where = (
        f"embedded pid {embedded.pid}"
        if embedded
        else ("external" if not settings.embedded_nats else "embedded, not running")
    )
    state = "reachable" if status.nats_reachable else "UNREACHABLE (registry from files)"
    stages = (
        f"pid {status.stages_pid}"
        if status.stages_pid
        else f"{status.stages_on_bus} on the bus, elsewhere"
        if status.stages_on_bus
        else "not running"
    )
    supervised = (
        f"supervisor pid {status.supervisor_pid}" if status.supervisor_pid else "no supervisor"
    )
    remote = status.stages_on_bus > 0 and not status.stages_pid
    return (
        f"NATS {status.nats_url} ({where}): {state}\n"
        f"PostgreSQL: {status.postgres} · stages service: {stages} · {supervised}\n"
        f"{memory_line(settings, status.memory, remote)}"
    ) + (f"\n{local_line(status.local)}" if status.local else "")


def local_line(local: LocalStatus) -> str:
    """The local model's server in one line."""
    if not local.serving:
        return f"Local model {local.model} (pid {local.pid}): loading or not answering"
    return (
        f"Local model {local.model} on 127.0.0.1:{local.port} (pid {local.pid}): "
        f"{local.slots} slots, {local.busy} busy, {local.memory_mb} MB"
    )


def memory_line(settings: Settings, memory: MemoryInfo, remote: bool = False) -> str:
    """Milvus and the embedder, as the stages service sees them (`remote`: a stages
    service elsewhere, whose Milvus is its own)."""
    server = alive(read_record(settings, MILVUS))
    where = (
        "configured"
        if settings.milvus_uri
        else f"embedded pid {server.pid}"
        if server
        else "the stages service's"
        if remote
        else "embedded, not running"
    )
    if not memory.reachable:
        embedder = f" · embeddings: {memory.embedder}" if memory.embedder else ""
        return f"Milvus ({where}): UNAVAILABLE ({memory.error}){embedder}"
    return (
        f"Milvus {memory.milvus_uri} ({where}): {memory.lessons} lessons, "
        f"{memory.chunks} repository chunks · embeddings: {memory.embedder} "
        f"({memory.embedder_description})"
    )


def render(settings: Settings, report: FleetStatus) -> str:
    """`tekton status` as text: the bus, then a line per CI."""
    headers = [
        "CI",
        "CI PORT",
        "HTTP",
        "PID",
        "REGISTERED",
        "ACTIVE",
        "MODEL",
        "LAST ACTIVITY",
        "UPTIME",
        "MEMORY",
        "RESTARTS",
    ]
    rows = [
        (
            c.ci,
            c.ci_port,
            c.component_port,
            c.pid or "-",
            "yes" if c.registered else "no",
            "yes" if c.active else "no",
            c.model or "-",
            output.ago(c.last_activity),
            output.duration(c.uptime),
            f"{c.memory_mb} MB" if c.memory_mb else "-",
            f"{c.restarts} ({c.supervision})" if c.restarts else "0",
        )
        for c in report.cis
    ]
    return nats_line(settings, report) + "\n" + output.table(headers, rows)
