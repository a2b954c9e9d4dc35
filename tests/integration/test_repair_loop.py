"""Test-driven repair with a model scripted through the real Anthropic SDK (against the
fake API): the code stage's CIs and Rhetor on Claude, the stages service on its own
TEKTON_HOME, a small Python package whose test fails, its check in tekton.toml.

- the fixing diff: the checks pass, the branch is fetched back into the repository;
- a wrong diff first: its failing output reaches the code stage, repaired on attempt 2;
- a diff that never fixes it: blocked with the real failure after the attempts.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tekton_cli import repos
from tekton_common.client import Tekton
from tekton_common.contract.codec import make
from tekton_common.contract.events import TERMINAL, ChecksFinished, RepairRequested, RunFinished
from tekton_common.contract.runs import RunRequest, new_run_id
from tekton_common.settings import load_settings
from tekton_common.workspace import IDENTITY
from tests.fakes.anthropic_server import FakeAnthropic
from tests.helpers import CIProc, Env, NatsServer, StagesProc, free_port, tcp_open, wait_for

KEY = "sk-ant-repair-loop-secret"
CODE_CIS = ("synthesis", "ergon", "hephaestus", "apollo")
WRONG = "return a * b"
RIGHT = "return a + b"


def diff(line: str) -> str:
    return (
        "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n"
        f"@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    {line}\n"
    )


class Model:
    """The scripted model: debaters accept; the mediator's change is the next diff of
    `diffs` each time the code stage asks anew (the last one repeats)."""

    def __init__(self) -> None:
        self.diffs: list[str] = [RIGHT]
        self.asked = 0
        self.prompts: list[str] = []

    def __call__(self, body: dict[str, Any]) -> str:
        schema = body.get("output_config", {}).get("format", {}).get("schema", {})
        props = schema.get("properties", {})
        text = json.dumps(body["messages"])
        if "vote" in props:
            return json.dumps({"position": "ship it", "self_confidence": 0.9, "vote": "accept"})
        if "artifact" not in props:
            return "a plain reply"
        if "failed validation" not in text:  # a new ask, not the mediator's own repair
            self.asked += 1
            self.prompts.append(text)
        line = self.diffs[min(self.asked, len(self.diffs)) - 1]
        artifact = {
            "diff": diff(line),
            "summary": f"add adds ({line})",
            "files_changed": ["calc.py"],
            "commands_run": ["I ran every test, trust me"],
            "tests_executed": ["all of them"],
            "risk_notes": [],
            "confidence": 0.9,
        }
        outcome = {"artifact": artifact, "status": "approved", "rationale": "r", "confidence": 0.9}
        return json.dumps(outcome)


class Stack:
    """The scripted model, the CIs of the code stage and Rhetor, and the stages service
    on a home of its own (nothing it reads is the caller's disk)."""

    def __init__(self, root: Path, server: NatsServer) -> None:
        self.fake = FakeAnthropic().start()
        self.model = Model()
        self.fake.responder = self.model
        extra = {
            "ANTHROPIC_API_KEY": KEY,
            "ANTHROPIC_BASE_URL": self.fake.url,
            "TEKTON_MILVUS_URI": "http://127.0.0.1:1",  # memory unreachable: said, not fatal
            "TEKTON_EMBEDDER": "hashing",
            "TEKTON_HEARTBEAT_INTERVAL": "0.5",
        }
        cis_env = Env(home=root / "cis", nats_url=server.url, extra=extra)
        self.procs = [CIProc(cis_env, ci) for ci in CODE_CIS]
        self.procs.append(CIProc(cis_env, "rhetor", module="tekton_rhetor"))
        for proc in self.procs:
            proc.wait_ready()
        self.stages_env = Env(home=root / "stages", nats_url=server.url, extra=extra)
        self.stages = StagesProc(self.stages_env).wait_ready()
        self.logs = [p.log for p in self.procs]
        self.cli = Env(home=root / "cli", nats_url=server.url, extra={})

    def restart_stages(self) -> None:
        """Kill the stages service outright and start another on the same home."""
        self.logs.append(self.stages.log)
        self.stages.proc.kill()
        self.stages.proc.wait()
        self.stages = StagesProc(self.stages_env).wait_ready()

    def stop(self) -> None:
        self.stages.terminate()
        for proc in self.procs:
            proc.terminate()
        self.fake.stop()
        for log in [self.stages.log, *self.logs]:
            assert KEY not in log.read_text()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, nats_server: NatsServer) -> Iterator[Stack]:
    started = Stack(tmp_path_factory.mktemp("repair"), nats_server)
    yield started
    started.stop()


def project(root: Path, check_first: str = "") -> Path:
    repo = root / "calc"
    repo.mkdir()
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (repo / "test_calc.py").write_text(
        "from calc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    check = f"{check_first}{sys.executable} -m pytest -q -p no:cacheprovider"
    (repo / "tekton.toml").write_text(f'[checks]\ntest = "{check}"\n')
    env = {**IDENTITY, "PATH": "/usr/bin:/bin", "HOME": str(root)}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)
    return repo


async def run(
    env: Env,
    repo: Path | None,
    attempts: int,
    run_id: str | None = None,
    url: str | None = None,
) -> tuple[list[Any], str | None]:
    """Pack and send `repo` (or name the remote `url`), run the code stage on it; the
    events, and the branch fetched back into `repo` when the run finished."""
    settings = load_settings(environ=env.vars(), config_file=env.home / "none.toml")
    run_id = run_id or new_run_id()
    events: list[Any] = []
    branch = None
    async with Tekton.connect(settings) as tekton:
        ref = await tekton.upload_workspace(repo, run_id, 10**8) if repo else None
        request = make(
            RunRequest,
            goal="make test_add pass",
            run_id=run_id,
            from_stage="code",
            to_stage="code",
            workspace=ref,
            repo_url=url,
            repair_attempts=attempts,
            max_rounds=1,
        )
        await tekton.start_run(request)
        async for event, _ in tekton.follow(run_id, idle=120):
            events.append(event)
            if isinstance(event, TERMINAL):
                break
        if isinstance(events[-1], RunFinished) and repo is not None:
            branch = await repos.fetch(tekton, run_id, repo)
    return events, branch


def git_show(repo: Path, what: str) -> str:
    command = ["git", "-C", str(repo), "show", what]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def checks(events: list[Any]) -> list[ChecksFinished]:
    return [e for e in events if isinstance(e, ChecksFinished)]


async def test_the_fixing_diff_passes_and_its_branch_comes_back(stack, tmp_path: Path) -> None:
    model, env = stack.model, stack.cli
    model.diffs, model.asked = [RIGHT], 0
    repo = project(tmp_path)
    events, branch = await run(env, repo, attempts=2)
    assert isinstance(events[-1], RunFinished), events[-3:]
    [checked] = checks(events)
    assert [r.ok for r in checked.base] == [False]  # the test failed before the change
    assert [r.ok for r in checked.results] == [True] and checked.results[0].passed == 1
    artifact = next(e.artifact for e in events if type(e).__name__ == "ArtifactCreated")
    assert "trust me" not in json.dumps(artifact)  # what ran, not what the model claimed
    assert artifact["tests_executed"] == [checked.results[0].command]
    shown = git_show(repo, f"{branch}:calc.py")
    assert RIGHT in shown


async def test_a_wrong_diff_is_repaired_on_the_second_attempt(stack, tmp_path: Path) -> None:
    model, env = stack.model, stack.cli
    model.diffs, model.asked, model.prompts = [WRONG, RIGHT], 0, []
    events, _ = await run(env, project(tmp_path), attempts=2)
    assert isinstance(events[-1], RunFinished), events[-3:]
    first, second = checks(events)
    assert not first.results[0].ok and first.failing == ["test"]
    assert second.results[0].ok and second.attempt == 2
    [repair] = [e for e in events if isinstance(e, RepairRequested)]
    assert "assert 6 == 5" in repair.reason  # pytest's own output, from the sandbox
    assert "assert 6 == 5" in model.prompts[1]  # and it reached the code stage's model


async def test_a_diff_that_never_fixes_it_is_blocked_with_the_real_failure(
    stack, tmp_path: Path
) -> None:
    model, env = stack.model, stack.cli
    model.diffs, model.asked = [WRONG], 0
    events, _ = await run(env, project(tmp_path), attempts=1)
    assert type(events[-1]).__name__ == "RunFailed"
    assert len(checks(events)) == 2
    assert "after 2 attempts" in events[-1].reason and "assert 6 == 5" in events[-1].reason


async def test_the_stages_service_killed_mid_check_resumes_and_checks_again(
    stack: Stack, tmp_path: Path
) -> None:
    stack.model.diffs, stack.model.asked = [RIGHT], 0
    repo = project(tmp_path, check_first="touch checking && sleep 2 && ")
    run_id = new_run_id()
    checking = stack.stages_env.home / "workspaces" / "runs" / run_id / "attempt-1" / "checking"

    async def kill_when_checking() -> None:
        for _ in range(600):
            if await asyncio.to_thread(checking.exists):
                await asyncio.to_thread(stack.restart_stages)
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the check never started")

    killer = asyncio.create_task(kill_when_checking())
    events, branch = await run(stack.cli, repo, attempts=2, run_id=run_id)
    await killer
    assert isinstance(events[-1], RunFinished), events[-3:]
    assert any(type(e).__name__ == "RunResumed" for e in events)
    # the check ran again after the resume, to the end, and passed
    [checked] = checks(events)
    assert checked.results[0].ok and branch == f"tekton/{run_id}"


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[int]:
    """A real git daemon on loopback serving tmp_path/calc; its port."""
    project(tmp_path)
    port = free_port()
    command = ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={tmp_path}"]
    command += ["--listen=127.0.0.1", f"--port={port}", str(tmp_path)]
    daemon = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: tcp_open(port), 10)
    yield port
    daemon.terminate()
    daemon.wait(10)


async def test_a_remote_repository_is_cloned_and_checked(
    stack: Stack, git_daemon: int, tmp_path: Path
) -> None:
    stack.model.diffs, stack.model.asked = [RIGHT], 0
    run_id = new_run_id()
    url = f"git://127.0.0.1:{git_daemon}/calc"
    events, _ = await run(stack.cli, None, attempts=2, run_id=run_id, url=url)
    assert isinstance(events[-1], RunFinished), events[-3:]
    assert "cloning repository" in [getattr(e, "step", None) for e in events]
    [checked] = checks(events)
    assert checked.results[0].ok and events[-1].branch == f"tekton/{run_id}"
    assert events[-1].result is not None and events[-1].result.name == f"{run_id}/result"
