"""How a run's artifacts lie on disk: ``<folder>/<run_id>/plan.json`` … and, for the
code stage, ``diff.patch`` beside ``diff.json`` (its metadata).

The stages service writes them under its own artifacts root
(``$TEKTON_HOME/artifacts``); the command line writes the user's copy (``--output``)
the same way from the run's ArtifactCreated events. Names are sanitised and a path
never leaves its folder.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tekton_common.contract.ids import check_run_id
from tekton_common.contract.schemas import JsonObject
from tekton_common.errors import ProtocolError
from tekton_common.stages import STAGES

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def artifact_name(stage: str) -> str:
    """File name of a stage's artifact (diff.patch for code, <x>.json otherwise)."""
    return STAGES[stage].artifact


def safe_path(folder: Path, name: str) -> Path:
    """`folder/name` with the name sanitised; never outside `folder`."""
    clean = SAFE_NAME.sub("_", name).lstrip(".") or "artifact"
    path = (folder / clean).resolve()
    if path.parent != folder.resolve():
        raise ProtocolError(f"artifact name {name!r} escapes the output folder")
    return path


def run_folder(root: Path, run_id: str) -> Path:
    """The folder of one run's artifacts under `root`."""
    return root / check_run_id(run_id)


def write_artifact(folder: Path, stage: str, artifact: JsonObject) -> list[str]:
    """Write a stage's artifact into `folder` (the code stage: diff.patch plus diff.json);
    returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    name = artifact_name(stage)
    if stage == "code":
        patch = safe_path(folder, name)
        patch.write_text(artifact["diff"], encoding="utf-8")
        meta = safe_path(folder, "diff.json")
        meta.write_text(
            json.dumps({k: v for k, v in artifact.items() if k != "diff"}, indent=2),
            encoding="utf-8",
        )
        return [str(patch), str(meta)]
    path = safe_path(folder, name)
    path.write_text(json.dumps(artifact, indent=2, ensure_ascii=False), encoding="utf-8")
    return [str(path)]
