"""Runs end to end: `tekton run` through the whole Diamond pipeline on the embedded stack."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tekton_cli.postgres import embedded_server
from tekton_common.artifacts import artifact_model
from tekton_common.catalog import get_ci
from tekton_common.stages import DIAMOND
from tekton_common.workspace import IDENTITY
from tests.e2e.test_fleet_lifecycle import Fleet, running
from tests.helpers import http_get, wait_for


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("runs") / "home"
    # spans reach the trace files quickly
    with running(
        home,
        TEKTON_SIMULATED_LATENCY_MS="20",
        OTEL_BSP_SCHEDULE_DELAY="100",
        # the sensitive tools, for the operator's `tekton tools call` (docs/tools.md)
        TEKTON_MCP_TOOLS="terma_run,engram_keep,numa_restart",
    ) as fleet:
        yield fleet


def events_of(fleet: Fleet, run_id: str) -> list[dict]:
    out = fleet.run("runs", "events", run_id, "--json")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def run_json(fleet: Fleet, *args: str) -> tuple[int, list[dict]]:
    done = fleet.run("run", *args, "--json")
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def test_whole_diamond_run_offline(platform: Fleet, tmp_path: Path) -> None:
    code, events = run_json(
        platform, "--goal", "Add rate limiting to the public API", "--output", str(tmp_path)
    )
    assert code == 0, events[-1]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "RunStarted.v1" and kinds[-1] == "RunFinished.v1"
    finished = [e["stage"] for e in events if e["type"] == "StageFinished.v1"]
    assert finished == list(DIAMOND)
    assert kinds.count("DebateTurn.v1") >= 4 * len(DIAMOND)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    run_id = events[0]["run_id"]
    assert events_of(platform, run_id) == events  # the stored log is what was shown live
    for event in (e for e in events if e["type"] == "ArtifactCreated.v1"):
        artifact_model(event["stage"]).model_validate(event["artifact"])
        kept = Path(event["files"][0])  # the service's own copy, under its artifacts root
        assert kept.parent == platform.home / "artifacts" / run_id
        local = tmp_path / run_id / kept.name  # the command line's copy (--output)
        assert local.read_text() == kept.read_text()
        if event["stage"] == "code":
            assert local.read_text() == event["artifact"]["diff"]
            meta = json.loads((local.parent / "diff.json").read_text())
            assert {"commands_run", "tests_executed", "risk_notes", "confidence"} <= set(meta)
        else:
            assert json.loads(local.read_text()) == event["artifact"]
    listed = json.loads(platform.run("runs", "list", "--json").stdout)
    assert any(r["run_id"] == run_id and r["status"] == "finished" for r in listed)
    artifacts = json.loads(platform.run("runs", "artifacts", run_id, "--json").stdout)
    assert [a["stage"] for a in artifacts] == list(DIAMOND)


def test_bounds_and_consensus_free(platform: Fleet, tmp_path: Path) -> None:
    code, events = run_json(
        platform,
        "--goal",
        "Tidy the logs",
        "--from",
        "code",
        "--to",
        "threat",
        "--consensus-free",
        "review",
        "--output",
        str(tmp_path),
    )
    assert code == 0
    assert [e["stage"] for e in events if e["type"] == "StageFinished.v1"] == [
        "code",
        "review",
        "threat",
    ]
    review_roles = {
        e["turn"]["role"] for e in events if e["type"] == "DebateTurn.v1" and e["stage"] == "review"
    }
    assert review_roles == {"proponent", "mediator"}
    bad = platform.run("run", "--goal", "x", "--from", "release", "--to", "plan")
    assert bad.returncode == 2 and "comes after" in bad.stderr
    typo = platform.run("run", "--goal", "x", "--from", "planing")
    assert typo.returncode == 2 and "unknown stage 'planing'" in typo.stderr


def test_dry_run_calls_nothing(platform: Fleet) -> None:
    before = platform.run("runs", "list", "--json").stdout
    dry = platform.run("run", "--goal", "x", "--dry-run", "--json")
    plan = json.loads(dry.stdout)
    assert [p["stage"] for p in plan] == list(DIAMOND)
    assert plan[0]["roles"]["skeptic"] == {"ci": "athena-ci", "model": "simulated"}
    assert platform.run("runs", "list", "--json").stdout == before


def test_blocked_stage_stops_the_run(platform: Fleet, tmp_path: Path) -> None:
    # every turn on an unreachable model: the debaters abstain, the plan is blocked
    code, events = run_json(
        platform, "--goal", "x", "--model", "openai:missing", "--output", str(tmp_path)
    )
    assert code == 1
    blocked = next(e for e in events if e["type"] == "StageBlocked.v1")
    assert blocked["stage"] == "plan" and "quorum impossible" in blocked["reason"]
    assert events[-1]["type"] == "RunFailed.v1" and "plan blocked" in events[-1]["reason"]
    assert not [e for e in events if e["type"] == "StageStarted.v1" and e["stage"] != "plan"]


def test_threshold_reaches_every_debate(platform: Fleet, tmp_path: Path) -> None:
    # the simulated skeptic never accepts with full confidence: a threshold of 1 is unmet
    args = ["--goal", "Cache the catalog", "--to", "plan", "--output", str(tmp_path)]
    code, events = run_json(platform, *args, "--threshold", "1", "--max-rounds", "1")
    assert events[0]["request"]["threshold"] == 1.0
    [blocked] = [e for e in events if e["type"] == "StageBlocked.v1"]
    assert code == 1 and "< 1.00" in blocked["reason"], blocked
    code, events = run_json(platform, *args, "--threshold", "0.5", "--max-rounds", "1")
    assert code == 0 and events[0]["request"]["threshold"] == 0.5
    bad = platform.run("run", *args, "--threshold", "0.2")
    assert bad.returncode == 2 and "threshold" in bad.stderr and ">= 0.5" in bad.stderr


def test_resume_after_the_coordinator_is_killed(platform: Fleet, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tekton_cli.main",
            "run",
            "--goal",
            "Resume me",
            "--output",
            str(tmp_path),
            "--json",
        ],
        env=platform.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if [e["type"] for e in events].count("StageFinished.v1") == 2:
            break
    run_id = events[0]["run_id"]
    stages_pid = json.loads((platform.home / "run" / "tekton-stages.json").read_text())["pid"]
    os.kill(stages_pid, signal.SIGKILL)  # the coordinator dies mid-run
    proc.kill()
    proc.wait()
    platform.up()  # the stages process again (unless the supervisor was quicker)
    # it resumes the interrupted run by itself
    watched = platform.run("runs", "watch", run_id, "--json")
    assert watched.returncode == 0, watched.stdout[-2000:]
    again = platform.run("run", "--resume", run_id)
    assert again.returncode == 1 and "has finished; nothing to resume" in again.stderr
    log = events_of(platform, run_id)
    assert [e["type"] for e in log].count("RunResumed.v1") == 1
    finished = [e["stage"] for e in log if e["type"] == "StageFinished.v1"]
    assert sorted(finished) == sorted(DIAMOND) and len(finished) == len(set(finished))
    created = [e["stage"] for e in log if e["type"] == "ArtifactCreated.v1"]
    assert len(created) == len(set(created)) == len(DIAMOND)
    # the command line died mid-run: its copy is made whole from the run's events
    copied = platform.run("runs", "artifacts", run_id, "--output", str(tmp_path), "--json")
    assert copied.returncode == 0, copied.stderr
    assert all(
        Path(f).parent == tmp_path / run_id for a in json.loads(copied.stdout) for f in a["files"]
    )
    kept = platform.home / "artifacts" / run_id
    assert sorted(p.name for p in kept.iterdir()) == sorted(
        p.name for p in (tmp_path / run_id).iterdir()
    )
    assert sorted(p.name for p in (tmp_path / run_id).iterdir()) == sorted(
        [
            "plan.json",
            "research.json",
            "backlog.json",
            "diff.patch",
            "diff.json",
            "review.json",
            "threat.json",
            "integration.json",
            "test_report.json",
            "release_report.json",
        ]
    )


def test_run_goes_on_when_the_command_line_leaves(platform: Fleet, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tekton_cli.main",
            "run",
            "--goal",
            "Keep going",
            "--output",
            str(tmp_path),
            "--json",
        ],
        env=platform.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = json.loads(proc.stdout.readline())["run_id"]
    proc.kill()
    proc.wait()
    watched = platform.run("runs", "watch", run_id)
    assert watched.returncode == 0 and "run finished" in watched.stdout
    # the service kept every artifact; the command line that left kept only what it saw
    assert (platform.home / "artifacts" / run_id / "release_report.json").exists()


async def _query(fleet: Fleet, sql: str, *args: object) -> list[dict]:
    dsn = json.loads((fleet.home / "run" / "postgres.json").read_text())["dsn"]
    conn = await asyncpg.connect(dsn)
    try:
        return [dict(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


def _recorded(fleet: Fleet, run_id: str, count: int) -> bool:
    rows = asyncio.run(_query(fleet, "SELECT count(*) AS n FROM events WHERE run_id = $1", run_id))
    return rows[0]["n"] == count


def test_history_in_postgresql_matches_the_run(platform: Fleet, tmp_path: Path) -> None:
    code, events = run_json(platform, "--goal", "Keep history", "--output", str(tmp_path))
    assert code == 0
    run_id = events[0]["run_id"]
    assert wait_for(lambda: _recorded(platform, run_id, len(events)), 15)
    listed = json.loads(platform.run("runs", "list", "--json").stdout)
    mine = next(r for r in listed if r["run_id"] == run_id)
    assert mine["source"] == "postgresql" and mine["status"] == "finished"
    assert mine["done"] == f"{len(DIAMOND)}/{len(DIAMOND)}"
    [run] = asyncio.run(_query(platform, "SELECT * FROM runs WHERE run_id = $1", run_id))
    assert run["status"] == "finished" and run["goal"] == "Keep history"
    assert run["tokens"] == events[-1]["tokens"]
    stages = asyncio.run(
        _query(
            platform,
            "SELECT stage, status FROM stages WHERE run_id = $1 ORDER BY started_at",
            run_id,
        )
    )
    assert [(s["stage"], s["status"]) for s in stages] == [(s, "approved") for s in DIAMOND]
    turns = asyncio.run(
        _query(platform, "SELECT count(*) AS n FROM turns WHERE run_id = $1", run_id)
    )
    assert turns[0]["n"] == sum(e["type"] == "DebateTurn.v1" for e in events)
    usage = asyncio.run(
        _query(
            platform,
            "SELECT sum(input_tokens + output_tokens) AS n FROM usage WHERE run_id = $1",
            run_id,
        )
    )
    assert usage[0]["n"] > 0
    artifacts = asyncio.run(
        _query(platform, "SELECT stage, content FROM artifacts WHERE run_id = $1", run_id)
    )
    for row in artifacts:  # PostgreSQL holds exactly what is on disk
        content = json.loads(row["content"])
        name = {"code": "diff.patch"}.get(row["stage"])
        if name:
            assert (tmp_path / run_id / name).read_text() == content["diff"]
        else:
            created = next(
                e
                for e in events
                if e["type"] == "ArtifactCreated.v1" and e["stage"] == row["stage"]
            )
            assert json.loads(Path(created["files"][0]).read_text()) == content


def test_database_outage_loses_no_history(platform: Fleet, tmp_path: Path) -> None:
    embedded_server(platform.home / "pg", cleanup_mode="stop").cleanup()  # PostgreSQL goes down
    try:
        code, events = run_json(platform, "--goal", "Survive the outage", "--output", str(tmp_path))
        assert code == 0  # runs do not need the database
    finally:
        platform.up()  # and it comes back
    run_id = events[0]["run_id"]
    assert wait_for(lambda: _recorded(platform, run_id, len(events)), 60)
    [run] = asyncio.run(_query(platform, "SELECT status FROM runs WHERE run_id = $1", run_id))
    assert run["status"] == "finished"


def progress(events: list[dict], step: str, stage: str | None = None) -> list[dict]:
    return [
        e
        for e in events
        if e["type"] == "StageProgress.v1"
        and e["step"] == step
        and (stage is None or e["stage"] == stage)
    ]


def test_lessons_of_run_one_are_recalled_in_run_two(platform: Fleet, tmp_path: Path) -> None:
    out = str(tmp_path)
    goal = "Migrate the billing ledger to double-entry bookkeeping"
    code, first = run_json(platform, "--goal", goal, "--to", "research", "--output", out)
    assert code == 0
    assert len(progress(first, "lesson kept")) == 2
    code, second = run_json(
        platform, "--goal", "Move billing to a double-entry ledger", "--to", "plan", "--output", out
    )
    assert code == 0
    [recalled] = progress(second, "recalled", "plan")
    assert recalled["lessons"][0]["run_id"] == first[0]["run_id"]  # the closest lesson
    assert all(x["stage"] == "plan" for x in recalled["lessons"])
    assert first[0]["run_id"] in recalled["detail"]
    status = platform.json("status")
    assert status["memory"]["reachable"] and status["memory"]["lessons"] >= 3
    assert status["memory"]["embedder"] in ("minilm", "hashing")


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **IDENTITY}
    command = ["git", "-C", str(repo), *args]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def git_repo(path: Path) -> Path:
    """A small Python package whose test passes, with its check in tekton.toml."""
    path.mkdir()
    (path / "limits.py").write_text("def rate_limit(client, per_minute):\n    return True\n")
    (path / "test_limits.py").write_text(
        "from limits import rate_limit\n\ndef test_allows():\n    assert rate_limit('c', 1)\n"
    )
    check = f"{sys.executable} -m pytest -q -p no:cacheprovider"
    (path / "tekton.toml").write_text(f'[checks]\ntest = "{check}"\n')
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    return path


def test_a_repository_run_applies_checks_and_brings_back_a_branch(
    platform: Fleet, tmp_path: Path
) -> None:
    repo = git_repo(tmp_path / "shop")
    (repo / "notes.md").write_text("uncommitted work travels too\n")
    out = str(tmp_path / "out")
    args = ["--goal", "Rate limit the shop API", "--repo", str(repo), "--output", out]
    done = platform.run("run", *args, "--from", "code", "--to", "code", "--json")
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, (events[-1:], done.stderr)
    started = events[0]["request"]
    assert started["workspace"]["name"] == f"{events[0]['run_id']}/source"
    assert "repo" not in started  # no path crosses the bus
    assert "chunks from" in progress(events, "indexed repository")[0]["detail"]
    [listed] = progress(events, "checks", "code")
    assert "test:" in listed["detail"] and "(tekton.toml)" in listed["detail"]
    [checked] = [e for e in events if e["type"] == "ChecksFinished.v1"]
    assert (
        [r["name"] for r in checked["base"]] == ["test"] == [r["name"] for r in checked["results"]]
    )
    result = checked["results"][0]
    assert result["exit_code"] == 0 and result["passed"] == 1 and result["sandbox"] == "bwrap"
    assert not checked.get("failing") and result["commit"] == checked["commit"]
    code_artifact = next(e for e in events if e["type"] == "ArtifactCreated.v1")["artifact"]
    assert code_artifact["tests_executed"] == [result["command"]]  # what ran, not a claim

    # the branch came back into the repository: one commit on what was packed
    run_id = events[0]["run_id"]
    assert f"branch tekton/{run_id} is in {repo}" in done.stderr
    branch = f"tekton/{run_id}"
    assert git(repo, "rev-list", "--count", f"main..{branch}") == "2"  # the packed tree, the change
    assert "simulated" in git(repo, "show", f"{branch}:TEKTON_SIMULATED_CHANGE.md").lower()
    assert git(repo, "show", f"{branch}:notes.md") == "uncommitted work travels too"
    patch = platform.run("runs", "patch", run_id)
    assert patch.returncode == 0 and "+++ b/TEKTON_SIMULATED_CHANGE.md" in patch.stdout

    # runs show: the change file by file, each check with its result
    state = platform.json("runs", "show", run_id)
    assert [f["path"] for f in state["files"]] == ["TEKTON_SIMULATED_CHANGE.md"]
    assert state["files"][0]["added"] > 0 and state["branch"] == branch
    assert (
        [c["name"] for c in state["checks"]]
        == ["test"]
        == [c["name"] for c in state["base_checks"]]
    )
    shown = platform.run("runs", "show", run_id).stdout
    assert "TEKTON_SIMULATED_CHANGE.md" in shown and "test `" in shown and " ok (1 passed," in shown


def tool(fleet: Fleet, name: str, **given: object) -> dict:
    done = fleet.run("tools", "call", name, "--input", json.dumps(given), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_specialists_tools_see_the_repository_memory_and_fleet(
    platform: Fleet, tmp_path: Path
) -> None:
    repo = git_repo(tmp_path / "shop")
    goal = ["--goal", "Rate limit the shop API", "--repo", str(repo)]
    code, events = run_json(platform, *goal, "--from", "code", "--to", "code")
    assert code == 0, events[-1:]
    run_id = events[0]["run_id"]
    hits = tool(platform, "athena_search", run_id=run_id, query="rate limit per minute")
    assert "limits.py" in {c["path"] for c in hits["output"]["chunks"]}
    nats = platform.env["TEKTON_NATS_PORT"]
    reach = f"socket.create_connection(('127.0.0.1', {nats}), 2)"
    command = f'ls; cat limits.py; python3 -c "import socket; {reach}" || echo no-network'
    ran = tool(platform, "terma_run", run_id=run_id, command=command)["output"]
    assert ran["tree"] == "result" and ran["exit_code"] == 0 and ran["sandbox"] == "bwrap"
    assert "TEKTON_SIMULATED_CHANGE.md" in ran["output"]  # the run's change applied
    assert "def rate_limit" in ran["output"] and "no-network" in ran["output"]
    text = "Put the limiter behind one function; measure before tuning it."
    kept = tool(platform, "engram_keep", stage="plan", goal="Rate limit", text=text)["output"]
    found = tool(platform, "engram_lessons", query="limiter behind one function", stage="plan")
    assert kept["run_id"] in {h["run_id"] for h in found["output"]["hits"]}
    measured = tool(platform, "sophia_metrics")["output"]
    assert any(t["requests"] > 0 for t in measured["traffic"])
    assert any(x["p95_ms"] is not None for x in measured["latency"])
    assert measured["tokens"] and measured["tokens"][-1]["tokens"] > 0
    # a restart asked of the supervisor, seen in Numa's fleet events
    restarted = tool(platform, "numa_restart", ci="hermes")["output"]
    assert restarted["restarting"] is True, restarted
    again = tool(platform, "numa_restart", ci="hermes")["output"]  # a model that loops
    assert again["restarting"] is False and "ask again after 60 s" in again["detail"]
    assert wait_for(
        lambda: "process.restarted hermes-ci" in tool(platform, "numa_events")["summary"], 60
    )
    assert wait_for(lambda: platform.run("tools", "call", "hermes_registry").returncode == 0, 60)


def test_a_change_that_never_applies_is_repaired_then_blocked(
    platform: Fleet, tmp_path: Path
) -> None:
    repo = git_repo(tmp_path / "shop")
    # the simulated diff adds this file: where it exists already, the diff cannot apply
    (repo / "TEKTON_SIMULATED_CHANGE.md").write_text("taken\n")
    args = ["--goal", "Rate limit", "--repo", str(repo), "--repair-attempts", "1"]
    code, events = run_json(platform, *args, "--from", "code", "--to", "code")
    assert code == 1
    repairs = [e for e in events if e["type"] == "RepairRequested.v1"]
    assert [r["attempt"] for r in repairs] == [2] and "already exists" in repairs[0]["reason"]
    assert len(progress(events, "change not applied", "code")) == 2
    [blocked] = [e for e in events if e["type"] == "StageBlocked.v1"]
    assert "after 2 attempts" in blocked["reason"] and "already exists" in blocked["reason"]

    missing = platform.run("run", "--goal", "x", "--repo", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not a folder" in missing.stderr
    plan = platform.run("run", "--goal", "x", "--repo", str(repo), "--dry-run")
    assert "checks: test:" in plan.stdout and "(tekton.toml)" in plan.stdout


def test_runs_go_on_without_milvus_and_say_so(platform: Fleet, tmp_path: Path) -> None:
    def pid(name: str) -> int:
        return json.loads((platform.home / "run" / f"{name}.json").read_text())["pid"]

    os.kill(pid("tekton-supervisor"), signal.SIGKILL)  # or it would bring Milvus back at once
    os.kill(pid("milvus"), signal.SIGKILL)
    try:
        code, events = run_json(
            platform, "--goal", "Work without memory", "--to", "plan", "--output", str(tmp_path)
        )
        assert code == 0, events[-1]
        [recalled] = progress(events, "recalled", "plan")
        assert recalled["detail"].startswith("memory unavailable, going on without it: Milvus at")
        assert progress(events, "lesson not kept", "plan")
        status = platform.json("status")
        assert status["memory"]["reachable"] is False
    finally:
        platform.up()  # brings Milvus and the supervisor back
    # the stages service finds Milvus again on its own, within its reconnect backoff
    assert wait_for(lambda: platform.json("status")["memory"]["reachable"], 60, 0.5)
    code, events = run_json(
        platform, "--goal", "Work with memory again", "--to", "plan", "--output", str(tmp_path)
    )
    assert code == 0
    assert progress(events, "lesson kept", "plan")


def _traced(fleet: Fleet, run_id: str) -> dict | None:
    shown = fleet.run("trace", run_id, "--json")
    if shown.returncode != 0:
        return None
    [root] = json.loads(shown.stdout)
    names = set()

    def walk(node: dict) -> None:
        names.add(node["name"])
        for child in node["children"]:
            walk(child)

    walk(root)
    return root if {"invoke_workflow run", "tekton run"} <= names else None


def test_tekton_trace_draws_the_run_across_processes(platform: Fleet, tmp_path: Path) -> None:
    code, events = run_json(
        platform, "--goal", "Trace me", "--to", "plan", "--output", str(tmp_path)
    )
    assert code == 0
    run_id = events[0]["run_id"]
    assert wait_for(lambda: _traced(platform, run_id), 20)
    root = _traced(platform, run_id)
    assert root is not None and root["name"] == "tekton run" and root["service"] == "tekton-cli"
    spans: list[dict] = []

    def walk(node: dict) -> None:
        spans.append(node)
        for child in node["children"]:
            assert child["parent_id"] == node["span_id"] and child["trace_id"] == node["trace_id"]
            walk(child)

    walk(root)
    services = {s["service"] for s in spans}
    assert {"tekton-cli", "tekton-stages", "rhetor-ci"} <= services
    assert len(services - {"tekton-cli", "tekton-stages", "rhetor-ci"}) >= 3  # the debaters
    chats = [s for s in spans if s["name"] == "chat simulated"]
    assert len(chats) >= 4 and all(
        c["attributes"]["gen_ai.conversation.id"] == run_id for c in chats
    )
    assert root["tokens"] == events[-1]["tokens"]  # the tree adds up to what the run used
    text = platform.run("trace", run_id).stdout
    assert "invoke_workflow stage (plan)" in text and "invoke_workflow debate (plan)" in text
    assert "└─ chat simulated  [" in text
    # and the metrics: debates by outcome on Rhetor, runs and latency on the stages service
    rhetor = get_ci("rhetor").component_port(platform.port_base)
    status, text = http_get(rhetor, "/metrics")
    assert status == 200 and 'tekton_debates_total{stage="plan",status="approved"}' in text
    assert 'tekton_model_tokens_total{ci="rhetor-ci"' not in text  # Rhetor itself asked no model
    status, text = http_get(platform.port_base + 91, "/metrics")
    assert "tekton_runs_active 0.0" in text
    assert 'tekton_request_duration_seconds_bucket{ci="tekton-stages",endpoint="plan"' in text
    missing = platform.run("trace", "no-such-run")
    assert missing.returncode == 1 and "no spans of run no-such-run" in missing.stderr
