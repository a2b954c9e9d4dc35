"""The contract's identifiers, ranges and schema checks refuse what the issue's attacks
sent, and let through what the platform itself sends."""

from __future__ import annotations

import json

import msgspec
import pytest

from tekton_common.artifacts import artifact_model
from tekton_common.contract.codec import convert, decode, make
from tekton_common.contract.debates import DebateRequest
from tekton_common.contract.ids import InvalidIdError, check_id, check_run_id
from tekton_common.contract.limits import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH
from tekton_common.contract.runs import ResumeRequest, RunRequest, StageRequest
from tekton_common.contract.schemas import SchemaError, check_schema
from tekton_common.errors import ProtocolError
from tekton_common.providers.schema_fill import SchemaFiller
from tekton_common.stages import DIAMOND
from tekton_common.wire import to_chat_request

BAD_IDS = [
    "",
    "../../etc",
    "*",
    ">",
    "a.b",
    "a b",
    "a/b",
    "a\tb",
    "a\x00b",
    "\u202eevil",  # right-to-left override
    "é",
    "x" * 101,
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_are_refused_with_a_400(bad: str) -> None:
    with pytest.raises(InvalidIdError, match="not a valid id") as caught:
        check_id("run id", bad)
    assert caught.value.code == 400


def test_good_ids_pass() -> None:
    for good in ("a", "3f2a9c1b0d4e", "run_1-b", "x" * 64):
        assert check_run_id(good) == good
    with pytest.raises(InvalidIdError):
        check_run_id("x" * 65)  # run ids are shorter: debate ids are made from them


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_are_refused_in_every_message_that_carries_one(bad: str) -> None:
    cases = [
        (RunRequest, {"goal": "g", "run_id": bad}, "run_id"),
        (ResumeRequest, {"run_id": bad}, "run_id"),
        (
            StageRequest,
            {"run_id": "r", "stage": "plan", "goal": "g", "debate_id": bad},
            "debate_id",
        ),
        (DebateRequest, {"prompt": "p", "debate_id": bad}, "debate_id"),
        (DebateRequest, {"prompt": "p", "run_id": bad}, "run_id"),
        (DebateRequest, {"prompt": "p", "roles": {"skeptic": bad}}, "roles"),
    ]
    for kind, fields, field in cases:
        with pytest.raises(ProtocolError, match=field):
            decode(json.dumps(fields).encode(), kind)
    with pytest.raises(ProtocolError, match="run_id"):
        to_chat_request({"content": "hi", "run_id": bad})


@pytest.mark.parametrize(
    ("kind", "fields", "field"),
    [
        (RunRequest, {"goal": "g", "max_rounds": 0}, "max_rounds"),
        (RunRequest, {"goal": "g", "max_rounds": 1000}, "max_rounds"),
        (RunRequest, {"goal": "g", "threshold": -1}, "threshold"),
        (RunRequest, {"goal": "g", "threshold": 1.5}, "threshold"),
        (RunRequest, {"goal": ""}, "goal"),
        (RunRequest, {"goal": "g" * 8001}, "goal"),
        (RunRequest, {"goal": "g", "from_stage": "../plan"}, "from_stage"),
        (RunRequest, {"goal": "g", "model": "a b"}, "model"),
        (RunRequest, {"goal": "g", "output": "/etc"}, "output"),  # no server paths
        (DebateRequest, {"prompt": "p", "max_rounds": 1000}, "max_rounds"),
        (DebateRequest, {"prompt": "p", "threshold": -1}, "threshold"),
        (DebateRequest, {"prompt": "p", "turn_timeout": 0}, "turn_timeout"),
        (DebateRequest, {"prompt": "p", "turn_timeout": 1e9}, "turn_timeout"),
        (DebateRequest, {"prompt": "p", "token_budget": -1}, "token_budget"),
        (DebateRequest, {"prompt": "p", "max_repairs": 100}, "max_repairs"),
        (DebateRequest, {"prompt": "p", "min_confidence": 2}, "min_confidence"),
        (DebateRequest, {"prompt": "p", "roles": {"judge": "apollo"}}, "roles"),
        (DebateRequest, {"prompt": ""}, "prompt"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_field(
    kind: type, fields: dict, field: str
) -> None:
    with pytest.raises(ProtocolError, match=f"`(\\$.)?{field}`") as caught:
        decode(json.dumps(fields).encode(), kind)
    assert caught.value.code == 400


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"max_tokens": -5}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 10**9}, "max_tokens"),
        ({"temperature": 99}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"history": [{"role": "user", "content": "x"}] * 201}, "history"),
        ({"cache_prefix": -1}, "cache_prefix"),
        ({"request_id": "r" * 201}, "request_id"),
    ],
)
def test_chat_ranges(fields: dict, field: str) -> None:
    with pytest.raises(ProtocolError, match=field):
        to_chat_request({"content": "hi", **fields})


def test_what_the_platform_sends_is_accepted() -> None:
    request = make(RunRequest, goal="Add rate limiting", consensus_free=["review"])
    assert request.max_rounds == 2 and request.threshold == pytest.approx(2 / 3)
    assert convert(msgspec.to_builtins(request), RunRequest) == request
    stage = convert(
        {"run_id": request.run_id, "stage": "code", "goal": "g", "debate_id": "abc-code-3"},
        StageRequest,
    )
    assert stage.stage == "code"
    for name in DIAMOND:  # every stage's artifact schema passes the checks, meta included
        check_schema(artifact_model(name).model_json_schema(), meta=True)
    to_chat_request({"content": "hi", "temperature": 1, "max_tokens": 512})


SELF_REF = {
    "type": "object",
    "required": ["a"],
    "properties": {"a": {"$ref": "#"}},
}
LOOP = {
    "type": "object",
    "properties": {"n": {"$ref": "#/$defs/Node"}},
    "$defs": {
        "Node": {
            "type": "object",
            "required": ["next"],
            "properties": {"next": {"$ref": "#/$defs/Node"}},
        }
    },
}
MUTUAL = {
    "$defs": {
        "A": {"properties": {"b": {"$ref": "#/$defs/B"}}},
        "B": {"properties": {"a": {"$ref": "#/$defs/A"}}},
    },
    "properties": {"x": {"$ref": "#/$defs/A"}},
}


def _nested(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (SELF_REF, "whole schema"),
        (LOOP, "refers to itself"),
        (MUTUAL, "refers to itself"),
        ({"properties": {"a": {"$ref": "https://evil.example/s.json"}}}, "only local"),
        ({"properties": {"a": {"$ref": "#/$defs/Missing"}}}, "does not resolve"),
        ({"properties": {"a": {"$ref": 5}}}, "must be a string"),
        (_nested(MAX_SCHEMA_DEPTH), "deeper"),
        ({"enum": ["x" * 1000] * (MAX_SCHEMA_BYTES // 1000 + 1)}, "bytes"),
        ([1, 2], "must be an object"),
    ],
)
def test_schema_bombs_are_refused(schema: object, problem: str) -> None:
    with pytest.raises(SchemaError, match=problem):
        check_schema(schema)


def test_an_invalid_json_schema_is_refused_by_the_meta_schema() -> None:
    with pytest.raises(SchemaError, match="not a valid JSON Schema"):
        check_schema({"type": "no-such-type"}, meta=True)
    check_schema({"type": "no-such-type"})  # structure only: what a CI checks


def test_a_debate_with_a_schema_bomb_is_refused_where_it_is_decoded() -> None:
    for bomb in (SELF_REF, LOOP, _nested(40)):
        with pytest.raises(ProtocolError, match="artifact_schema"):
            decode(json.dumps({"prompt": "p", "artifact_schema": bomb}).encode(), DebateRequest)
    with pytest.raises(ProtocolError, match="json_schema"):
        to_chat_request({"content": "hi", "json_schema": LOOP})


def test_the_schema_filler_cannot_recurse_without_bound() -> None:
    # a recursive schema that skipped the checks still ends, with a 400-kind error
    with pytest.raises(SchemaError, match="deeper"):
        SchemaFiller(LOOP, "seed", "test").fill()
