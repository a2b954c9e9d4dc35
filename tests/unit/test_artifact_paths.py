"""Artifact file names can never leave the output folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tekton_common.artifact_files import safe_path, write_artifact


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/etc/passwd", "..", ".hidden", "a/b/c.json", "x\x00y", "plan.json"],
)
def test_names_stay_inside_the_folder(tmp_path: Path, name: str) -> None:
    path = safe_path(tmp_path, name)
    assert path.parent == tmp_path.resolve()
    assert path.name and not path.name.startswith(".")


def test_code_artifact_writes_the_diff_and_its_metadata(tmp_path: Path) -> None:
    files = write_artifact(tmp_path, "code", {"diff": "--- a\n+++ b\n", "confidence": 0.8})
    assert [Path(f).name for f in files] == ["diff.patch", "diff.json"]
    assert all(Path(f).parent == tmp_path.resolve() for f in files)
