"""Approval gates on the embedded stack: a gated stage's run pauses holding nothing,
and a person approves (the run goes on, the stage's debate held once), rejects (the
run ends with the reason) or edits (the person's artifact flows on); the same decision
twice is one, two different ones racing are one and a clear error; a paused run
survives the stages service being killed; decisions are rows in PostgreSQL. A rejected
stage retried is told why; a fork reuses its source's artifacts as they are, and the
two runs compare; a gate nobody decides in time blocks its run. A run exported is the
same run imported on a second installation, and a prune removes the older runs from
every store and nothing newer."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from tests.e2e.test_fleet_lifecycle import TEKTON, Fleet, running
from tests.e2e.test_runs import _query, git, git_repo
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    with running(
        tmp_path_factory.mktemp("approvals") / "home", TEKTON_SIMULATED_LATENCY_MS="5"
    ) as fleet:
        yield fleet


def events_of(fleet: Fleet, run_id: str) -> list[dict]:
    out = fleet.run("runs", "events", run_id, "--json")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def paused_run(fleet: Fleet, *gates: str, to: str = "research") -> str:
    """A run that stops at its first gate (exit 4, saying what to do)."""
    done = fleet.run("run", "--goal", "Gate me", "--to", to, "--approve", *gates, "--json")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "awaits a decision on" in done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1]["type"] == "StageAwaitingApproval.v1"
    return str(events[0]["run_id"])


def watch(fleet: Fleet, run_id: str) -> tuple[int, list[dict]]:
    done = fleet.run("runs", "watch", run_id, "--json")
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def kinds(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def test_approve_goes_on_without_debating_the_stage_again(platform: Fleet) -> None:
    run_id = paused_run(platform, "plan")
    state = platform.json("runs", "show", run_id)
    assert state["status"] == "awaiting approval" and state["reason"] == "plan awaits a decision"
    said = platform.run(
        "runs", "approve", run_id, "--by", "alice", "--comment", "fine", "--decision-id", "d-1"
    )
    assert said.returncode == 0, said.stderr
    assert f"approve on plan of run {run_id} by alice" in said.stdout
    code, events = watch(platform, run_id)
    assert code == 0 and kinds(events)[-1] == "RunFinished.v1"
    started = [e["stage"] for e in events if e["type"] == "StageStarted.v1"]
    assert started == ["plan", "research"]  # plan's debate was held once
    gate = next(e for e in events if e["type"] == "StageAwaitingApproval.v1")
    made = next(e for e in events if e["type"] == "ArtifactCreated.v1" and e["stage"] == "plan")
    assert made["artifact"] == gate["artifact"] and made["seq"] > gate["seq"]
    # the same decision again is the one decision; a different one is refused
    again = platform.run("runs", "approve", run_id, "--by", "alice", "--decision-id", "d-1")
    assert again.returncode == 0 and "already recorded" in again.stdout
    other = platform.run("runs", "reject", run_id, "--by", "bob", "--reason", "no")
    assert other.returncode == 1
    assert "the plan gate was already decided (approve by alice" in other.stderr
    assert kinds(events_of(platform, run_id)).count("DecisionRecorded.v1") == 1
    assert wait_for(
        lambda: asyncio.run(_query(platform, "SELECT * FROM decisions WHERE run_id = $1", run_id)),
        15,
    )
    rows = asyncio.run(_query(platform, "SELECT * FROM decisions WHERE run_id = $1", run_id))
    assert [(r["stage"], r["decision"], r["decided_by"], r["comment"]) for r in rows] == [
        ("plan", "approve", "alice", "fine")
    ]
    lessons = {row["stage"]: row for row in lessons_of(platform, run_id)}
    assert lessons["plan"]["status"] == "approved"
    assert lessons["plan"]["text"].startswith("approve by alice: {")


def test_reject_ends_the_run_with_the_reason(platform: Fleet) -> None:
    run_id = paused_run(platform, "plan")
    missing = platform.run("runs", "reject", run_id)
    assert missing.returncode == 2 and "a rejection gives its reason" in missing.stderr
    said = platform.run("runs", "reject", run_id, "--by", "bob", "--reason", "too vague")
    assert said.returncode == 0, said.stderr
    events = events_of(platform, run_id)
    assert kinds(events)[-4:] == [
        "DecisionRecorded.v1",
        "StageProgress.v1",  # the lesson kept
        "StageBlocked.v1",
        "RunFailed.v1",
    ]
    assert events[-1]["reason"] == "plan rejected by bob: too vague"
    assert platform.json("runs", "show", run_id)["status"] == "failed"
    # what the person decided is the stage's lesson, not the debate's approval
    [lesson] = lessons_of(platform, run_id)
    assert (lesson["stage"], lesson["status"]) == ("plan", "blocked")
    assert lesson["text"] == "blocked: rejected by bob: too vague"


def test_an_edited_artifact_flows_on(platform: Fleet, tmp_path: Path) -> None:
    run_id = paused_run(platform, "plan", to="plan_update")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"goals": []}))
    refused = platform.run("runs", "edit", run_id, "--stage", "plan", "--artifact", str(wrong))
    assert refused.returncode == 1
    assert "the edited plan artifact does not follow its schema: goals" in refused.stderr
    mine = {
        "goals": ["Rate limit the public API per client"],
        "milestones": [{"name": "limits", "deliverable": "a token bucket", "check": "a test"}],
        "acceptance_criteria": ["429 past the limit"],
        "risks": [],
        "confidence": 0.8,
    }
    edit = tmp_path / "plan.json"
    edit.write_text(json.dumps(mine))
    said = platform.run("runs", "edit", run_id, "--stage", "plan", "--artifact", str(edit))
    assert said.returncode == 0, said.stderr
    code, events = watch(platform, run_id)
    assert code == 0
    made = next(e for e in events if e["type"] == "ArtifactCreated.v1" and e["stage"] == "plan")
    assert made["artifact"] == mine  # what the later stages received as the plan
    kept = platform.home / "artifacts" / run_id / "plan.json"
    assert json.loads(kept.read_text()) == mine


def test_two_different_decisions_at_once_are_one(platform: Fleet) -> None:
    run_id = paused_run(platform, "plan")
    racing = [
        subprocess.Popen(
            [sys.executable, "-m", "tekton_cli.main", "runs", verb, run_id, "--by", who, *extra],
            env=platform.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for verb, who, extra in (
            ("approve", "alice", []),
            ("reject", "bob", ["--reason", "no"]),
        )
    ]
    outcomes = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in racing]
    assert sorted(code for code, _ in outcomes) == [0, 1], outcomes
    loser = next(err for code, err in outcomes if code == 1)
    assert "already decided" in loser or "another event came first" in loser
    assert kinds(events_of(platform, run_id)).count("DecisionRecorded.v1") == 1


def test_a_paused_run_survives_the_stages_service_and_is_decided_over_the_api(
    platform: Fleet,
) -> None:
    run_id = paused_run(platform, "plan")
    stages_pid = json.loads((platform.home / "run" / "tekton-stages.json").read_text())["pid"]
    os.kill(stages_pid, signal.SIGKILL)
    platform.up()  # the stages service again (unless the supervisor was quicker)
    events = events_of(platform, run_id)
    assert kinds(events)[-1] == "StageAwaitingApproval.v1"  # not resumed: it waits
    with httpx.Client(base_url=f"http://127.0.0.1:{platform.api_port}", timeout=60) as api:
        bad = api.post(f"/runs/{run_id}/decisions", json={"decision": "approve", "by": "x;y"})
        assert bad.status_code == 422
        reply = api.post(
            f"/runs/{run_id}/decisions",
            json={"decision": "approve", "by": "carol", "decision_id": "api-1"},
        )
        assert reply.status_code == 201, reply.text
        assert reply.json()["stage"] == "plan" and reply.json()["repeated"] is False
        twice = api.post(
            f"/runs/{run_id}/decisions",
            json={"decision": "approve", "by": "carol", "decision_id": "api-1"},
        )
        assert twice.status_code == 201 and twice.json()["repeated"] is True
        late = api.post(
            f"/runs/{run_id}/decisions", json={"decision": "reject", "by": "dan", "comment": "x"}
        )
        assert late.status_code == 409, late.text
    code, events = watch(platform, run_id)
    assert code == 0 and kinds(events)[-1] == "RunFinished.v1"


def test_a_gate_nobody_decides_in_time_blocks_the_run_also_across_a_restart(
    platform: Fleet,
) -> None:
    args = ["--goal", "Gate me", "--to", "research", "--approve", "plan"]
    wrong = platform.run("run", *args, "--approval-timeout", "soon")
    assert wrong.returncode == 2 and "a duration such as 90s" in wrong.stderr
    done = platform.run("run", *args, "--approval-timeout", "4s", "--json")
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr
    gate = json.loads(done.stdout.splitlines()[-1])
    run_id = gate["run_id"]
    assert gate["type"] == "StageAwaitingApproval.v1" and gate["deadline"] > gate["ts"]
    # the stages service dies while the run waits: the one started again blocks it
    stages_pid = json.loads((platform.home / "run" / "tekton-stages.json").read_text())["pid"]
    os.kill(stages_pid, signal.SIGKILL)
    platform.up()
    assert wait_for(lambda: kinds(events_of(platform, run_id))[-1] == "RunFailed.v1", 60)
    events = events_of(platform, run_id)
    assert kinds(events)[-4:] == [
        "StageAwaitingApproval.v1",
        "StageBlocked.v1",
        "StageProgress.v1",  # the lesson kept
        "RunFailed.v1",
    ]
    assert lessons_of(platform, run_id)[0]["text"] == (
        "blocked: no decision before the approval timeout"
    )
    assert events[-1]["reason"] == "plan blocked: no decision before the approval timeout"
    assert events[-1]["ts"] >= gate["deadline"]
    assert platform.json("runs", "show", run_id)["status"] == "failed"
    late = platform.run("runs", "approve", run_id, "--by", "alice")
    assert late.returncode == 1 and f"run {run_id} is not awaiting a decision" in late.stderr


def test_a_gate_on_the_last_stage_of_a_repository_run_still_makes_its_branch(
    platform: Fleet, tmp_path: Path
) -> None:
    repo = git_repo(tmp_path / "shop")
    args = ["--goal", "Rate limit", "--repo", str(repo), "--from", "code", "--to", "code"]
    done = platform.run("run", *args, "--approve", "code", "--json")
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr
    run_id = json.loads(done.stdout.splitlines()[0])["run_id"]
    assert platform.run("runs", "approve", run_id, "--by", "alice").returncode == 0
    code, events = watch(platform, run_id)
    assert code == 0, events[-1:]
    assert events[-1]["type"] == "RunFinished.v1" and events[-1]["branch"] == f"tekton/{run_id}"
    fetched = platform.run("runs", "fetch", run_id, "--repo", str(repo))
    assert fetched.returncode == 0, fetched.stderr
    assert git(repo, "rev-list", "--count", f"main..tekton/{run_id}") == "1"  # the change
    assert "simulated" in git(repo, "show", f"tekton/{run_id}:TEKTON_SIMULATED_CHANGE.md").lower()


def debate_prompts(
    fleet: Fleet, during: Callable[[], subprocess.CompletedProcess[str]]
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """What `during` (a command) did, and the prompts of the debates started meanwhile
    (read off the bus as Rhetor announced them)."""

    async def listen() -> tuple[subprocess.CompletedProcess[str], list[str]]:
        nc = await nats.connect(f"nats://127.0.0.1:{fleet.nats_port}")
        prompts: list[str] = []

        async def heard(msg: Any) -> None:
            event = json.loads(msg.data)
            if event.get("type") == "debate.started.v1":
                prompts.append(event["prompt"])

        await nc.subscribe("tekton.debates.*.events", cb=heard)
        try:
            done = await asyncio.to_thread(during)
            await asyncio.sleep(0.5)
        finally:
            await nc.close()
        return done, prompts

    return asyncio.run(listen())


def test_a_rejected_stage_is_retried_told_why_and_the_run_finishes(platform: Fleet) -> None:
    run_id = paused_run(platform, "plan")
    said = platform.run("runs", "reject", run_id, "--by", "bob", "--reason", "no milestones given")
    assert said.returncode == 0, said.stderr
    wrong = platform.run("runs", "retry", run_id, "--stage", "research")
    assert wrong.returncode == 1 and f"run {run_id} stopped at plan, not research" in wrong.stderr
    retried, prompts = debate_prompts(
        platform,
        lambda: platform.run("runs", "retry", run_id, "--threshold", "0.9", "--json"),
    )
    assert retried.returncode == 4, retried.stdout[-2000:] + retried.stderr  # plan's gate again
    assert len(prompts) == 1 and "rejected by bob: no milestones given" in prompts[0]
    events = events_of(platform, run_id)
    resumed = next(e for e in events if e["type"] == "RunResumed.v1")
    assert resumed["retry"] == "plan" and resumed["request"]["threshold"] == 0.9
    assert platform.run("runs", "approve", run_id, "--by", "alice").returncode == 0
    code, events = watch(platform, run_id)
    assert code == 0 and kinds(events)[-1] == "RunFinished.v1"
    started = [e["stage"] for e in events if e["type"] == "StageStarted.v1"]
    assert started == ["plan", "plan", "research"]
    # the run's totals count every debate it held, before the retry too
    turns = [e["turn"] for e in events if e["type"] == "DebateTurn.v1"]
    spent = sum(t.get("input_tokens", 0) + t.get("output_tokens", 0) for t in turns)
    assert events[-1]["tokens"] == spent > 0
    again = platform.run("runs", "retry", run_id)
    assert again.returncode == 1 and "has finished; nothing to resume" in again.stderr


def test_a_fork_reuses_artifacts_byte_for_byte_and_the_runs_compare(
    platform: Fleet, tmp_path: Path
) -> None:
    repo = git_repo(tmp_path / "shop")
    args = ["--goal", "Rate limit", "--repo", str(repo), "--from", "code", "--to", "review"]
    first = platform.run("run", *args, "--json")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr
    source = json.loads(first.stdout.splitlines()[0])["run_id"]
    refused = platform.run("run", "--fork", source, "--from", "review", "--goal", "other")
    assert refused.returncode == 2 and "--fork takes its run's goal" in refused.stderr
    forked = platform.run(
        "run", "--fork", source, "--from", "review", "--threshold", "0.9", "--json"
    )
    assert forked.returncode == 0, forked.stdout[-2000:] + forked.stderr
    events = [json.loads(line) for line in forked.stdout.splitlines()]
    fork = events[0]["run_id"]
    assert events[0]["fork_of"] == source and events[0]["reused"] == ["code"]
    assert events[0]["request"]["threshold"] == 0.9 and events[0]["request"]["goal"] == "Rate limit"
    assert [e["stage"] for e in events if e["type"] == "StageStarted.v1"] == ["review"]
    theirs = next(
        e
        for e in events_of(platform, source)
        if e["type"] == "ArtifactCreated.v1" and e["stage"] == "code"
    )
    mine = next(e for e in events if e["type"] == "ArtifactCreated.v1" and e["stage"] == "code")
    assert mine["reused_from"] == source and mine["artifact"] == theirs["artifact"]
    kept = [platform.home / "artifacts" / run / "diff.patch" for run in (source, fork)]
    assert kept[0].read_bytes() == kept[1].read_bytes()
    assert events[-1]["type"] == "RunFinished.v1" and events[-1]["branch"] == f"tekton/{fork}"

    compared = platform.json("runs", "diff", source, fork)
    stages = {s["stage"]: s for s in compared["stages"]}
    assert list(stages) == ["code", "review"] and compared["b"]["fork_of"] == source
    assert stages["code"]["same_artifact"] and stages["code"]["b"]["status"] == "reused"
    assert stages["code"]["a"]["tokens"] > 0 and stages["code"]["b"]["tokens"] == 0
    assert stages["review"]["a"]["status"] == stages["review"]["b"]["status"] == "approved"
    assert stages["review"]["b"]["tokens"] > 0 and stages["review"]["b"]["votes"]
    text = platform.run("runs", "diff", source, fork)
    assert text.returncode == 0 and f"reused from {source}" in text.stdout
    with httpx.Client(base_url=f"http://127.0.0.1:{platform.api_port}", timeout=60) as api:
        assert api.get(f"/runs/{source}/diff/{fork}").json() == compared
        bad = api.post("/runs", json={"fork_of": source, "from_stage": "review", "goal": "x"})
        assert bad.status_code == 422 and "a fork takes its run's goal" in bad.text
        timed = api.post(
            "/runs", json={"fork_of": source, "from_stage": "review", "approval_timeout": 60}
        )
        assert timed.status_code == 422 and "timeout: approval_timeout" in timed.text
        short = api.post("/runs", json={"goal": "x", "approve": ["plan"], "approval_timeout": 0.5})
        assert short.status_code == 422 and "approval_timeout" in short.text
        missing = api.post("/runs", json={"fork_of": "nosuchrun", "from_stage": "review"})
        assert missing.status_code == 404, missing.text
        again = api.post(
            "/runs", json={"fork_of": source, "from_stage": "review", "model": "simulated"}
        )
        assert again.status_code == 201, again.text
        assert again.json()["stages"] == ["review"] and again.json()["skipped"] == ["code"]
        finished = api.post(f"/runs/{source}/retry", json={})
        assert finished.status_code == 400 and "has finished" in finished.text


def test_a_persons_seat_is_answered_through_the_api(platform: Fleet) -> None:
    args = ["run", "--goal", "Ask a person", "--to", "plan", "--role", "plan:skeptic=human"]
    running_run = subprocess.Popen(
        [*TEKTON, *args, "--json"],
        env=platform.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert running_run.stdout is not None
        run_id = json.loads(running_run.stdout.readline())["run_id"]

        def asked() -> dict | None:
            events = events_of(platform, run_id)
            waits = [e for e in events if e.get("step") == "awaiting answer"]
            return waits[0] if waits else None

        assert wait_for(asked, 60)
        waiting = asked() or {}
        started = next(e for e in events_of(platform, run_id) if e["type"] == "StageStarted.v1")
        debate_id = started["debate_id"]
        assert f"tekton answer {debate_id} --role skeptic" in waiting["detail"]
        # what the seat is asked, as a CI in it would be, kept in the run's events
        assert "Ask a person" in waiting["ask"]
        shown = platform.run("answer", debate_id, "--role", "skeptic", "--show")
        assert shown.returncode == 0 and shown.stdout.strip() == waiting["ask"].strip()
        said = platform.json("answer", debate_id, "--role", "skeptic", "--show")
        assert said["stage"] == "plan" and said["ask"] == waiting["ask"]
        unasked = platform.run("answer", debate_id, "--role", "mediator", "--show")
        assert unasked.returncode == 1 and "no run keeps a question" in unasked.stderr
        bare = platform.run("answer", debate_id, "--role", "skeptic")
        assert bare.returncode != 0 and "--position FILE" in bare.stderr
        position = {
            "position": "Plan it in two milestones.",
            "scores": {
                "correctness": 0.8,
                "stack_fit": 0.8,
                "ops_risk": 0.2,
                "reversibility": 0.9,
                "recency": 0.5,
            },
            "self_confidence": 0.9,
            "vote": "accept",
        }
        nobody = platform.run(
            "answer", "nosuch", "--role", "skeptic", "--position", "-", stdin=json.dumps(position)
        )
        assert nobody.returncode == 1 and "no debate nosuch waits" in nobody.stderr
        with httpx.Client(base_url=f"http://127.0.0.1:{platform.api_port}", timeout=60) as api:
            url = f"/debates/{debate_id}/answers"
            wrong = api.post(
                url, json={"role": "skeptic", "answer": {"vote": "yes"}, "by": "carol"}
            )
            assert wrong.status_code == 400 and "does not hold" in wrong.text, wrong.text
            other = api.post(url, json={"role": "mediator", "answer": position, "by": "carol"})
            assert other.status_code == 409, other.text
            taken = api.post(url, json={"role": "skeptic", "answer": position, "by": "carol"})
            assert taken.status_code == 201, taken.text
            assert taken.json() == {
                "debate_id": debate_id,
                "role": "skeptic",
                "round": 1,
                "by": "carol",
            }
        assert running_run.wait(60) == 0, running_run.stderr.read() if running_run.stderr else ""
    finally:
        running_run.kill()
        running_run.wait()
    events = events_of(platform, run_id)
    assert kinds(events)[-1] == "RunFinished.v1"
    skeptic = [
        e["turn"] for e in events if e["type"] == "DebateTurn.v1" and e["turn"]["role"] == "skeptic"
    ]
    assert skeptic[0]["model"] == "human:carol" and skeptic[0]["ci"] == "human"
    assert skeptic[0]["position"]["position"] == "Plan it in two milestones."


_MILVUS: dict[int, Any] = {}  # one client per Milvus: a new one per poll is refused


def lessons_of(fleet: Fleet, run_id: str) -> list[dict]:
    """The lessons Milvus holds of a run (stage, status, text), asked of Milvus itself."""
    from pymilvus import MilvusClient  # noqa: PLC0415 - only these tests talk to Milvus
    from pymilvus.exceptions import MilvusException  # noqa: PLC0415

    fields = ["stage", "status", "text"]
    for attempt in (1, 2, 3):
        if fleet.milvus_port not in _MILVUS:
            _MILVUS[fleet.milvus_port] = MilvusClient(uri=f"http://127.0.0.1:{fleet.milvus_port}")
        client = _MILVUS[fleet.milvus_port]
        try:
            names = [n for n in client.list_collections() if n.startswith("tekton_lessons_")]
            return [
                row
                for n in names
                for row in client.query(n, filter=f'run_id == "{run_id}"', output_fields=fields)
            ]
        except MilvusException:
            _MILVUS.pop(fleet.milvus_port).close()
            if attempt == 3:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def lessons_in_milvus(fleet: Fleet, run_id: str) -> int:
    return len(lessons_of(fleet, run_id))


def rows_of(fleet: Fleet, run_id: str) -> int:
    tables = ("events", "runs", "stages", "artifacts", "debates", "turns")
    counts = [
        asyncio.run(_query(fleet, f"SELECT count(*) AS n FROM {t} WHERE run_id = $1", run_id))
        for t in tables
    ]
    return sum(c[0]["n"] for c in counts)


def test_a_run_exported_imports_intact_elsewhere_and_prune_spares_newer_runs(
    platform: Fleet, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Last in the module: its prune takes the other tests' ended runs too."""
    waiting = paused_run(platform, "plan")  # however old, a run at a gate is kept
    repo = git_repo(tmp_path / "shop")
    args = ["--goal", "Rate limit", "--repo", str(repo), "--from", "code", "--to", "code"]
    done = platform.run("run", *args, "--json")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    old = json.loads(done.stdout.splitlines()[0])["run_id"]
    old_events = platform.run("runs", "events", old, "--json").stdout
    assert wait_for(lambda: rows_of(platform, old) > 0 and lessons_in_milvus(platform, old), 30)

    # exported to a file, and to standard output: the same run
    tar = tmp_path / "run.tar"
    said = platform.run("runs", "export", old, "--output", str(tar))
    assert said.returncode == 0 and f"exported run {old} (finished)" in said.stdout, said.stderr
    piped = subprocess.run(
        [*TEKTON, "runs", "export", old], env=platform.env, capture_output=True, check=False
    )
    assert piped.returncode == 0, piped.stderr

    def events_in(data: bytes) -> bytes:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            member = archive.extractfile("events.jsonl")
            assert member is not None
            return member.read()

    exported = events_in(tar.read_bytes())
    assert events_in(piped.stdout) == exported
    assert [json.loads(x) for x in exported.splitlines()] == [
        json.loads(x) for x in old_events.splitlines()
    ]
    unknown = platform.run("runs", "export", "nosuchrun")
    assert unknown.returncode == 1 and "no run nosuchrun" in unknown.stderr

    with running(tmp_path_factory.mktemp("elsewhere") / "home") as other:
        hostile = tmp_path / "hostile.tar"
        hostile.write_bytes(b"no tar" * 100)
        refused = other.run("runs", "import", str(hostile))
        assert refused.returncode == 1 and "no tar file Tekton reads" in refused.stderr
        imported = other.json("runs", "import", str(tar))
        assert imported["run_id"] == old and imported["status"] == "finished"
        assert imported["lessons"] >= 1 and sorted(imported["objects"]) == [
            f"{old}/result",
            f"{old}/source",
        ]
        assert other.run("runs", "events", old, "--json").stdout == old_events
        assert other.json("runs", "show", old) == platform.json("runs", "show", old)
        assert wait_for(lambda: rows_of(other, old) == rows_of(platform, old), 30)
        assert lessons_in_milvus(other, old) == lessons_in_milvus(platform, old)
        plan = (platform.home / "artifacts" / old / "diff.patch").read_text()
        assert (other.home / "artifacts" / old / "diff.patch").read_text() == plan
        clone = git_repo(tmp_path / "clone")
        fetched = other.run("runs", "fetch", old, "--repo", str(clone))
        assert fetched.returncode == 0, fetched.stderr  # its result branch came along
        again = other.run("runs", "import", str(tar))
        assert again.returncode == 1 and f"run {old} is already here" in again.stderr

    # a newer run, then a prune between the two: the older goes everywhere, nothing else
    time.sleep(4)
    newer = platform.run("run", "--goal", "Stay", "--to", "plan", "--json")
    assert newer.returncode == 0, newer.stderr
    new = json.loads(newer.stdout.splitlines()[0])["run_id"]
    assert wait_for(lambda: rows_of(platform, new) > 0 and lessons_in_milvus(platform, new), 30)
    old_end = json.loads(old_events.splitlines()[-1])["ts"]
    new_end = json.loads(newer.stdout.splitlines()[-1])["ts"]
    age = round(time.time() - (old_end + new_end) / 2)  # between the two ends
    dry = platform.json("runs", "prune", "--older-than", f"{age}s", "--dry-run")
    pruned = {run["run_id"]: run for run in dry["pruned"]}
    assert old in pruned and new not in pruned and waiting not in pruned
    assert pruned[old]["rows"] > 0 and pruned[old]["lessons"] >= 1
    assert pruned[old]["artifact_files"] >= 2 and len(pruned[old]["objects"]) == 2
    assert platform.run("runs", "show", old).returncode == 0  # a dry run removes nothing
    before = {
        "events": platform.run("runs", "events", new, "--json").stdout,
        "rows": rows_of(platform, new),
        "lessons": lessons_in_milvus(platform, new),
        "files": sorted(p.name for p in (platform.home / "artifacts" / new).iterdir()),
    }
    done = platform.run("runs", "prune", "--older-than", f"{age}s")
    assert done.returncode == 0 and f"removed {len(pruned)} runs" in done.stdout, done.stderr
    gone = platform.run("runs", "show", old)
    assert gone.returncode == 1 and f"no run {old}" in gone.stderr
    assert rows_of(platform, old) == 0 and lessons_in_milvus(platform, old) == 0
    assert not (platform.home / "artifacts" / old).exists()
    lost = platform.run("runs", "fetch", old, "--repo", str(repo))
    assert lost.returncode == 1
    after = {
        "events": platform.run("runs", "events", new, "--json").stdout,
        "rows": rows_of(platform, new),
        "lessons": lessons_in_milvus(platform, new),
        "files": sorted(p.name for p in (platform.home / "artifacts" / new).iterdir()),
    }
    assert after == before
    assert platform.json("runs", "show", waiting)["status"] == "awaiting approval"
    missing = platform.run("runs", "prune")
    assert missing.returncode == 2 and "needs --older-than" in missing.stderr
