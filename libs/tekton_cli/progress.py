"""The live progress of a run on a terminal: the timeline's lines scroll above a bar of
stages done, the stage in work and its step, and the time so far (`tekton run`,
`tekton runs watch`). Not drawn when the output is a pipe or ``--json``."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from tekton_common.contract.events import (
    AnyRunEvent,
    ChecksFinished,
    DebateTurn,
    RepairRequested,
    RunResumed,
    RunStarted,
    StageBlocked,
    StageFinished,
    StageProgress,
    StageStarted,
)


class RunProgress:
    """A context manager; `show` prints a timeline line and moves the bar."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("stages"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RunProgress:
        self.bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.bar.stop()

    def _task(self) -> TaskID:
        if self.task is None:
            self.task = self.bar.add_task("waiting for the run", total=None)
        return self.task

    def show(self, event: AnyRunEvent, line: str | None) -> None:
        """Print `line` (if any) above the bar, then follow `event`."""
        if line is not None:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        task = self._task()
        match event:
            case RunStarted():
                self.bar.update(task, total=len(event.stages), completed=0, description="started")
            case RunResumed():
                total = len(event.done) + len(event.remaining)
                self.bar.update(task, total=total, completed=len(event.done), description="resumed")
            case StageStarted():
                self.bar.update(task, description=f"{event.stage}: debating")
            case StageProgress():
                self.bar.update(task, description=f"{event.stage}: {event.step}")
            case DebateTurn():
                turn = event.turn
                self.bar.update(task, description=f"{event.stage}: {turn.role} {turn.ci}")
            case StageBlocked():
                self.bar.update(task, description=f"{event.stage}: blocked")
            case ChecksFinished():
                self.bar.update(task, description=f"{event.stage}: checked attempt {event.attempt}")
            case RepairRequested():
                self.bar.update(task, description=f"{event.stage}: repair, attempt {event.attempt}")
            case StageFinished():
                self.bar.update(task, advance=1, description=f"{event.stage}: {event.status}")
