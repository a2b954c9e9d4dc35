"""The contract as code and as text agree: subjects and event names in the contract
(docs/ARCHITECTURE.md, the copy of ../shared/ARCHITECTURE.md) are the code's, both ways;
docs/contract.md is what the Structs generate; old events still decode."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tekton_common.contract.events import RUN_EVENTS, ArtifactCreated, RunStarted, read_run_event
from tekton_common.contract.messages import markdown
from tekton_common.subjects import CONTRACT_SUBJECTS, OWN_SUBJECTS

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "ARCHITECTURE.md"
SHARED = ROOT.parent / "shared" / "ARCHITECTURE.md"
#: in the contract, built by issues still open (each leaves this set when it lands)
PENDING_SUBJECTS: set[str] = set()
PENDING_EVENTS: set[str] = set()


def _template(subject: str) -> str:
    return re.sub(r"<([a-z_]+)>", r"{\1}", subject)


def _matches(template: str, subject: str) -> bool:
    pattern = re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
    pattern = re.sub(r"\{[a-z_]+\}", r"[A-Za-z0-9_-]+", pattern)
    return re.fullmatch(pattern, subject) is not None


def documented_subjects() -> set[str]:
    text = CONTRACT.read_text()
    found: set[str] = set()
    for raw in re.findall(r"`(tekton\.[A-Za-z0-9_.<>]+)`", text):
        subject = _template(raw)
        if subject.endswith(".toml"):  # the configuration file, not a subject
            continue
        if subject == "tekton.ci.{name}":  # the group; its endpoints are listed by name
            found |= {f"{subject}.chat", f"{subject}.stream", f"{subject}.info"}
            continue
        known = [t for t in (*CONTRACT_SUBJECTS, *PENDING_SUBJECTS) if _matches(t, subject)]
        found.add(known[0] if known else subject)  # a concrete example counts as its template
    return found


def documented_events() -> set[str]:
    # the run events are listed in "Stages and runs": "Events: RunStarted, ..."
    paragraph = CONTRACT.read_text().split("Events: RunStarted", 1)[1].split("\n\n", 1)[0]
    paragraph = "RunStarted" + paragraph
    return set(
        re.findall(r"\b((?:Run|Stage|Debate|Artifact|Checks|Repair|Decision)[A-Z]\w+)", paragraph)
    )


def test_the_copy_is_the_contract() -> None:
    if not SHARED.exists():
        pytest.skip("../shared/ARCHITECTURE.md is not beside this checkout")
    assert CONTRACT.read_text() == SHARED.read_text(), "docs/ARCHITECTURE.md is out of date"


def test_subjects_agree_both_ways() -> None:
    documented = documented_subjects()
    assert documented == set(CONTRACT_SUBJECTS) | PENDING_SUBJECTS
    assert not PENDING_SUBJECTS & set(CONTRACT_SUBJECTS)  # built: leaves PENDING
    assert not set(OWN_SUBJECTS) & documented


def test_event_names_agree_both_ways() -> None:
    code = {kind.__name__ for kind in RUN_EVENTS}
    assert documented_events() == code | PENDING_EVENTS
    assert not PENDING_EVENTS & code


def test_docs_contract_is_generated_from_the_structs() -> None:
    assert (ROOT / "docs" / "contract.md").read_text() == markdown(), (
        "run: tekton schema --markdown > docs/contract.md"
    )


def test_events_stored_by_earlier_versions_still_decode() -> None:
    # a RunStarted of the first version: the request had an output folder
    old = (
        b'{"type":"RunStarted.v1","run_id":"abc","seq":1,"ts":1.5,"goal":"g",'
        b'"stages":["plan"],"output":"/srv/artifacts/abc",'
        b'"request":{"goal":"g","run_id":"abc","output":"/tmp/x","max_rounds":2}}'
    )
    started = read_run_event(old)
    assert isinstance(started, RunStarted) and started.request["output"] == "/tmp/x"
    made = read_run_event(
        b'{"seq":4,"ts":2.0,"run_id":"abc","stage":"plan","name":"plan.json",'
        b'"files":["/a/plan.json"],"artifact":{"goals":["x"]},"type":"ArtifactCreated.v1"}'
    )
    assert isinstance(made, ArtifactCreated) and made.artifact == {"goals": ["x"]}
    # a type from a later version is skipped, not mistaken for another
    assert read_run_event(b'{"type":"RunStarted.v9","run_id":"abc","seq":1,"ts":0}') is None
