"""Repositories on the bus and the checks run on them.

A repository travels as a *workspace*: the command line packs it (a git bundle, or an
archive of a folder that is no git repository) into the JetStream object store bucket
`WORKSPACES_BUCKET`, and a run request names the object, never a path. A remote
repository is named by a URL of an allowed scheme. Checks are commands run in a
sandbox in a worktree of the workspace; their results are measured, not told.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from tekton_common.contract.ids import ID_CHARS

#: the object store bucket of workspaces (the run's source, and its result branch)
WORKSPACES_BUCKET = "tekton-workspaces"
#: the largest workspace the command line packs, by default (bytes)
DEFAULT_WORKSPACE_LIMIT = 200 * 1024 * 1024
#: remote repositories: these schemes only (no file:// and no bare path, which would
#: name the disk of the server that clones it)
URL_SCHEMES = ("https", "ssh", "git")
#: a path segment that is not ``.`` or ``..`` (no look-around: the API's validator is a
#: Rust regex)
_SEGMENT = r"(?:[A-Za-z0-9_~%+-]|\.[A-Za-z0-9_~%+-]|\.\.[A-Za-z0-9._~%+-])[A-Za-z0-9._~%+-]*"
REPO_URL_PATTERN = rf"^(https|ssh|git)://[A-Za-z0-9._~%@:\[\]-]+(/{_SEGMENT})*/?$"
_REPO_URL = re.compile(REPO_URL_PATTERN)

#: object names: ``<run id>/<what>`` (source, result)
ObjectName = Annotated[
    str, msgspec.Meta(pattern=f"^[{ID_CHARS}]{{1,64}}/[a-z]{{1,16}}$", max_length=82)
]
RepoUrl = Annotated[str, msgspec.Meta(pattern=REPO_URL_PATTERN, max_length=2048)]
CheckName = Annotated[str, msgspec.Meta(pattern=f"^[{ID_CHARS}]{{1,40}}$")]
Command = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
#: how many times a change that fails its checks goes back to the code stage
REPAIR_ATTEMPTS = (0, 5)
DEFAULT_REPAIR_ATTEMPTS = 2
RepairAttempts = Annotated[int, msgspec.Meta(ge=REPAIR_ATTEMPTS[0], le=REPAIR_ATTEMPTS[1])]


def is_repo_url(value: str) -> bool:
    """True for a remote git URL the platform may clone."""
    return bool(_REPO_URL.match(value)) and len(value) <= 2048


class WorkspaceRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A packed repository in `WORKSPACES_BUCKET`: ``git`` is a bundle whose ``HEAD``
    is the working tree as packed (uncommitted changes as one commit on top), ``tree``
    a gzipped tar of a folder."""

    name: ObjectName
    kind: Literal["git", "tree"]
    size: Annotated[int, msgspec.Meta(ge=0)]
    #: the object store's digest (``SHA-256=…``), checked when it is fetched
    digest: Annotated[str, msgspec.Meta(max_length=100)] = ""
    #: what the command line called it (shown, never opened)
    label: Annotated[str, msgspec.Meta(max_length=200)] = ""


class CheckSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A check: a name and the shell command that runs it in the worktree."""

    name: CheckName
    command: Command


class CheckResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """What one check did on one commit, as measured. Counts are None when the runner's
    output did not say them."""

    name: str
    command: str
    exit_code: int | None
    duration_s: float
    commit: str
    output_tail: str = ""
    passed: int | None = None
    failed: int | None = None
    skipped: int | None = None
    timed_out: bool = False
    #: how the check ran: ``bwrap`` or ``none`` (TEKTON_SANDBOX=none, warned)
    sandbox: str = "bwrap"

    @property
    def ok(self) -> bool:
        """True when the check passed."""
        return self.exit_code == 0 and not self.timed_out

    def summary(self) -> str:
        """One line: name, command, outcome, counts, time and commit."""
        said = "ok" if self.ok else ("timed out" if self.timed_out else f"exit {self.exit_code}")
        kinds = (("passed", self.passed), ("failed", self.failed), ("skipped", self.skipped))
        counts = ", ".join(f"{n} {word}" for word, n in kinds if n is not None)
        shown = f" ({counts})" if counts else ""
        return (
            f"{self.name} `{self.command}` {said}{shown} in {self.duration_s:.2f}s "
            f"on {self.commit[:12]}"
        )
