"""The local model's parts that need no server: seats, the grammar's narrowed schema,
the model catalog and its sha256 check, and which settings make `up` serve the model."""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec
import pytest

from tekton_cli.fleet import local_wanted
from tekton_common.contract.debates import ROLES, PositionReply, reply_schema
from tekton_common.contract.runs import RunRequest
from tekton_common.contract.seats import MAX_SEATS, Seat, overlay, parse_seat, seats_for
from tekton_common.errors import ConfigError
from tekton_common.providers.grammar import narrowed
from tekton_common.providers.local import CATALOG, Served, served, verify
from tekton_common.providers.models import provider_kind
from tekton_common.settings import load_settings
from tekton_common.stages import STAGES


def test_seat_grammar() -> None:
    assert parse_seat("code:skeptic=athena@local") == Seat("skeptic", "athena-ci", "local", "code")
    assert parse_seat("mediator=apollo@premium") == Seat("mediator", "apollo-ci", "premium")
    assert parse_seat("skeptic=@local:smollm2-135m") == Seat("skeptic", None, "local:smollm2-135m")
    assert str(parse_seat("code:skeptic=Athena-CI@local")) == "code:skeptic=athena-ci@local"
    assert parse_seat("plan:skeptic=human") == Seat("skeptic", "human", None, "plan")
    for bad, why in [
        ("skeptic=human@local", "a person's seat takes no model"),
        ("skeptic", "expected"),
        ("judge=apollo", "unknown role"),
        ("deploy:skeptic=apollo", "unknown stage"),
        ("skeptic=nobody", "unknown CI"),
        ("skeptic=", "name a CI"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_seat(bad)


def test_a_stage_seat_wins_over_a_general_one_and_later_over_earlier() -> None:
    seats = ["skeptic=nous@local", "code:skeptic=athena", "mediator=@premium", "mediator=@legacy"]
    assert seats_for(seats, "code") == (
        {"skeptic": "athena-ci"},
        {"skeptic": "local", "mediator": "legacy"},
    )
    assert seats_for(seats, "plan") == (
        {"skeptic": "nous-ci"},
        {"skeptic": "local", "mediator": "legacy"},
    )


def test_a_layer_of_seats_laid_over_another_wins_for_what_it_says() -> None:
    saved = ["research:skeptic=telos@simulated", "plan:skeptic=human", "mediator=@premium"]
    # a run's seat of no stage wins in every stage, over the saved stage seats too
    assert seats_for(overlay(saved, ["skeptic=sophia"]), "research") == (
        {"skeptic": "sophia-ci"},
        {"skeptic": "simulated", "mediator": "premium"},
    )
    # only what it says: a model keeps the saved CI; a model on a person's seat is a CI's
    assert seats_for(overlay(saved, ["skeptic=@local"]), "research")[0] == {"skeptic": "telos-ci"}
    assert overlay(["plan:skeptic=human"], ["plan:skeptic=@local"]) == ["plan:skeptic=@local"]
    assert overlay(["plan:skeptic=athena@local"], ["plan:skeptic=human"]) == ["plan:skeptic=human"]
    # one seat per stage and role comes out: two full layers still fit one request
    every = [f"{stage}:{role}=athena" for stage in STAGES for role in ROLES]
    laid = overlay([*every, "skeptic=nous"], [f"{s}@local" for s in every])
    assert len(laid) <= MAX_SEATS and "code:skeptic=athena-ci@local" in laid
    msgspec.convert({"goal": "g", "seats": laid}, RunRequest)


def test_a_run_request_refuses_a_bad_seat() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown CI"):
        msgspec.convert({"goal": "g", "seats": ["skeptic=nobody"]}, RunRequest)
    with pytest.raises(msgspec.ValidationError):  # the pattern: no shell or path text
        msgspec.convert({"goal": "g", "seats": ["skeptic=a;rm -rf /"]}, RunRequest)


def test_the_grammar_narrows_numbers_lists_and_prose_and_stays_valid() -> None:
    schema = reply_schema(PositionReply)
    tight = narrowed(schema, 3, 100)
    props = tight["properties"]
    assert props["self_confidence"]["enum"][0] == 0.0 and props["self_confidence"]["enum"][-1] == 1
    assert props["risks"]["maxItems"] == 3 and props["risks"]["items"]["maxLength"] == 100
    assert props["position"]["maxLength"] == 100 and props["position"]["minLength"] == 1
    assert tight["$defs"]["Scores"]["properties"]["recency"]["enum"][5] == 0.5
    assert schema["properties"]["risks"]["maxItems"] == 8  # the original is left as it was
    # a number bounded wider than one unit becomes an integer within its bounds
    wide = narrowed({"type": "number", "minimum": 0.5, "maximum": 10_000.5})
    assert wide == {"type": "integer", "minimum": 1, "maximum": 10_000}
    # what a grammar may not shorten: a bigger minimum, a diff, an enum
    assert narrowed({"type": "array", "minItems": 5}, 3)["maxItems"] == 5
    assert narrowed({"type": "string", "maxLength": 100_000}, 3, 50)["maxLength"] == 100_000
    assert narrowed({"type": "string", "enum": ["a"]}, 3, 50) == {"type": "string", "enum": ["a"]}


def test_local_is_a_provider_and_the_catalog_is_pinned() -> None:
    assert provider_kind("local") == provider_kind("local:smollm2-135m") == "local"
    for model in CATALOG.values():
        assert len(model.sha256) == 64 and model.size > 0 and "==" in model.package
    with pytest.raises(ConfigError, match="unknown local model"):
        served("gpt-17")


def _gguf(path: Path, body: bytes = b"weights") -> str:
    path.write_bytes(b"GGUF" + body)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_model_file_is_checked_before_it_is_loaded(tmp_path: Path) -> None:
    good = tmp_path / "m.gguf"
    digest = _gguf(good)
    verify(served(str(good), digest))  # the pinned digest holds
    verify(served(str(good)))  # an unpinned file of one's own: only its format is checked
    with pytest.raises(ConfigError, match=r"sha256 .* expected 0{64}"):
        verify(Served("m", str(good), "0" * 64, 4096))
    with pytest.raises(ConfigError, match="does not exist"):
        verify(served(str(tmp_path / "gone.gguf")))
    (tmp_path / "not.gguf").write_text("<html>")
    with pytest.raises(ConfigError, match="not a GGUF model file"):
        verify(served(str(tmp_path / "not.gguf")))
    with pytest.raises(ConfigError, match="is a folder"):
        verify(Served("m", str(tmp_path), None, 4096))


def test_up_serves_the_local_model_when_a_chosen_model_is_local(tmp_path: Path) -> None:
    def wanted(**env: str) -> bool:
        return local_wanted(load_settings(environ=env, config_file=tmp_path / "none.toml"))

    assert not wanted()
    assert wanted(TEKTON_MODEL="local")
    assert wanted(TEKTON_MODEL="local:smollm2-135m")
    assert wanted(TEKTON_SEATS="code:skeptic=athena@local, mediator=apollo")
    assert not wanted(TEKTON_SEATS="mediator=apollo@premium")
    toml = tmp_path / "tekton.toml"
    toml.write_text('[ci.athena]\nmodel = "local"\n')
    assert local_wanted(load_settings(environ={}, config_file=toml))


def test_the_dry_run_shows_each_seat_with_its_model(tmp_path: Path) -> None:
    from tekton_cli.runs import dry_run, render_plan  # noqa: PLC0415

    settings = load_settings(
        environ={"TEKTON_SEATS": "mediator=@premium"}, config_file=tmp_path / "none.toml"
    )
    plan = dry_run(settings, "plan", "code", [], None, ["code:skeptic=nous@local"])
    code = plan[-1].roles
    assert (code["skeptic"].ci, code["skeptic"].model) == ("nous-ci", "local")
    assert code["mediator"].model == "claude-opus-5-5"  # the configuration's seat
    assert plan[0].roles["skeptic"].ci != "nous-ci"  # that seat is the code stage's only
    assert "skeptic=nous-ci:local" in render_plan(plan)
    with pytest.raises(ConfigError, match="unknown role"):
        dry_run(settings, None, None, [], None, ["judge=apollo"])


def test_steps_stay_within_bounds_and_other_constraints_are_left_alone() -> None:
    steps = narrowed({"type": "number", "minimum": 0.33333, "maximum": 0.33337})["enum"]
    assert steps[0] == 0.33333 and steps[-1] == 0.33337
    assert all(0.33333 <= x <= 0.33337 for x in steps)
    kept = {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.25}
    assert narrowed(kept) == kept
    # a range within one unit but holding no integer stays a choice of steps
    assert set(narrowed({"type": "number", "minimum": 2.2, "maximum": 2.8})["enum"]) >= {2.2, 2.8}


def test_a_bad_seat_or_gate_in_the_settings_is_a_clear_error(tmp_path: Path) -> None:
    none = tmp_path / "none.toml"
    with pytest.raises(ConfigError, match=r"invalid setting seats: .*unknown CI 'nobody'"):
        load_settings(environ={"TEKTON_SEATS": "skeptic=nobody"}, config_file=none)
    with pytest.raises(ConfigError, match="invalid setting approve: unknown stage 'deploy'"):
        load_settings(environ={"TEKTON_APPROVE": "code,deploy"}, config_file=none)
    assert load_settings(environ={"TEKTON_APPROVE": "code, release"}, config_file=none).approve == [
        "code",
        "release",
    ]
