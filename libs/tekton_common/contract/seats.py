"""Seats: who sits in a debate's role and on which model, in one grammar for the command
line (``--role``), configuration (``seats = [...]``) and the API (``seats``).

``[STAGE:]ROLE=CI[@MODEL]``: ``code:skeptic=athena@local`` puts Athena on the local
model in the code stage's skeptic seat; ``mediator=apollo@premium`` makes Apollo on the
premium profile every stage's mediator; ``skeptic=@local`` keeps the stage's CI and
changes its model; ``plan:skeptic=human`` makes the seat a person's (``tekton answer``).
A seat that names a stage wins over one that does not; later seats
win over earlier ones (a run's own over the configuration's).
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
