"""Approval gates on the embedded stack: a gated stage's run pauses holding nothing,
and a person approves (the run goes on, the stage's debate held once), rejects (the
run ends with the reason) or edits (the person's artifact flows on); the same decision
twice is one, two different ones racing are one and a clear error; a paused run
survives the stages service being killed; decisions are rows in PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_fleet_lifecycle import Fleet, running
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


def test_reject_ends_the_run_with_the_reason(platform: Fleet) -> None:
    run_id = paused_run(platform, "plan")
    missing = platform.run("runs", "reject", run_id)
    assert missing.returncode == 2 and "a rejection gives its reason" in missing.stderr
    said = platform.run("runs", "reject", run_id, "--by", "bob", "--reason", "too vague")
    assert said.returncode == 0, said.stderr
    events = events_of(platform, run_id)
    assert kinds(events)[-3:] == ["DecisionRecorded.v1", "StageBlocked.v1", "RunFailed.v1"]
    assert events[-1]["reason"] == "plan rejected by bob: too vague"
    assert platform.json("runs", "show", run_id)["status"] == "failed"


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
