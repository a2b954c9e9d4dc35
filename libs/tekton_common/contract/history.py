"""A run's history as a whole: what it keeps where (events in JetStream, rows in
PostgreSQL, artifact files, workspace objects, lessons in Milvus), pruned at once
(``tekton.runs.prune``) and moved to another installation (``tekton.runs.export``,
``tekton.runs.import``) as one tar file passed through the workspaces bucket."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from tekton_common.contract.ids import ID_CHARS, RunId

#: the oldest a prune may ask about: 100 years, in seconds
MAX_AGE = 100 * 365 * 86400.0
Age = Annotated[float, msgspec.Meta(ge=0, le=MAX_AGE)]
#: the version of the export file's layout (``tekton-run.json``'s ``format``)
EXPORT_FORMAT = 1
#: where the caller put an export to import: ``<id>/import`` (nothing else is taken,
#: and deleted, by an import)
ImportName = Annotated[str, msgspec.Meta(pattern=f"^[{ID_CHARS}]{{1,64}}/import$", max_length=71)]
#: a run's status, from its last event
RunStatus = Literal["finished", "failed", "awaiting approval", "running"]


class PruneRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``tekton.runs.prune``: remove every run that ended more than `older_than` seconds
    ago, everywhere it is kept (`dry_run`: only say what would go)."""

    older_than: Age
    dry_run: bool = False


class RunStorage(msgspec.Struct, frozen=True, kw_only=True):
    """What one run keeps, store by store."""

    run_id: str
    status: RunStatus
    #: when its last event was written (epoch seconds)
    last_event_at: float
    events: int
    event_bytes: int
    #: PostgreSQL rows of the run in every table, and their size
    rows: int
    row_bytes: int
    artifact_files: int
    artifact_bytes: int
    #: workspace objects (its source, its result branch)
    objects: list[str]
    object_bytes: int
    lessons: int
    #: a store that could not be asked (memory unavailable), said, not hidden
    notes: list[str] = []


class PruneReport(msgspec.Struct, frozen=True, kw_only=True):
    """The reply to a prune: the runs removed (or that would be), and how many stay."""

    dry_run: bool
    #: runs whose last event is older than this were taken (epoch seconds)
    cutoff: float
    pruned: list[RunStorage]
    kept: int
    #: what could not be removed this time (memory unavailable: the next prune tries)
    notes: list[str] = []


class ExportRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``tekton.runs.export``: one run as a tar file put in the workspaces bucket."""

    run_id: RunId


class ExportReady(msgspec.Struct, frozen=True, kw_only=True):
    """The reply to an export: where the tar waits (the caller takes it, then deletes
    it) and what it holds."""

    file: str
    size: int
    digest: str
    run: RunStorage


class ImportRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``tekton.runs.import``: the run in the export tar the caller put in the bucket
    as `file` (taken, checked, and deleted)."""

    file: ImportName


class ImportReport(msgspec.Struct, frozen=True, kw_only=True):
    """The reply to an import: the run, now here, and what of it was kept where."""

    run_id: str
    status: RunStatus
    events: int
    artifact_files: int
    objects: list[str]
    lessons: int
    #: what could not be kept (memory unavailable), said, not hidden
    notes: list[str] = []
