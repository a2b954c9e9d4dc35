"""A run made again, read from its log: the request a retry changes, the stage it runs
again and why it was blocked, what a fork reuses (and refuses to), what a run spent;
and two runs compared stage by stage."""

from __future__ import annotations

import msgspec
import pytest

from tekton_common.contract.debates import Position, TurnRecord
from tekton_common.contract.events import (
    ArtifactCreated,
    DebateTurn,
    RunFailed,
    RunFinished,
    RunResumed,
    RunStarted,
    StageBlocked,
    StageFinished,
    StageStarted,
)
from tekton_common.contract.runs import ForkRequest, RetryRequest, RunRequest
from tekton_common.errors import ProtocolError
from tekton_common.rundiff import compare, json_changes
from tekton_stages import reruns

REQUEST = RunRequest(goal="Ship it", run_id="r1", to_stage="research", approve=["plan"])


def started(run_id: str = "r1", **extra: object) -> RunStarted:
    return RunStarted(
        run_id=run_id,
        seq=1,
        ts=10.0,
        goal="Ship it",
        stages=["plan", "research"],
        output="o",
        request=msgspec.to_builtins(msgspec.structs.replace(REQUEST, run_id=run_id)),
        **extra,  # type: ignore[arg-type]
    )


def turn(stage: str, role: str, vote: str, rnd: int = 1, tokens: int = 10) -> DebateTurn:
    record = TurnRecord(
        round=rnd,
        role=role,
        ci="athena-ci",
        attempts=1,
        latency_s=0.1,
        started_at=0.0,
        position=Position(position="p", vote=vote, self_confidence=0.8),
        model="simulated",
        input_tokens=tokens,
        cost_usd=0.001,
    )
    return DebateTurn(run_id="r1", stage=stage, debate_id=f"d-{stage}", turn=record)


def made(stage: str, artifact: dict, run_id: str = "r1", **extra: object) -> ArtifactCreated:
    return ArtifactCreated(
        run_id=run_id,
        stage=stage,
        name=f"{stage}.json",
        files=[],
        artifact=artifact,
        **extra,  # type: ignore[arg-type]
    )


def failed(ts: float = 40.0) -> RunFailed:
    return RunFailed(
        run_id="r1", ts=ts, reason="research blocked: thin", duration_s=1, tokens=0, cost_usd=0
    )


def test_a_retry_runs_the_blocked_stage_again_told_why_with_what_it_changes() -> None:
    events = [
        started(),
        made("plan", {"steps": [1]}),
        turn("research", "skeptic", "reject"),
        StageBlocked(run_id="r1", stage="research", reason="rejected by al: no sources"),
        failed(),
    ]
    ask = RetryRequest(run_id="r1", model="local", threshold=0.9)
    stage, request, why = reruns.retried(events, ask, ["research"])
    assert (stage, why) == ("research", "rejected by al: no sources")
    assert (request.model, request.threshold, request.max_rounds) == ("local", 0.9, 2)
    assert request.goal == "Ship it" and request.approve == ["plan"]
    # the request a later resume reads is the retry's, not RunStarted's
    resumed = RunResumed(
        run_id="r1",
        done=["plan"],
        remaining=["research"],
        retry=stage,
        request=msgspec.to_builtins(request),
    )
    assert reruns.request_of([*events, resumed]).model == "local"
    assert reruns.request_of(events).model is None
    with pytest.raises(ProtocolError, match="stopped at research, not plan"):
        reruns.retried(events, RetryRequest(run_id="r1", stage="plan"), ["research"])
    with pytest.raises(ProtocolError, match="has not failed"):
        reruns.retried(events[:-1], ask, ["research"])
    assert reruns.spent(events) == (10, 0.001, 30.0)


def test_a_fork_reuses_the_stages_before_its_first_and_refuses_what_is_missing() -> None:
    source = [started(), made("plan", {"steps": [1]}), made("research", {"found": "x"})]
    request, stages, reused = reruns.forked(
        source, ForkRequest(fork_of="r1", from_stage="research", run_id="f1", max_rounds=3)
    )
    assert stages == ["research"] and reused == {"plan": {"steps": [1]}}
    assert (request.run_id, request.from_stage, request.max_rounds) == ("f1", "research", 3)
    assert request.approve == ["plan"]  # the source's gates, unless the fork says
    _, _, _ = reruns.forked(source, ForkRequest(fork_of="r1", from_stage="plan", run_id="f2"))
    no_gates, _, _ = reruns.forked(
        source, ForkRequest(fork_of="r1", from_stage="plan", run_id="f3", approve=[])
    )
    assert no_gates.approve == []
    with pytest.raises(ProtocolError, match="has no plan artifact to reuse"):
        reruns.forked(source[:1], ForkRequest(fork_of="r1", from_stage="research", run_id="f4"))


def test_json_changes_name_each_difference_by_its_path() -> None:
    a = {"steps": ["a", "b"], "title": "x", "gone": 1}
    b = {"steps": ["a", "c", "d"], "title": "x", "new": True}
    assert [(c.path, c.kind, c.a, c.b) for c in json_changes(a, b)] == [
        ("steps[1]", "changed", "b", "c"),
        ("steps[2]", "added", None, "d"),
        ("gone", "removed", 1, None),
        ("new", "added", None, True),
    ]
    assert json_changes(a, a) == []


def test_two_runs_compared_stage_by_stage() -> None:
    plan = {"steps": ["one"]}
    one = [
        started("r1"),
        StageStarted(run_id="r1", stage="plan", debate_id="d1"),
        turn("plan", "proponent", "accept"),
        turn("plan", "skeptic", "revise", rnd=2),
        made("plan", plan),
        StageFinished(
            run_id="r1",
            stage="plan",
            status="approved",
            tokens=20,
            cost_usd=0.002,
            duration_s=1.5,
            confidence=0.8,
        ),
        StageStarted(run_id="r1", stage="code", debate_id="d2"),
        made("code", {"diff": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n", "summary": "s"}),
        RunFinished(
            run_id="r1", artifacts=["plan"], output="o", duration_s=3, tokens=20, cost_usd=0.0
        ),
    ]
    two = [
        started("r2", fork_of="r1", reused=["plan"]),
        made("plan", plan, run_id="r2", reused_from="r1"),
        StageStarted(run_id="r2", stage="code", debate_id="d3"),
        made(
            "code", {"diff": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+c\n", "summary": "s"}, run_id="r2"
        ),
        RunFinished(
            run_id="r2", artifacts=["plan"], output="o", duration_s=2, tokens=0, cost_usd=0.0
        ),
    ]
    found = compare(one, two)
    assert (found.a.run_id, found.b.run_id, found.b.fork_of) == ("r1", "r2", "r1")
    assert [s.stage for s in found.stages] == ["plan", "code"]
    plan_diff, code_diff = found.stages
    assert plan_diff.same_artifact and plan_diff.changes == []
    assert plan_diff.a.status == "approved" and plan_diff.a.tokens == 20
    assert plan_diff.a.votes == {"skeptic": "revise"}  # the last round's
    assert (plan_diff.b.status, plan_diff.b.reused_from, plan_diff.b.tokens) == ("reused", "r1", 0)
    assert [c.path for c in code_diff.changes] == ["diff"]
    assert code_diff.diff_of_diffs is not None
    assert "--- r1/diff.patch" in code_diff.diff_of_diffs
    assert "-+b" in code_diff.diff_of_diffs and "++c" in code_diff.diff_of_diffs
