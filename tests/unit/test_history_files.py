"""A run's export file read as the stages service reads it before it keeps anything:
only known regular members within their limits, a manifest of this format, one run's
events in order from RunStarted to an end, and that run's own lessons and request."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import msgspec
import pytest

from tekton_common.contract.events import (
    ArtifactCreated,
    RunFinished,
    RunResumed,
    RunStarted,
    StageStarted,
)
from tekton_common.contract.history import ImportRequest
from tekton_common.errors import ProtocolError
from tekton_stages import history

REQUEST = {"goal": "g", "run_id": "r1", "to_stage": "plan"}
WS = {"name": "other/source", "kind": "git", "size": 1, "digest": "d"}
PLAN = {
    "goals": ["g"],
    "milestones": [{"name": "m", "deliverable": "d", "check": "c"}],
    "acceptance_criteria": ["a"],
    "risks": [],
    "confidence": 0.8,
}


def stored(*events: object) -> list[bytes]:
    return [msgspec.json.encode(e) for e in events]


def whole_run(
    run_id: str = "r1",
    request: dict | None = None,
    stage: str = "plan",
    artifact: dict | None = None,
    resumed: dict | None = None,
    result: dict | None = None,
) -> list[bytes]:
    went_on = [RunResumed(run_id=run_id, seq=3, done=[], remaining=["plan"], request=resumed)]
    ended = {"result": result, "branch": f"tekton/{run_id}"} if result else {}
    made = 4 if resumed else 3
    return stored(
        RunStarted(
            run_id=run_id, seq=1, goal="g", stages=["plan"], output="/x", request=request or REQUEST
        ),
        StageStarted(run_id=run_id, seq=2, stage="plan", debate_id="d1"),
        *(went_on if resumed else []),
        ArtifactCreated(
            run_id=run_id,
            seq=made,
            stage=stage,
            name="plan.json",
            files=[],
            artifact=PLAN if artifact is None else artifact,
        ),
        RunFinished(
            run_id=run_id,
            seq=made + 1,
            artifacts=[],
            output="/x",
            duration_s=1.0,
            tokens=1,
            cost_usd=0.0,
            **ended,
        ),
    )


def tar_of(tmp_path: Path, members: dict[str, bytes], link: str | None = None) -> Path:
    path = tmp_path / "run.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return path


def test_an_export_of_one_whole_run_reads_back() -> None:
    events = history.checked_events("r1", whole_run())
    assert [e.seq for e in events] == [1, 2, 3, 4] and history.status_of(events[-1]) == "finished"
    own = {**WS, "name": "r1/source"}
    retried = history.checked_events("r1", whole_run(resumed={**REQUEST, "workspace": own}))
    assert history.workspace_digests(retried) == {"d"}  # what the imported repository must be
    done = history.checked_events("r1", whole_run(result={**WS, "name": "r1/result"}))
    assert history.status_of(done[-1]) == "finished"


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        ([], "holds no events"),
        (whole_run("r2"), "not event 1 of r1"),
        (whole_run()[1:], "event 1 of the export is event 2"),
        (whole_run()[:3], "had not ended"),
        (whole_run()[:1] + whole_run()[2:], "event 2 of the export is event 3"),
        ([b'{"type": "Unheard.v9", "run_id": "r1", "seq": 1}'], "no run event this version"),
        (whole_run(request={**REQUEST, "run_id": "other"}), "not its run's own"),
        (whole_run(stage="../../etc"), "artifact of no stage"),
        (whole_run(artifact={"goals": 7}), "plan's artifact does not hold to its schema"),
        (whole_run(resumed={**REQUEST, "workspace": WS}), "not its run's own"),  # a retry's
        (whole_run(result={**WS, "name": "r1/source"}), "the export's result is not its run's own"),
        (whole_run(request={**REQUEST, "workspace": WS}), "not its run's own"),
    ],
)
def test_an_export_out_of_order_or_of_another_run_is_refused(lines: list[bytes], said: str) -> None:
    with pytest.raises(ProtocolError, match=said):
        history.checked_events("r1", lines)


def test_lessons_are_the_runs_own_one_per_stage() -> None:
    lesson = {"run_id": "r1", "stage": "plan", "status": "approved", "goal": "g", "text": "t"}
    line = json.dumps(lesson).encode()
    assert [x.stage for x in history.checked_lessons("r1", line + b"\n")] == ["plan"]
    for wrong in (line + b"\n" + line, json.dumps({**lesson, "run_id": "r2"}).encode()):
        with pytest.raises(ProtocolError, match="not r1's, one per stage"):
            history.checked_lessons("r1", wrong)


def test_only_known_regular_members_within_their_limits(tmp_path: Path) -> None:
    manifest = json.dumps({"format": history.EXPORT_FORMAT, "run_id": "r1"}).encode()
    good = {history.MANIFEST: manifest, history.EVENTS: b"\n".join(whole_run())}
    scratch = tmp_path / "objects"
    scratch.mkdir()
    found = history.read_export(
        tar_of(tmp_path, {**good, "objects/source": b"bundle"}), scratch, 100
    )
    assert found["objects/source"].read_bytes() == b"bundle"
    assert history.read_export(tar_of(tmp_path, good), scratch, 100).keys() == good.keys()
    hostile = [
        ({**good, "../escape": b"x"}, None, "'../escape' is not part of a Tekton run export"),
        ({**good, "objects/../../x": b"x"}, None, "is not part of"),
        (good, "objects/result", "'objects/result' is not part of"),  # a link, no file
        ({**good, "objects/source": b"x" * 101}, None, "larger than the workspace limit"),
        ({history.EVENTS: good[history.EVENTS]}, None, "has no tekton-run.json"),
    ]
    for members, link, said in hostile:
        with pytest.raises(ProtocolError, match=said):
            history.read_export(tar_of(tmp_path, members, link), scratch, 100)
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ProtocolError, match="no tar file Tekton reads"):
        history.read_export(tmp_path / "junk.tar", scratch, 100)


def test_the_manifest_names_its_format_and_a_valid_run() -> None:
    assert history.manifest_run(json.dumps({"format": 1, "run_id": "r-1"}).encode()) == "r-1"
    for wrong, said in (
        (b"{", "no JSON"),
        (json.dumps({"format": 2, "run_id": "r1"}).encode(), "not an export of format 1"),
        (json.dumps({"format": 1, "run_id": "../x"}).encode(), "no valid run_id"),
    ):
        with pytest.raises(ProtocolError, match=said):
            history.manifest_run(wrong)


def test_an_import_takes_only_an_object_named_for_an_import() -> None:
    assert msgspec.convert({"file": "abc/import"}, ImportRequest).file == "abc/import"
    for wrong in ("victim/source", "victim/result", "a/b/import", "../import"):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert({"file": wrong}, ImportRequest)
