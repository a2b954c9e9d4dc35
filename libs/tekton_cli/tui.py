"""`tekton tui`: runs in the terminal, on the same API as the web dashboard.

Left, the runs (newest first, refreshed every few seconds); right, the selected run's
stages as progress columns, its debate transcript streaming in (Server-Sent Events from
``/runs/{id}/events``) with the checks of a run on a repository, on ``a`` its
artifacts and on ``c`` its change file by file. A run at a gate says so, and ``y``
approves it (as this OS user; ``tekton runs reject|edit`` for the rest); a person's seat
that waits says how to answer it.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx
import msgspec
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Log, Static

from tekton_cli.runs import user
from tekton_cli.timeline import checks_lines, event_line, turn_vote
from tekton_common.contract.events import (
    AnyRunEvent,
    ChecksFinished,
    DebateTurn,
    DecisionRecorded,
    RepairRequested,
    RunFailed,
    RunFinished,
    StageAwaitingApproval,
    StageBlocked,
    StageFinished,
    StageProgress,
    StageStarted,
    read_run_event,
)
from tekton_common.history import RunState
from tekton_common.stages import DIAMOND

MARKS = {"waiting": "·", "running": "…", "approved": "✓", "blocked": "✗", "awaiting": "⏸"}


def turn_line(event: DebateTurn) -> str:
    """One transcript line for a DebateTurn event."""
    turn = event.turn
    return f"{event.stage:<11} r{turn.round} {turn.role:<10} {turn.ci:<14} {turn_vote(turn)}"


class TektonTUI(App[None]):
    """Runs list, live progress columns, streaming transcript, artifacts."""

    TITLE = "Tekton"
    CSS = """
    #runs { width: 60; }
    #stages { height: 3; }
    .stage { width: 1fr; content-align: center middle; border: round $primary; }
    #transcript { height: 1fr; }
    #artifacts { height: 12; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "refresh runs"),
        Binding("a", "artifacts", "artifacts"),
        Binding("c", "change", "change"),
        Binding("y", "approve", "approve the gate"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, api: str, token: str | None = None) -> None:
        super().__init__()
        self.api = api.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.run_id: str | None = None
        self.states: dict[str, str] = {}
        #: the stage the followed run waits at for a decision, if any
        self.gate: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            yield DataTable(id="runs", cursor_type="row")
            with Vertical():
                with Horizontal(id="stages"):
                    for stage in DIAMOND:
                        yield Static(
                            f"{MARKS['waiting']} {stage}", id=f"stage-{stage}", classes="stage"
                        )
                yield Log(id="transcript")
                yield Log(id="artifacts")
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.add_columns("run", "status", "done", "goal")
        await self.action_refresh()
        self.set_interval(3.0, self.action_refresh)

    async def _get(self, path: str) -> Any:
        async with httpx.AsyncClient(base_url=self.api, headers=self.headers, timeout=30) as http:
            reply = await http.get(path)
            reply.raise_for_status()
            return reply.json()

    async def action_refresh(self) -> None:
        """Reload the runs list."""
        try:
            runs = await self._get("/runs")
        except httpx.HTTPError as exc:
            self.sub_title = f"API unreachable: {exc}"
            return
        self.sub_title = self.api
        table = self.query_one("#runs", DataTable)
        table.clear()
        for run in reversed(runs):
            table.add_row(
                run["run_id"], run["status"], run["done"], run["goal"][:30], key=run["run_id"]
            )

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        """Follow the chosen run."""
        self.run_id = str(message.row_key.value)
        self.gate = None
        self.states = dict.fromkeys(DIAMOND, "waiting")
        for stage in DIAMOND:
            self._mark(stage, "waiting")
        self.query_one("#transcript", Log).clear()
        self.query_one("#artifacts", Log).clear()
        self.follow(self.run_id)

    def _mark(self, stage: str, state: str) -> None:
        self.states[stage] = state
        self.query_one(f"#stage-{stage}", Static).update(f"{MARKS[state]} {stage}")

    @work(exclusive=True, group="follow")
    async def follow(self, run_id: str) -> None:
        """Stream the run's events (replayed, then live) into the columns and transcript."""
        log = self.query_one("#transcript", Log)
        url = f"/runs/{run_id}/events"
        async with (
            httpx.AsyncClient(base_url=self.api, headers=self.headers, timeout=None) as http,
            http.stream("GET", url) as reply,
        ):
            async for line in reply.aiter_lines():
                if line.startswith("data:") and (event := read_run_event(line[5:].encode())):
                    self.show(event, log)

    def show(self, event: AnyRunEvent, log: Log) -> None:
        """Apply one run event to the view."""
        match event:
            case StageStarted():
                self._mark(event.stage, "running")
            case StageFinished():
                self._mark(event.stage, "approved")
            case StageBlocked():
                self._mark(event.stage, "blocked")
                log.write_line(f"{event.stage} blocked: {event.reason}")
            case DebateTurn():
                log.write_line(turn_line(event))
            case ChecksFinished():
                for line in checks_lines(event).splitlines():
                    log.write_line(line)
            case RepairRequested():
                first = event.reason.strip().splitlines()[0] if event.reason.strip() else ""
                log.write_line(f"{event.stage} again, attempt {event.attempt}: {first}")
            case StageAwaitingApproval():
                self.gate = event.stage
                self._mark(event.stage, "awaiting")
                log.write_line(f"{event.stage} awaits a decision: y approves it")
            case DecisionRecorded():
                self.gate = None
                log.write_line(event_line(event) or "")
            case StageProgress(step="awaiting answer"):
                log.write_line(f"{event.stage}: {event.detail}")
                if event.ask:  # what the person's seat is asked, as a CI in it would be
                    log.write_line(f"  {event.role or 'the seat'} is asked:")
                    for line in event.ask.splitlines():
                        log.write_line(f"    {line}")
            case RunFinished():
                log.write_line(
                    "run finished" + (f"; branch {event.branch}" if event.branch else "")
                )
            case RunFailed():
                log.write_line(f"run failed: {event.reason}")

    async def action_approve(self) -> None:
        """Approve the gate the followed run waits at."""
        if self.run_id is None or self.gate is None:
            self.notify("the run waits at no gate")
            return
        body = {"decision": "approve", "by": user(), "stage": self.gate}
        async with httpx.AsyncClient(base_url=self.api, headers=self.headers, timeout=30) as http:
            reply = await http.post(f"/runs/{self.run_id}/decisions", json=body)
        if reply.is_error:
            self.notify(f"not approved: {reply.json().get('detail', reply.text)}", severity="error")

    async def action_artifacts(self) -> None:
        """Show the selected run's artifacts."""
        if self.run_id is None:
            return
        pane = self.query_one("#artifacts", Log)
        pane.clear()
        for item in await self._get(f"/runs/{self.run_id}/artifacts"):
            summary = json.dumps(item["artifact"], ensure_ascii=False)[:160]
            pane.write_line(f"{item['stage']:<11} {item['name']:<20} {summary}")

    async def action_change(self) -> None:
        """Show the selected run's change, file by file, and its checks."""
        if self.run_id is None:
            return
        pane = self.query_one("#artifacts", Log)
        pane.clear()
        state = msgspec.convert(await self._get(f"/runs/{self.run_id}"), RunState)
        if not state.files:
            pane.write_line("this run made no change to a repository")
        for item in state.files:
            pane.write_line(f"+{item.added} -{item.removed}  {item.path}")
            for line in item.patch.splitlines():
                pane.write_line(f"    {line}")
        for result in state.checks:
            pane.write_line(f"check {result.summary()}")
