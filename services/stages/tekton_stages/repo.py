"""A workspace's text files cut into chunks for memory."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tekton_common.contract.runs import Chunk

CHUNK_LINES = 40
MAX_FILE_BYTES = 256 * 1024
MAX_CHUNKS = 4000
SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tekton"}


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
    try:  # a symlink is never followed: it could name any file of this host
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
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
