"""Workspaces made real on this host: fetched from the object store into this process's
scratch folder, a fresh git worktree per run and attempt, diffs applied with their
hostile forms refused, and a run's result kept as a branch bundle.

Layout under the scratch root (``$TEKTON_HOME/workspaces``): ``sources/<key>`` is a git
repository holding a workspace as branch ``tekton-base`` (one per workspace digest);
``runs/<run id>/<attempt>`` are its worktrees.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from nats.js.client import JetStreamContext

from tekton_common.contract.workspaces import WorkspaceRef, is_repo_url
from tekton_common.errors import ConfigError, ProtocolError
from tekton_common.workspace import IDENTITY, WORKSPACE_REF, download, pack, upload
from tekton_common.workspace import git as plain_git

BASE = "tekton-base"
#: seconds a clone of a remote repository may take
CLONE_TIMEOUT = 300.0
#: the most an archive may unpack to (bytes)
UNPACKED_LIMIT = 2 * 1024**3
#: a diff may not be larger than this (bytes)
MAX_DIFF = 2 * 1024 * 1024
_HEADER = re.compile(r"^(?:diff --git a/(.+) b/(.+)|--- (.+)|\+\+\+ (.+)|rename (?:from|to) (.+))$")


#: what no workspace may make git run on this host: hooks, an fsmonitor command
HARDENED = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")


def git(root: Path, *args: str, data: bytes | None = None) -> str:
    """git on a workspace: nothing in it (a hook, an fsmonitor) runs on this host."""
    return plain_git(root, *HARDENED, *args, data=data)


class DiffRefusedError(ProtocolError):
    """A diff that may not be applied, with the reason."""


def result_branch(run_id: str) -> str:
    """The branch a finished run leaves: ``tekton/<run id>``."""
    return f"tekton/{run_id}"


def _unsafe_path(raw: str) -> str | None:
    path = raw.strip().split("\t")[0].strip('"')
    if path == "/dev/null":
        return None
    if path.startswith(("a/", "b/")):
        path = path[2:]
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        return f"{path}: leaves the repository"
    if pure.parts and pure.parts[0] == ".git":
        return f"{path}: writes into .git"
    return None


def refusal(diff: str) -> str | None:
    """Why `diff` may not be applied (None when it may): paths that leave the
    repository or write into .git, symlinks, binary patches, or a diff too large."""
    if len(diff.encode()) > MAX_DIFF:
        return f"the diff is larger than {MAX_DIFF // 1024} KiB"
    for line in diff.splitlines():
        if line.startswith(("GIT binary patch", "Binary files ")):
            return "binary patches are not applied"
        if re.match(r"^(new file |old |new |deleted file )?mode 120000", line):
            return "symlinks are not applied"
        if (found := _HEADER.match(line)) is not None:
            for raw in filter(None, found.groups()):
                if (why := _unsafe_path(raw)) is not None:
                    return why
    return None


class Worktrees:
    """Workspaces of this process, fetched once per digest."""

    def __init__(self, js: JetStreamContext, root: Path) -> None:
        self.js = js
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    def _key(self, ref: WorkspaceRef) -> str:
        return hashlib.sha256(f"{ref.name}\0{ref.digest}".encode()).hexdigest()[:20]

    async def source(self, ref: WorkspaceRef) -> Path:
        """The git repository holding `ref` as branch ``tekton-base``."""
        key = self._key(ref)
        repo = self.root / "sources" / key
        async with self._locks.setdefault(key, asyncio.Lock()):
            if (repo / ".git" / "tekton-ready").exists():
                return repo
            await asyncio.to_thread(shutil.rmtree, repo, True)
            repo.mkdir(parents=True)
            with tempfile.TemporaryDirectory(dir=self.root) as scratch:
                packed = Path(scratch) / "packed"
                await download(self.js, ref.name, packed)
                await asyncio.to_thread(_unpack, ref, packed, repo)
            (repo / ".git" / "tekton-ready").touch()
        return repo

    async def checkout(self, ref: WorkspaceRef, run_id: str, attempt: str) -> Path:
        """A fresh worktree of the workspace for one attempt of a run."""
        repo = await self.source(ref)
        path = self.root / "runs" / run_id / attempt
        await asyncio.to_thread(_fresh_worktree, repo, path)
        return path

    async def discard(self, ref: WorkspaceRef, run_id: str) -> None:
        """Remove a run's worktrees (its result is in the bucket; a resume makes them
        again)."""
        repo = self.root / "sources" / self._key(ref)
        await asyncio.to_thread(shutil.rmtree, self.root / "runs" / run_id, True)
        if repo.exists():
            with contextlib.suppress(ConfigError):  # a prune later does the same
                await asyncio.to_thread(git, repo, "worktree", "prune")

    async def clone(self, url: str, run_id: str, limit: int) -> WorkspaceRef:
        """Clone a remote repository (https, ssh or git only) and keep it in the bucket
        as the run's workspace, so every stages process sees the same tree."""
        if not is_repo_url(url):
            raise ProtocolError(f"repo_url {url!r}: only https://, ssh:// or git:// URLs")
        folder = self.root / "runs" / run_id / "clone"
        await asyncio.to_thread(_clone, url, folder)
        bundle = folder.parent / "source.bundle"
        kind = await asyncio.to_thread(pack, folder, bundle, limit)
        return await upload(self.js, f"{run_id}/source", bundle, kind, url)

    def git_dir(self, ref: WorkspaceRef) -> Path:
        """The git folder of a workspace's worktrees (checks read it, read-only)."""
        return self.root / "sources" / self._key(ref) / ".git"

    async def keep_result(
        self, ref: WorkspaceRef, run_id: str, commit: str, message: str
    ) -> WorkspaceRef:
        """Make branch ``tekton/<run id>`` (one commit on the workspace, with `message`)
        and put it in the bucket as a bundle; returns its reference."""
        repo = await self.source(ref)
        bundle = self.root / "runs" / run_id / "result.bundle"
        await asyncio.to_thread(_result_bundle, repo, run_id, commit, message, bundle)
        name = f"{run_id}/result"
        return await upload(self.js, name, bundle, "git", result_branch(run_id))


def _bundle_head(repo: Path, packed: Path) -> str:
    """The ref of a bundle to work on: the workspace's, else HEAD, else its only head."""
    heads = [
        line.split()[-1] for line in git(repo, "bundle", "list-heads", str(packed)).splitlines()
    ]
    for wanted in (WORKSPACE_REF, "HEAD"):
        if wanted in heads:
            return wanted
    if len(heads) == 1:
        return heads[0]
    raise ProtocolError(
        f"the bundle has {len(heads)} heads and no HEAD: say which with a bundle of one"
    )


def _members(archive: tarfile.TarFile, limit: int) -> list[tarfile.TarInfo]:
    """The archive's files, or ProtocolError: nothing under a ``.git`` folder (its
    config and hooks would run here), and no more than `limit` bytes unpacked."""
    members, total = archive.getmembers(), 0
    for member in members:
        if ".git" in (part.lower() for part in PurePosixPath(member.name).parts):
            raise ProtocolError(f"the archive holds {member.name}: no .git folder may be sent")
        total += member.size
        if total > limit:
            raise ProtocolError(f"the archive unpacks to more than {limit / 2**20:g} MiB")
    return members


def _unpack(ref: WorkspaceRef, packed: Path, repo: Path) -> None:
    git(repo, "init", "-q")
    if ref.kind == "git":
        git(repo, "bundle", "verify", "-q", str(packed))
        git(repo, "fetch", "-q", str(packed), f"{_bundle_head(repo, packed)}:refs/heads/{BASE}")
        return
    with tarfile.open(packed, "r:gz") as archive:
        members = _members(archive, UNPACKED_LIMIT)
        archive.extractall(repo, members=members, filter="data")  # no links out, no /
    git(repo, "add", "-A", ".")
    git(repo, "commit", "-q", "--allow-empty", "-m", "tekton: the folder as packed")
    git(repo, "branch", "-f", BASE)


def _clone(url: str, folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # none of this process's credentials: no agent, no helper, no prompt, no config
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": "https:ssh:git",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes",
        **IDENTITY,
    }
    command = ["git", *HARDENED, "-c", "credential.helper=", "clone", "-q", "--no-tags"]
    proc = subprocess.Popen(
        [*command, "--", url, str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # so a timeout kills ssh and the remote helpers too
    )
    try:
        _, said = proc.communicate(timeout=CLONE_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise ProtocolError(f"cloning {url} took more than {CLONE_TIMEOUT:g}s") from None
    if proc.returncode != 0:
        raise ProtocolError(f"cannot clone {url}: {said.decode(errors='replace').strip()[-500:]}")


def _fresh_worktree(repo: Path, path: Path) -> None:
    if path.exists():
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "remove", "--force", str(path)],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(path, ignore_errors=True)
    git(repo, "worktree", "prune")
    path.parent.mkdir(parents=True, exist_ok=True)
    git(repo, "worktree", "add", "-q", "--detach", str(path), BASE)


def apply_diff(worktree: Path, diff: str, message: str) -> str:
    """Apply `diff` in `worktree` and commit it; the commit id. DiffRefusedError with
    the reason when it is hostile or does not apply."""
    if (why := refusal(diff)) is not None:
        raise DiffRefusedError(f"diff refused: {why}")
    patch = (diff if diff.endswith("\n") else diff + "\n").encode()
    try:
        git(worktree, "apply", "--index", "--whitespace=nowarn", "-", data=patch)
    except ConfigError as exc:
        raise DiffRefusedError(f"the diff does not apply: {exc}") from None
    for row in git(worktree, "diff", "--cached", "--raw", "--no-abbrev").splitlines():
        modes = row.split()[:2]  # ":old new …": a symlink or a submodule made by any route
        if any(m.lstrip(":") in ("120000", "160000") for m in modes):
            git(worktree, "reset", "-q", "--hard")
            raise DiffRefusedError("diff refused: symlinks and submodules are not applied")
    git(worktree, "commit", "-q", "--allow-empty", "-m", message)
    return git(worktree, "rev-parse", "HEAD")


def head(worktree: Path) -> str:
    """The commit a worktree is at."""
    return git(worktree, "rev-parse", "HEAD")


def change_patch(worktree: Path) -> str:
    """The change of a worktree against the workspace, as a patch."""
    return git(worktree, "diff", "--binary", BASE, "HEAD")


def _result_bundle(repo: Path, run_id: str, commit: str, message: str, bundle: Path) -> None:
    tree = git(repo, "rev-parse", f"{commit}^{{tree}}")
    made = git(repo, "commit-tree", tree, "-p", BASE, "-m", message)
    branch = result_branch(run_id)
    git(repo, "branch", "-f", branch, made)
    git(repo, "bundle", "create", "-q", str(bundle), f"refs/heads/{branch}")
