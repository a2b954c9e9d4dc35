"""A run's repository on this machine: what `--repo` names (a folder packed and sent as
a workspace, or a remote URL), and the result brought back: the branch
``tekton/<run id>`` fetched into the repository (`tekton runs fetch`, and `tekton run`
when the run finishes), or the change as a patch (`tekton runs patch`; a plain folder
gets the patch file)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from tekton_common.checks import checks_for
from tekton_common.client import Tekton
from tekton_common.contract.events import RunFinished
from tekton_common.contract.workspaces import CheckSpec, is_repo_url
from tekton_common.errors import ConfigError, NotFoundError
from tekton_common.workspace import git, is_git_repo


def is_url(repo: str) -> bool:
    """True when `--repo` names a remote repository (ConfigError for a URL of a scheme
    the platform does not clone)."""
    if "://" not in repo:
        return False
    if not is_repo_url(repo):
        raise ConfigError(f"--repo {repo}: only https://, ssh:// or git:// URLs (or a folder)")
    return True


def parse_checks(given: list[str]) -> list[CheckSpec]:
    """``--check NAME=COMMAND`` flags as checks."""
    found = []
    for item in given:
        name, sep, command = item.partition("=")
        if not sep or not name.strip() or not command.strip():
            raise ConfigError(f"--check {item!r}: give NAME=COMMAND, e.g. --check test='pytest -q'")
        found.append(CheckSpec(name.strip(), command.strip()))
    return found


def planned_checks(repo: str | None, given: list[CheckSpec]) -> str:
    """What `--dry-run` says of the checks a run would use."""
    if given:
        return "checks: " + ", ".join(f"{c.name}: {c.command}" for c in given) + " (--check)"
    if repo is None:
        return "checks: none (no --repo)"
    if is_url(repo):
        return "checks: read from the clone's tekton.toml, or detected"
    listed, source = checks_for(Path(repo), [])
    shown = ", ".join(f"{c.name}: {c.command}" for c in listed) or "none found"
    return f"checks: {shown} ({source})"


async def _bundle(tekton: Tekton, finished: RunFinished, scratch: Path) -> Path:
    if finished.result is None or finished.branch is None:
        raise NotFoundError(f"run {finished.run_id} left no branch (it had no repository)")
    bundle = scratch / "result.bundle"
    await tekton.download(finished.result, bundle)
    return bundle


async def fetch(tekton: Tekton, run_id: str, repo: Path) -> str:
    """Bring a finished run's branch into the git repository `repo`; its name."""
    if not is_git_repo(repo):
        raise ConfigError(f"{repo} is no git repository; use tekton runs patch {run_id}")
    finished = await tekton.result(run_id)
    with tempfile.TemporaryDirectory() as scratch:
        bundle = await _bundle(tekton, finished, Path(scratch))
        branch = str(finished.branch)
        await asyncio.to_thread(
            git, repo, "fetch", "-q", str(bundle), f"+refs/heads/{branch}:refs/heads/{branch}"
        )
    return branch


async def patch(tekton: Tekton, run_id: str) -> str:
    """A finished run's change as a patch (``git format-patch``, for ``git am``)."""
    finished = await tekton.result(run_id)
    with tempfile.TemporaryDirectory() as scratch:
        bundle = await _bundle(tekton, finished, Path(scratch))
        repo, branch = Path(scratch) / "repo", str(finished.branch)
        repo.mkdir()

        def made() -> str:
            git(repo, "init", "-q")
            git(repo, "fetch", "-q", str(bundle), f"refs/heads/{branch}:refs/heads/{branch}")
            return git(repo, "format-patch", "-1", "--stdout", branch)

        return await asyncio.to_thread(made) + "\n"


async def bring_back(tekton: Tekton, finished: RunFinished, repo: Path, copy: Path | None) -> str:
    """After `tekton run --repo PATH`: the branch fetched into a git repository, or the
    patch written beside the artifacts for a plain folder; what to tell the user."""
    if finished.branch is None:
        return "the run left no change to bring back"
    if is_git_repo(repo):
        branch = await fetch(tekton, finished.run_id, repo)
        return f"branch {branch} is in {repo} (git log {branch}; git merge {branch})"
    text = await patch(tekton, finished.run_id)
    where = (copy or repo.parent) / f"{finished.run_id}.patch"
    await asyncio.to_thread(where.write_text, text)
    return f"{repo} is no git repository: the change is in {where}"
