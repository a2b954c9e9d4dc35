"""The least-privilege NATS users of deploy/nats/auth.conf: a run goes through with every
process on its own user, and a CI cannot reach what is not its own."""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest

from tekton_cli import nats_auth
from tests.helpers import BIN, CIProc, Env, LoopbackServer, StagesProc, wait_for

PLAN_DEBATE = [
    "prometheus",
    "athena",
    "metis",
    "apollo",
]  # proponent, skeptic, pragmatist, mediator


def password(user: str) -> str:
    return f"pw-{user}"


@dataclass
class GuardedNats(LoopbackServer):
    """nats-server with JetStream and the generated users; its log kept for inspection."""

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.store / "nats.log"

    def command(self) -> list[str]:
        self.store.mkdir(parents=True, exist_ok=True)
        config = self.store / "nats.conf"
        config.write_text(
            f"listen: 127.0.0.1:{self.port}\n"
            f"jetstream {{ store_dir: {json.dumps(str(self.store / 'js'))} }}\n"
            + nats_auth.render()
        )
        return [str(BIN / "nats-server"), "-c", str(config), "-l", str(self.log)]

    def start(self, timeout: float = 30) -> GuardedNats:
        env = {nats_auth.password_variable(u): password(u) for u in nats_auth.users()}
        self.proc = subprocess.Popen(
            self.command(),
            env={"PATH": "/usr/bin:/bin", **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(self.serving, timeout)
        return self


def as_user(user: str) -> dict[str, str]:
    return {"TEKTON_NATS_USER": user, "TEKTON_NATS_PASSWORD": password(user)}


@pytest.fixture
def guarded(tmp_path: Path):
    server = GuardedNats(tmp_path / "nats").start()
    yield server
    server.stop()


def test_a_run_goes_through_with_one_user_per_process(tmp_path: Path, guarded: GuardedNats) -> None:
    env = Env(
        home=tmp_path / "home",
        nats_url=guarded.url,
        extra={"TEKTON_MILVUS_URI": "http://127.0.0.1:1"},  # no memory: said, not needed
    )
    procs = [CIProc(env, ci, extra_env=as_user(f"{ci}-ci")) for ci in PLAN_DEBATE] + [
        CIProc(env, "rhetor", module="tekton_rhetor", extra_env=as_user("rhetor-ci"))
    ]
    stages = StagesProc(env, as_user("tekton-stages"))
    try:
        for proc in procs:
            proc.wait_ready()
        stages.wait_ready()
        operator = Env(
            home=env.home, nats_url=guarded.url, extra={**env.extra, **as_user("tekton")}
        )
        operator.port_base, operator.ci_port_base = env.port_base, env.ci_port_base
        done = operator.tekton(
            "run",
            "--goal",
            "Least privilege",
            "--to",
            "plan",
            "--output",
            str(tmp_path),
            "--json",
            timeout=120,
        )
        events = [json.loads(line) for line in done.stdout.splitlines()]
        assert done.returncode == 0 and events[-1]["type"] == "RunFinished.v1", (
            done.stdout[-3000:] + done.stderr
        )
        registered = operator.tekton("status", "--json")
        cis = {c["ci"]: c for c in json.loads(registered.stdout)["cis"]}
        assert all(cis[f"{ci}-ci"]["registered"] for ci in PLAN_DEBATE)  # the registry KV works
    finally:
        for proc in procs:
            proc.terminate()
        stages.terminate()
    assert "violation" not in guarded.log.read_text().lower()


async def _violations(url: str) -> list[str]:
    seen: list[str] = []

    async def error(exc: Exception) -> None:
        seen.append(str(exc))

    nc = await nats.connect(
        url,
        user="apollo-ci",
        password=password("apollo-ci"),
        error_cb=error,
        inbox_prefix="_INBOX.apollo-ci",
    )
    try:
        await nc.publish("tekton.ci.athena.chat", b"not yours")  # another CI's subject
        await nc.subscribe("tekton.runs.>")  # the run stream is the stages service's
        await nc.publish("tekton.usage.athena", b"{}")  # another CI's usage
        await nc.publish("tekton.ci.budget.tool.usage.athena-ci", b"{}")  # a call as athena
        await nc.publish("tekton.ci.budget.tool.usage.operator", b"{}")  # or as the operator
        await nc.publish("tekton.ci.budget.tool.usage.apollo-ci", b"{}")  # as itself: allowed
        await nc.flush()
        await asyncio.sleep(0.5)
    finally:
        await nc.close()
    return seen


def test_a_ci_cannot_reach_what_is_not_its_own(guarded: GuardedNats) -> None:
    seen = asyncio.run(_violations(guarded.url))
    text = " ".join(seen).lower()
    assert "Publish Violation" in guarded.log.read_text()  # what the run test looks for
    assert 'violation for publish to "tekton.ci.athena.chat"' in text
    assert 'violation for subscription to "tekton.runs.>"' in text
    assert 'violation for publish to "tekton.usage.athena"' in text
    assert 'violation for publish to "tekton.ci.budget.tool.usage.athena-ci"' in text
    assert 'violation for publish to "tekton.ci.budget.tool.usage.operator"' in text
    assert "tekton.ci.budget.tool.usage.apollo-ci" not in text
