"""The stages process: every stage endpoint and the run coordinator."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Sequence

from nats.aio.client import Client
from nats.micro.request import Request

from tekton_common import bus, workspace
from tekton_common.bus_service import BusService, Setup, Spawn
from tekton_common.catalog import STAGES_PORT_OFFSET
from tekton_common.contract.codec import decode, encode
from tekton_common.contract.events import StageAwaitingApproval
from tekton_common.contract.history import ExportRequest, ImportRequest, PruneRequest
from tekton_common.contract.runs import (
    DecisionRequest,
    ForkRequest,
    ResumeRequest,
    RetryRequest,
    RunRequest,
    StageRequest,
)
from tekton_common.errors import ProtocolError, TektonError
from tekton_common.micro import EndpointDef
from tekton_common.runlog import ensure_runs_stream
from tekton_common.settings import Settings, load_settings
from tekton_common.stages import DIAMOND
from tekton_common.subjects import (
    MEMORY_INFO,
    RUNS_DECIDE,
    RUNS_EXPORT,
    RUNS_FORK,
    RUNS_IMPORT,
    RUNS_PRUNE,
    RUNS_RESUME,
    RUNS_RETRY,
    RUNS_START,
    stage_run,
)
from tekton_common.telemetry import observe
from tekton_common.usage import ensure_usage_stream
from tekton_stages.coordinator import Coordinator
from tekton_stages.history import History
from tekton_stages.memory import Memory
from tekton_stages.recorder import Recorder
from tekton_stages.stage import run_stage
from tekton_stages.workbench import Workbench

log = logging.getLogger(__name__)


def make_setup(settings: Settings) -> Setup:
    """Endpoints of the stages process."""

    async def setup(nc: Client, spawn: Spawn) -> list[EndpointDef]:
        await bus.patiently(functools.partial(ensure_runs_stream, nc), "runs stream")
        memory = Memory(settings.memory_uri, settings.embedder)
        memory.start()
        coordinator = Coordinator(nc, settings, spawn, memory)
        if settings.resume_interrupted:

            async def resume_runs() -> None:
                await coordinator.resume_interrupted()

            spawn(resume_runs())
        js = nc.jetstream(timeout=30)
        keep = functools.partial(workspace.keep_for, js, settings.workspace_retention_days)
        await bus.patiently(keep, "workspaces bucket")
        usage = functools.partial(
            ensure_usage_stream, nc, settings.usage_retention_days, update=True
        )
        await bus.patiently(usage, "usage stream")
        history = History(js, settings, memory, coordinator.active)
        if settings.run_retention_days:
            spawn(history.keep(settings.run_retention_days))
        if settings.postgres_dsn:
            spawn(Recorder(nc.jetstream(timeout=10), settings.postgres_dsn).run())
        else:
            log.warning("TEKTON_POSTGRES_DSN is not set: run history stays in JetStream only")

        def stage_endpoint(stage: str) -> EndpointDef:
            async def handler(request: Request) -> bytes:
                ask = decode(request.data, StageRequest)
                if ask.stage != stage:
                    raise ProtocolError(f"this endpoint runs {stage}, not {ask.stage}")
                return encode(await run_stage(nc, ask, settings.stage_timeout, memory))

            return EndpointDef(f"{stage}", handler, subject=stage_run(stage))

        async def start(request: Request) -> bytes:
            return encode(await coordinator.start(decode(request.data, RunRequest)))

        async def resume(request: Request) -> bytes:
            ask = decode(request.data, ResumeRequest)
            return encode(await coordinator.resume(ask.run_id))

        async def decide(request: Request) -> bytes:
            return encode(await coordinator.decide(decode(request.data, DecisionRequest)))

        async def retry(request: Request) -> bytes:
            ask = decode(request.data, RetryRequest)
            return encode(await coordinator.resume(ask.run_id, ask))

        async def fork(request: Request) -> bytes:
            return encode(await coordinator.fork(decode(request.data, ForkRequest)))

        async def prune(request: Request) -> bytes:
            return encode(await history.prune(decode(request.data, PruneRequest)))

        async def export(request: Request) -> bytes:
            return encode(await history.export(decode(request.data, ExportRequest)))

        async def restore(request: Request) -> bytes:
            report, last = await history.restore(decode(request.data, ImportRequest))
            if isinstance(last, StageAwaitingApproval):
                coordinator.arm(last)  # its approval timeout holds here too
            return encode(report)

        async def memory_info(request: Request) -> bytes:
            return encode(await memory.info())

        return [
            *(stage_endpoint(s) for s in DIAMOND),
            EndpointDef("memory_info", memory_info, subject=MEMORY_INFO),
            *Workbench(js, coordinator.trees, memory, settings).endpoints(),
            EndpointDef("runs_start", start, subject=RUNS_START),
            EndpointDef("runs_resume", resume, subject=RUNS_RESUME),
            EndpointDef("runs_decide", decide, subject=RUNS_DECIDE),
            EndpointDef("runs_retry", retry, subject=RUNS_RETRY),
            EndpointDef("runs_fork", fork, subject=RUNS_FORK),
            EndpointDef("runs_prune", prune, subject=RUNS_PRUNE),
            EndpointDef("runs_export", export, subject=RUNS_EXPORT),
            EndpointDef("runs_import", restore, subject=RUNS_IMPORT),
        ]

    return setup


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tekton_stages`."""
    parser = argparse.ArgumentParser(
        prog="tekton_stages", description="Run the stage endpoints and the run coordinator."
    )
    parser.add_argument("--home", help="state folder (TEKTON_HOME)")
    parser.add_argument("--nats-url", help="NATS server URL (TEKTON_NATS_URL)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings({"home": args.home, "nats_url": args.nats_url})
    except TektonError as exc:
        print(f"tekton_stages: {exc}", file=sys.stderr)
        return 2
    observe("tekton-stages", settings)
    service = BusService(
        "tekton-stages",
        "stage endpoints and the run coordinator",
        settings,
        settings.port_base + STAGES_PORT_OFFSET,
        "tekton.stages",
        make_setup(settings),
    )
    return bus.run(service.run())
