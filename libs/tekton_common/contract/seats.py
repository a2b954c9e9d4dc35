"""Seats: who sits in a debate's role and on which model, in one grammar for the command
line (``--role``), configuration (``seats = [...]``) and the API (``seats``).

``[STAGE:]ROLE=CI[@MODEL]``: ``code:skeptic=athena@local`` puts Athena on the local
model in the code stage's skeptic seat; ``mediator=apollo@premium`` makes Apollo on the
premium profile every stage's mediator; ``skeptic=@local`` keeps the stage's CI and
changes its model; ``plan:skeptic=human`` makes the seat a person's (``tekton answer``).
Within one list, a seat that names a stage wins over one that does not, and a later
seat over an earlier one. Layers (the configuration's, then the API's saved ones, then
a run's own) are laid one over the other by `overlay`: what an upper layer says of a
role wins in every stage it covers, whether or not the lower one named a stage.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from tekton_common.catalog import CIId
from tekton_common.contract.debates import HUMAN, ROLES
from tekton_common.errors import TektonError
from tekton_common.stages import STAGES

_MODEL = r"[A-Za-z0-9_.:/+-]+"
#: a seat as text (checked again by `parse_seat`, which names the CI and stage)
SEAT_PATTERN = (
    r"^(?:[a-z_]+:)?(?:proponent|skeptic|pragmatist|mediator)=[A-Za-z0-9_.-]*"
    rf"(?:@{_MODEL})?$"
)
SeatText = Annotated[str, msgspec.Meta(pattern=SEAT_PATTERN, max_length=300)]
#: seats one request may carry (4 roles for each of the 9 stages, and general ones)
MAX_SEATS = 40
Seats = Annotated[list[SeatText], msgspec.Meta(max_length=MAX_SEATS)]
_SEAT = re.compile(
    rf"^(?:(?P<stage>[a-z_]+):)?(?P<role>[a-z]+)=(?P<ci>[A-Za-z0-9_.-]*)(?:@(?P<model>{_MODEL}))?$"
)


class Seat(msgspec.Struct, frozen=True):
    """One parsed seat: `ci` None keeps the stage's CI, `model` None the run's model."""

    role: str
    ci: str | None = None
    model: str | None = None
    stage: str | None = None

    def __str__(self) -> str:
        where = f"{self.stage}:" if self.stage else ""
        on = f"@{self.model}" if self.model else ""
        return f"{where}{self.role}={self.ci or ''}{on}"


def parse_seat(text: str) -> Seat:
    """A seat from ``[STAGE:]ROLE=CI[@MODEL]``; ValueError (naming what is wrong) else."""
    found = _SEAT.match(text.strip())
    if found is None:
        raise ValueError(f"seat {text!r}: expected [STAGE:]ROLE=CI[@MODEL]")
    stage, role, ci, model = found.group("stage", "role", "ci", "model")
    if role not in ROLES:
        raise ValueError(f"seat {text!r}: unknown role {role!r}; roles: {', '.join(ROLES)}")
    if stage is not None and stage not in STAGES:
        raise ValueError(f"seat {text!r}: unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    if not ci and not model:
        raise ValueError(f"seat {text!r}: name a CI, a model (@MODEL) or both")
    if ci == HUMAN:
        if model:
            raise ValueError(f"seat {text!r}: a person's seat takes no model")
        return Seat(role=role, ci=HUMAN, stage=stage)
    try:
        named = str(CIId.from_str(ci)) if ci else None
    except TektonError as exc:  # an unknown CI
        raise ValueError(f"seat {text!r}: {exc}") from None
    return Seat(role=role, ci=named, model=model, stage=stage)


def check_seats(seats: list[str]) -> None:
    """Raise ValueError for the first seat that does not parse."""
    for text in seats:
        parse_seat(text)


def seats_for(seats: list[str], stage: str) -> tuple[dict[str, str], dict[str, str]]:
    """Role → CI and role → model for one stage's debate."""
    parsed = [parse_seat(text) for text in seats]
    roles: dict[str, str] = {}
    models: dict[str, str] = {}
    for seat in [s for s in parsed if s.stage is None] + [s for s in parsed if s.stage == stage]:
        if seat.ci:
            roles[seat.role] = seat.ci
        if seat.model:
            models[seat.role] = seat.model
    return roles, models


def overlay(lower: list[str], upper: list[str]) -> list[str]:
    """The seats of `upper` laid over those of `lower`: each attribute (CI, model) an
    upper seat sets wins over the lower seats of its role in the stages it covers (an
    upper seat of no stage covers them all). One seat per stage and role comes out, so
    the result never holds more than the 40 a request may carry."""
    merged: dict[tuple[str | None, str], list[str | None]] = {}

    def put(seat: Seat) -> None:
        held = merged.setdefault((seat.stage, seat.role), [None, None])
        if seat.ci:
            held[0] = seat.ci
        if seat.ci == HUMAN:
            held[1] = None  # a person's seat takes no model
        elif seat.model:
            held[1] = seat.model
            if held[0] == HUMAN:
                held[0] = None  # a model for a person's seat: the stage's CI on it

    for seat in map(parse_seat, lower):
        put(seat)
    for seat in map(parse_seat, upper):
        if seat.stage is None:  # it covers every stage: the lower stage seats give way
            for (stage, role), held in merged.items():
                if stage is not None and role == seat.role:
                    held[0] = None if seat.ci else held[0]
                    held[1] = None if seat.model or seat.ci == HUMAN else held[1]
        put(seat)
    return [
        str(Seat(role=role, ci=ci, model=model, stage=stage))
        for (stage, role), (ci, model) in merged.items()
        if ci or model
    ]
