"""A repository's checks: which commands, and what they measured.

The checks come from the request (``--check NAME=COMMAND``), else from ``[checks]`` in
``tekton.toml`` at the repository's root, else they are detected from the files there
(pytest, npm test, go test, cargo test, make test). The stages run each in the
sandbox; its counts are read from the runner's summary line where it prints one. The
command line reads the same to show, on ``--dry-run``, which checks a run would use.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import msgspec

from tekton_common.contract.workspaces import CheckSpec
from tekton_common.errors import ProtocolError

CONFIG = "tekton.toml"
#: the most checks a run takes (as in RunRequest.checks)
MAX_CHECKS = 20
#: (a file at the root that says which runner, the check) in the order tried
DETECTED = (
    ("pyproject.toml", CheckSpec("test", "python3 -m pytest -q")),
    ("setup.py", CheckSpec("test", "python3 -m pytest -q")),
    ("pytest.ini", CheckSpec("test", "python3 -m pytest -q")),
    ("package.json", CheckSpec("test", "npm test --silent")),
    ("go.mod", CheckSpec("test", "go test ./...")),
    ("Cargo.toml", CheckSpec("test", "cargo test --offline")),
    ("Makefile", CheckSpec("test", "make test")),
)
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|ignored|xfailed)\b")
_CARGO = re.compile(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")


def configured(worktree: Path) -> list[CheckSpec] | None:
    """The ``[checks]`` table of the repository's tekton.toml (None when it has none)."""
    path = worktree / CONFIG
    if path.is_symlink():
        raise ProtocolError(f"{CONFIG} of the repository is a symlink; it is not read")
    if not path.is_file():
        return None
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("checks")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{CONFIG} of the repository: {exc}") from None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ProtocolError(f"{CONFIG} of the repository: [checks] must be a table")
    if len(table) > MAX_CHECKS:
        raise ProtocolError(f"{CONFIG} of the repository: more than {MAX_CHECKS} checks")
    try:
        return [msgspec.convert({"name": k, "command": v}, CheckSpec) for k, v in table.items()]
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"{CONFIG} of the repository: [checks]: {exc}") from None


def detected(worktree: Path) -> list[CheckSpec]:
    """The check the repository's files suggest (none when nothing does)."""
    for marker, check in DETECTED:
        if (worktree / marker).is_file():
            if marker == "package.json" and not _has_npm_test(worktree / marker):
                continue
            if marker == "Makefile" and not _has_make_test(worktree / marker):
                continue
            return [check]
    return []


def _has_npm_test(path: Path) -> bool:
    try:
        scripts = json.loads(path.read_text(encoding="utf-8")).get("scripts") or {}
    except (ValueError, UnicodeDecodeError, AttributeError):
        return False
    return isinstance(scripts, dict) and "test" in scripts


def _has_make_test(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"^test\s*:", text, re.MULTILINE) is not None


def checks_for(worktree: Path, given: list[CheckSpec]) -> tuple[list[CheckSpec], str]:
    """The checks to run and where they came from (``request``, ``tekton.toml``,
    ``detected`` or ``none``)."""
    if given:
        return given, "request"
    if (listed := configured(worktree)) is not None:
        return listed, CONFIG
    found = detected(worktree)
    return found, "detected" if found else "none"


def counts(output: str) -> tuple[int | None, int | None, int | None]:
    """(passed, failed, skipped) from a runner's summary, or Nones when it has none."""
    if cargo := _CARGO.findall(output):
        totals = [sum(int(row[i]) for row in cargo) for i in range(3)]
        return totals[0], totals[1], totals[2]
    found: dict[str, int] = {}
    for line in output.splitlines()[-30:]:  # the summary is at the end
        for number, word in _COUNT.findall(line):
            kind = {"error": "failed", "errors": "failed", "ignored": "skipped"}.get(word, word)
            if kind == "xfailed":
                kind = "skipped"
            found[kind] = found.get(kind, 0) + int(number)
    if not found:
        return None, None, None
    return found.get("passed", 0), found.get("failed", 0), found.get("skipped", 0)
