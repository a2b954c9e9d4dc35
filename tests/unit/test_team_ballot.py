"""A consensus team chat's counting: replies read as votes, weighted by confidence."""

from __future__ import annotations

import json

import pytest

from tekton_common.contract.platform import Ballot
from tekton_rhetor.team import accept_share, ballot


def vote(kind: str, confidence: float) -> str:
    return json.dumps({"vote": kind, "self_confidence": confidence, "reason": "because"})


def test_replies_become_ballots_and_anything_else_abstains() -> None:
    assert ballot(vote("reject", 0.8)) == Ballot("reject", 0.8)
    assert ballot("I think we should ship") == Ballot("abstain", 0.0)
    assert ballot(json.dumps({"vote": "maybe", "self_confidence": 0.5})).vote == "abstain"


def test_confident_dissent_outweighs_two_timid_accepts() -> None:
    votes = {
        "apollo-ci": ballot(vote("accept", 0.3)),
        "athena-ci": ballot(vote("accept", 0.3)),
        "sophia-ci": ballot(vote("reject", 0.9)),
        "metis-ci": ballot("no JSON here"),
    }
    assert accept_share(votes) == pytest.approx(0.4)
    assert accept_share({"a": Ballot("abstain", 0.0)}) == 0.0
