"""One run is one trace in an OTLP backend: the command line, the coordinator, a stage,
Rhetor, the debaters and every model call, with correct parent links."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_fleet_lifecycle import Fleet
from tests.fakes.otlp_receiver import OtlpReceiver

KEY = "sk-ant-never-shown-0123456789"


def test_one_run_is_one_trace_over_otlp(tmp_path: Path, otlp: OtlpReceiver) -> None:
    fleet = Fleet(tmp_path / "home")
    fleet.env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.grpc_endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            # a key in every process's environment (the model stays simulated): it must
            # not reach any log, span, event or artifact
            "ANTHROPIC_API_KEY": KEY,
            "TEKTON_MODEL": "simulated",
        }
    )
    try:
        fleet.up()
        done = fleet.run(
            "run", "--goal", "Trace me", "--to", "plan", "--output", str(tmp_path), "--json"
        )
        assert done.returncode == 0, done.stdout[-2000:]
        run_id = json.loads(done.stdout.splitlines()[0])["run_id"]

        def complete(spans: list[dict]) -> bool:
            names = {s["name"] for s in spans}
            return {"tekton run", "invoke_workflow run", "invoke_workflow debate"} <= names

        spans = otlp.wait_for(complete, 30)
        events = fleet.run("runs", "events", run_id, "--json").stdout
        status = fleet.run("status", "--json").stdout
    finally:
        fleet.run("down", "--grace", "3")
    [root] = [s for s in spans if s["name"] == "tekton run"]
    mine = [s for s in spans if s["trace_id"] == root["trace_id"]]
    by_id = {s["span_id"]: s for s in mine}
    assert [s for s in mine if s["parent_id"] is None] == [root]
    assert all(s["parent_id"] in by_id for s in mine if s is not root)  # no broken links

    def parent(span: dict) -> dict:
        return by_id[span["parent_id"]]

    def ancestors(span: dict) -> list[str]:
        chain = []
        while span["parent_id"]:
            span = parent(span)
            chain.append(span["name"])
        return chain

    [run] = [s for s in mine if s["name"] == "invoke_workflow run"]
    [stage] = [s for s in mine if s["name"] == "invoke_workflow stage"]
    [debate] = [s for s in mine if s["name"] == "invoke_workflow debate"]
    assert (
        run["service"] == stage["service"] == "tekton-stages" and debate["service"] == "rhetor-ci"
    )
    assert run["attributes"]["tekton.run_id"] == run_id == root["attributes"]["tekton.run_id"]
    assert "invoke_workflow run" in ancestors(stage) and "invoke_workflow stage" in ancestors(
        debate
    )
    chats = [s for s in mine if s["name"] == "chat simulated"]
    debaters = {c["service"] for c in chats}
    assert len(debaters) >= 3 and "rhetor-ci" not in debaters
    for chat in chats:
        assert parent(chat)["name"].startswith("invoke_agent ")
        assert "invoke_workflow debate" in ancestors(chat)
        assert chat["attributes"]["gen_ai.conversation.id"] == run_id
        assert chat["attributes"]["gen_ai.usage.input_tokens"] > 0
    turns = [s for s in mine if s["name"].startswith("debate_turn ")]
    assert {t["attributes"]["tekton.debate.role"] for t in turns} >= {
        "proponent",
        "skeptic",
        "pragmatist",
        "mediator",
    }
    assert stage["attributes"]["tekton.tokens"] == sum(
        c["attributes"]["gen_ai.usage.input_tokens"] + c["attributes"]["gen_ai.usage.output_tokens"]
        for c in chats
    )
    assert not list((fleet.home / "traces").glob("*.jsonl"))  # OTLP set: no local files
    searched = [done.stdout, done.stderr, events, status, json.dumps(spans)]
    searched += [p.read_text(errors="replace") for p in (fleet.home / "logs").glob("*.log")]
    searched += [p.read_text() for p in tmp_path.glob(f"{run_id}/*")]
    assert len(searched) > 25 and not [text for text in searched if KEY in text]
