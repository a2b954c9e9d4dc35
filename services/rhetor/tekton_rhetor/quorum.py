"""Confidence-weighted voting: who is present, the accept share, and the quorum."""

from __future__ import annotations

from collections.abc import Sequence

from tekton_common.contract.debates import TurnRecord

#: at least two of the three debaters must take part for a quorum
MIN_PRESENT = 2


def present(turns: Sequence[TurnRecord]) -> list[TurnRecord]:
    """Turns with a position (abstentions left out)."""
    return [t for t in turns if t.position is not None and not t.abstained]


def accept_share(turns: Sequence[TurnRecord]) -> float:
    """Confidence-weighted share of accept votes among the present debaters."""
    voters = present(turns)
    weight = sum(t.position.self_confidence for t in voters if t.position)
    if weight <= 0:
        return 0.0
    accepted = sum(
        t.position.self_confidence for t in voters if t.position and t.position.vote == "accept"
    )
    return accepted / weight


def quorum_possible(turns: Sequence[TurnRecord]) -> bool:
    """False once too many debaters abstained for any quorum."""
    return len(present(turns)) >= MIN_PRESENT


def reached(turns: Sequence[TurnRecord], threshold: float) -> bool:
    """True when enough debaters are present and the weighted accept share meets the bar.

    A tiny tolerance keeps 2 of 3 equally confident accepts at exactly 2/3 from
    failing on floating-point rounding.
    """
    return quorum_possible(turns) and accept_share(turns) + 1e-9 >= threshold
