"""`--repo`: the repository's text files cut into chunks, and `git apply --check`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from pathlib import Path

from tekton_common.contract.runs import Chunk
from tekton_common.errors import ProtocolError

CHUNK_LINES = 40
MAX_FILE_BYTES = 256 * 1024
MAX_CHUNKS = 4000
SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tekton"}


def repo_roots(setting: str) -> list[Path]:
    """The folders repositories may be read from (``repo_roots``: paths separated by
    ``:``; by default this process's home folder and the temporary folder)."""
    given = [p for p in setting.split(":") if p.strip()]
    chosen = given or [str(Path.home()), tempfile.gettempdir()]
    return [Path(p).expanduser().resolve() for p in chosen]


def check_repo(path: str, roots: list[Path]) -> str:
    """The repository's absolute path; a clear error when it is not a folder, or lies
    outside every allowed root (a path from the bus must not point the stages at any
    folder of the server)."""
    folder = Path(path).expanduser().resolve()
    if not any(folder.is_relative_to(root) for root in roots):
        shown = ", ".join(map(str, roots))
        raise ProtocolError(f"repo {path}: outside the allowed repository roots ({shown})")
    if not folder.is_dir():
        raise ProtocolError(f"repo {path}: not a folder")
    return str(folder)


def repo_files(root: Path) -> list[Path]:
    """Tracked and untracked-but-not-ignored files of a git repository, else every file
    outside hidden and vendored folders."""
    if (root / ".git").exists():
        listed = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=False,
        )
        if listed.returncode == 0:
            names = sorted({n for n in listed.stdout.decode(errors="replace").split("\0") if n})
            return [root / n for n in names]
    files: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        files.extend(Path(folder) / n for n in sorted(names) if not n.startswith("."))
    return files


def _text(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", errors="replace")


def chunk_repo(repo: str) -> tuple[list[Chunk], int]:
    """Chunks of `CHUNK_LINES` lines from every text file; also the number of files read."""
    root = Path(repo)
    chunks: list[Chunk] = []
    files = 0
    for path in repo_files(root):
        text = _text(path)
        if not text:
            continue
        files += 1
        lines = text.splitlines()
        relative = path.relative_to(root).as_posix()
        for begin in range(0, len(lines), CHUNK_LINES):
            window = lines[begin : begin + CHUNK_LINES]
            chunks.append(Chunk(relative, begin + 1, begin + len(window), "\n".join(window)))
            if len(chunks) >= MAX_CHUNKS:
                return chunks, files
    return chunks, files


async def check_diff(repo: str, diff: str) -> tuple[bool, str]:
    """`git apply --check` of `diff` against the repository: (applies, git's output)."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        "-C",
        repo,
        "apply",
        "--check",
        "--verbose",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    patch = diff if diff.endswith("\n") else diff + "\n"
    output, _ = await proc.communicate(patch.encode())
    return proc.returncode == 0, output.decode(errors="replace").strip()[-2000:]
