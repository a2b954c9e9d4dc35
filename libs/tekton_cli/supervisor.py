"""The supervisor `tekton up` leaves running: it keeps the fleet's processes alive.

Every process with a pid file under ``$TEKTON_HOME/run`` (the CIs, the stages service,
nats-server, Milvus) is watched. One that dies without `tekton down` is started again
with the same command, after a backoff that doubles from ``restart_backoff`` seconds;
``restart_limit`` restarts within ``restart_window`` seconds is a crash loop, and the
supervisor stops restarting it and says so. Each restart and crash loop is logged,
published on NATS (``tekton.fleet.events``) and kept in ``run/supervisor.state`` for
`tekton status`. A CI's restart can be asked on NATS (``tekton.fleet.restart``, Numa's
`numa_restart` tool): at most one per CI every ``ASKED_GAP_S`` seconds, started again
at once and never counted toward the crash-loop limit (asking cannot put a CI down).
`tekton down` removes a pid file before it stops the process, so a process stopped on
purpose is never brought back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg

from tekton_cli.procs import alive, helper_settings, read_record, run_dir, spawn, stop_process
from tekton_common import bus
from tekton_common.catalog import CIId
from tekton_common.contract.codec import decode, encode
from tekton_common.contract.platform import RestartReply, RestartRequest
from tekton_common.errors import TektonError
from tekton_common.history import history_dsn
from tekton_common.settings import Settings
from tekton_common.subjects import FLEET_EVENTS, FLEET_RESTART

log = logging.getLogger(__name__)
SUPERVISOR = "tekton-supervisor"
#: the least time between two restarts of one CI asked on the bus
ASKED_GAP_S = 60.0


class Watch(msgspec.Struct):
    """What the supervisor knows of one process."""

    name: str
    state: str = "running"  # running | restarting | crash-loop
    restarts: int = 0
    last_restart: float | None = None
    recent: list[float] = []
    next_try: float = 0.0
    #: when a restart was last asked on the bus (monotonic), and whether one waits
    asked_at: float = -ASKED_GAP_S
    asked: bool = False


def state_file(settings: Settings) -> Path:
    """Where the supervisor keeps its watches (read by `tekton status`)."""
    return run_dir(settings) / "supervisor.state"


def read_state(settings: Settings) -> dict[str, Watch]:
    """The supervisor's watches by process name ({} when it never ran)."""
    try:
        return msgspec.json.decode(state_file(settings).read_bytes(), type=dict[str, Watch])
    except (OSError, msgspec.DecodeError):
        return {}


class Supervisor:
    """One pass every `interval` seconds over the pid files."""

    def __init__(self, settings: Settings, interval: float = 0.5) -> None:
        self.settings = settings
        self.interval = interval
        self.watches: dict[str, Watch] = {}
        self.nc: Client | None = None
        #: stops asked on the bus, still under way
        self._stopping: set[asyncio.Task[str]] = set()

    def _names(self) -> list[str]:
        folder = run_dir(self.settings)
        return sorted(p.stem for p in folder.glob("*.json") if p.stem != SUPERVISOR)

    async def _event(self, kind: str, watch: Watch) -> None:
        event = {"type": kind, "name": watch.name, "restarts": watch.restarts, "ts": time.time()}
        log.warning("%s: %s (restarts %d)", kind, watch.name, watch.restarts)
        if self.nc is not None and self.nc.is_connected:
            with contextlib.suppress(Exception):
                await self.nc.publish(FLEET_EVENTS, msgspec.json.encode(event))

    async def check(self) -> None:
        """Restart what died (within the limits); record the state."""
        settings = self.settings
        now = time.monotonic()
        for name in self._names():
            record = read_record(settings, name)
            watch = self.watches.setdefault(name, Watch(name))
            if record is None or alive(record) is not None:
                if watch.state == "restarting":
                    watch.state = "running"
                continue
            if watch.state == "crash-loop" or now < watch.next_try:
                continue
            if read_record(settings, name) != record:  # `down` took it away meanwhile
                continue
            if watch.asked:  # stopped on request: back at once, outside the limits
                watch.asked = False
                await self._restart(watch, record.command)
                continue
            watch.recent = [t for t in watch.recent if now - t < settings.restart_window]
            if len(watch.recent) >= settings.restart_limit:
                watch.state = "crash-loop"
                await self._event("process.crash_loop", watch)
                continue
            watch.recent.append(now)
            watch.next_try = now + settings.restart_backoff * 2 ** (len(watch.recent) - 1)
            await self._restart(watch, record.command)
        for gone in set(self.watches) - set(self._names()):
            del self.watches[gone]
        await asyncio.to_thread(state_file(settings).write_bytes, msgspec.json.encode(self.watches))

    async def _restart(self, watch: Watch, command: list[str]) -> None:
        """Start a process again with the environment `up` gave it (and the embedded
        database's DSN, if one runs), and say so."""
        dsn = history_dsn(self.settings)
        spawn(msgspec.structs.replace(self.settings, postgres_dsn=dsn), watch.name, command)
        watch.restarts += 1
        watch.last_restart = time.time()
        watch.state = "restarting"
        await self._event("process.restarted", watch)

    def _stopped(self, task: asyncio.Task[str]) -> None:
        self._stopping.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("a restart asked on the bus failed to stop the process: %s", exc)

    async def restart(self, msg: Msg) -> None:
        """Answer ``tekton.fleet.restart``: stop a CI's process, so that the next pass
        starts it again (once per ``ASKED_GAP_S``, outside the crash-loop limits)."""
        try:
            asked = decode(msg.data, RestartRequest)
            name = str(CIId.from_str(asked.ci))
        except TektonError as exc:
            reply = RestartReply(ci="?", restarting=False, detail=str(exc))
        else:
            record = read_record(self.settings, name)
            watch = self.watches.setdefault(name, Watch(name))
            since = time.monotonic() - watch.asked_at
            if since < ASKED_GAP_S:  # said first: it may be down, on its way back
                reply = RestartReply(
                    name,
                    False,
                    f"{name} was restarted on request {since:.0f} s ago; "
                    f"ask again after {ASKED_GAP_S:.0f} s",
                )
            elif record is None or alive(record) is None:
                reply = RestartReply(name, False, f"{name} is not running under this supervisor")
            else:
                log.warning("restart of %s asked on the bus", name)
                watch.asked, watch.asked_at = True, time.monotonic()
                task = asyncio.create_task(asyncio.to_thread(stop_process, record, 10.0))
                self._stopping.add(task)
                task.add_done_callback(self._stopped)
                reply = RestartReply(
                    name, True, f"{name} (pid {record.pid}) stopped; it starts again"
                )
        with contextlib.suppress(Exception):
            await msg.respond(encode(reply))

    async def run(self) -> None:
        """Watch until stopped; reach NATS when it is there (events are best effort)."""
        with contextlib.suppress(TektonError):
            self.nc = await bus.connect(self.settings, SUPERVISOR)
            await self.nc.subscribe(FLEET_RESTART, cb=self.restart)
        while True:
            try:
                await self.check()
            except OSError as exc:  # a full disk or a vanished folder must not end supervision
                log.error("supervision pass failed: %s", exc)
            await asyncio.sleep(self.interval)


def command() -> list[str]:
    """How `up` starts the supervisor."""
    return [sys.executable, "-m", "tekton_cli.supervisor"]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tekton_cli.supervisor`."""
    settings = helper_settings(
        argv, "tekton_cli.supervisor", "Keep the processes of `tekton up` alive.", SUPERVISOR
    )
    if settings is None:
        return 2
    bus.run(Supervisor(settings).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
