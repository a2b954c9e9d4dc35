"""Workspaces: a repository packed on the caller's side and moved through the JetStream
object store, so no process reads another's disk.

`pack` makes one file of a folder: a git repository becomes a bundle whose
``refs/tekton/workspace`` is the working tree as it is (HEAD, plus the uncommitted and
untracked-but-not-ignored files as one commit on top); any other folder becomes a
gzipped tar (vendored and hidden folders left out). `upload` and `download` move such a
file (and a run's result bundle) through the bucket, checked by its digest;
`copy_object` gives a fork its own copy of its source run's repository.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Literal

from nats.js.api import ObjectInfo, ObjectStoreConfig
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from tekton_common.contract.workspaces import WORKSPACES_BUCKET, WorkspaceRef
from tekton_common.errors import ConfigError
from tekton_common.errors import NotFoundError as MissingError

log = logging.getLogger(__name__)
#: how long the bucket keeps a workspace and a result (seconds) when it is made
#: (`keep_for` brings it to the setting): fetch a branch before
WORKSPACE_TTL = 30 * 24 * 3600.0
#: the ref a workspace bundle carries
WORKSPACE_REF = "refs/tekton/workspace"
#: folders an archive of a plain folder leaves out
SKIP_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".tekton"}
#: who commits the packed working tree (and the stages' commits)
IDENTITY = {
    "GIT_AUTHOR_NAME": "Tekton",
    "GIT_AUTHOR_EMAIL": "tekton@localhost",
    "GIT_COMMITTER_NAME": "Tekton",
    "GIT_COMMITTER_EMAIL": "tekton@localhost",
}


class WorkspaceTooLargeError(ConfigError):
    """The repository packs to more than the limit."""


def git(
    root: Path, *args: str, env: dict[str, str] | None = None, data: bytes | None = None
) -> str:
    """Run git in `root`; its stdout, or ConfigError with its stderr."""
    done = subprocess.run(
        ["git", "-C", str(root), *args],
        input=data,
        capture_output=True,
        check=False,
        env={**os.environ, **IDENTITY, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
    )
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()[-500:]
        raise ConfigError(f"git {args[0]} in {root}: {said}")
    return done.stdout.decode(errors="replace").strip()


def is_git_repo(folder: Path) -> bool:
    """True for the top of a git working tree."""
    return (folder / ".git").exists()


def _snapshot_commit(root: Path) -> str:
    """A commit of the working tree as it is (HEAD itself when nothing changed)."""
    head = (
        subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"],
            capture_output=True,
            check=False,
        )
        .stdout.decode()
        .strip()
    )
    with tempfile.TemporaryDirectory() as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        if head:
            git(root, "read-tree", "HEAD", env=index)
        git(root, "add", "-A", ".", env=index)
        tree = git(root, "write-tree", env=index)
    if head and tree == git(root, "rev-parse", "HEAD^{tree}"):
        return head
    parents = ["-p", head] if head else []
    return git(root, "commit-tree", tree, *parents, "-m", "tekton: the working tree as packed")


def _pack_git(root: Path, dest: Path) -> None:
    commit = _snapshot_commit(root)
    git(root, "update-ref", WORKSPACE_REF, commit)
    try:
        git(root, "bundle", "create", "-q", str(dest), WORKSPACE_REF)
    finally:
        git(root, "update-ref", "-d", WORKSPACE_REF)


def _pack_tree(root: Path, dest: Path, limit: int) -> None:
    total = 0
    with tarfile.open(dest, "w:gz") as archive:
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(names):
                path = Path(folder) / name
                if path.is_symlink() or not path.is_file():
                    continue
                total += path.stat().st_size
                if total > limit:
                    raise WorkspaceTooLargeError(_too_large(root, limit))
                archive.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)


def _too_large(root: Path, limit: int) -> str:
    return (
        f"{root} packs to more than {limit / 2**20:g} MiB (the workspace limit); leave "
        "build output and data out (.gitignore), or raise TEKTON_WORKSPACE_LIMIT_MB"
    )


Kind = Literal["git", "tree"]


def kind_of(head: bytes) -> Kind | None:
    """What a packed file is, from its first bytes (None: neither)."""
    if head.startswith((b"# v2 git bundle", b"# v3 git bundle")):
        return "git"
    if head.startswith(b"\x1f\x8b"):
        return "tree"
    return None


def pack(folder: Path, dest: Path, limit: int) -> Kind:
    """Pack `folder` into `dest`; returns the kind (``git`` or ``tree``)."""
    root = folder.expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"--repo {folder}: not a folder")
    kind: Kind = "git" if is_git_repo(root) else "tree"
    if kind == "git":
        _pack_git(root, dest)
    else:
        _pack_tree(root, dest, limit)
    if dest.stat().st_size > limit:
        raise WorkspaceTooLargeError(_too_large(root, limit))
    return kind


async def bucket(js: JetStreamContext) -> ObjectStore:
    """The workspaces bucket, made on first use."""
    try:
        return await js.object_store(WORKSPACES_BUCKET)
    except BucketNotFoundError:
        config = ObjectStoreConfig(
            bucket=WORKSPACES_BUCKET,
            description="Tekton workspaces: runs' sources and result branches",
            ttl=WORKSPACE_TTL,
        )
        return await js.create_object_store(WORKSPACES_BUCKET, config=config)


async def keep_for(js: JetStreamContext, days: float) -> None:
    """The bucket keeping its objects `days` (0: for ever), made so or brought to it
    (the stages service, as it starts, with `workspace_retention_days`)."""
    await bucket(js)
    stream = f"OBJ_{WORKSPACES_BUCKET}"
    config = (await js.stream_info(stream)).config
    if config.max_age != days * 86400.0:
        await js.update_stream(dataclasses.replace(config, max_age=days * 86400.0))
        log.info("workspaces bucket keeps its objects %s days", days or "for ever")


async def put(js: JetStreamContext, name: str, path: Path) -> ObjectInfo:
    """Put the file at `path` in the bucket under `name`."""
    store = await bucket(js)
    with path.open("rb") as data:
        return await store.put(name, data)


async def upload(
    js: JetStreamContext, name: str, path: Path, kind: Kind, label: str = ""
) -> WorkspaceRef:
    """Put a packed file in the bucket under `name`."""
    info = await put(js, name, path)
    size, digest = info.size or 0, info.digest or ""
    return WorkspaceRef(name=name, kind=kind, size=size, digest=digest, label=label[:200])


async def find_object(js: JetStreamContext, name: str) -> ObjectInfo | None:
    """What the bucket holds as `name`, or None."""
    store = await bucket(js)
    try:
        return await store.get_info(name)
    except (ObjectNotFoundError, NotFoundError):  # deleted too
        return None


async def require_object(js: JetStreamContext, name: str) -> ObjectInfo:
    """What the bucket holds as `name` (NotFoundError naming it if nothing)."""
    if (info := await find_object(js, name)) is None:
        raise MissingError(f"no workspace object {name} in {WORKSPACES_BUCKET}")
    return info


async def delete_object(js: JetStreamContext, name: str) -> None:
    """Remove `name` from the bucket (nothing when it holds no such object)."""
    if await find_object(js, name) is not None:
        await (await bucket(js)).delete(name)


async def download(js: JetStreamContext, name: str, dest: Path) -> None:
    """Write the object `name` into `dest` (its digest checked by the store)."""
    await require_object(js, name)
    store = await bucket(js)
    with dest.open("wb") as out:
        await store.get(name, writeinto=out)


async def copy_object(js: JetStreamContext, name: str, to: str) -> ObjectInfo:
    """The object `name` kept again as `to` (a fork's own copy of its source run's
    repository); NotFoundError naming it when the bucket no longer holds it."""
    await require_object(js, name)
    store = await bucket(js)
    with tempfile.TemporaryFile() as scratch:
        await store.get(name, writeinto=scratch)
        scratch.seek(0)
        return await store.put(to, scratch)
