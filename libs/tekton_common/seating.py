"""Who sits each seat of a stage's debate and on which model, as a run started now gets
it: the stage's own cast, the configuration's seats and then the given ones laid over
it (`contract.seats.overlay`), each CI's model chosen as the CI will choose it. The
command line's dry run and the API's effective configuration both show this."""

from __future__ import annotations

import msgspec

from tekton_common.catalog import CIId, get_ci
from tekton_common.contract.debates import HUMAN, ROLES
from tekton_common.contract.seats import overlay, seats_for
from tekton_common.providers.select import choose_model
from tekton_common.settings import Settings
from tekton_common.stages import roles_of

#: the seats a consensus-free stage sits: the proponent drafts, the mediator judges
FREE_SEATS = ("proponent", "mediator")


class Cast(msgspec.Struct, frozen=True):
    """Who would take a role, on which model (a person's seat: ``tekton answer``)."""

    ci: str
    model: str


def seating(settings: Settings, seats: list[str], stage: str, model: str | None) -> dict[str, Cast]:
    """Every role of `stage`'s debate with who takes it and on which model (`model`: the
    run's, for seats that name none)."""
    cast = dict(zip(ROLES, roles_of(stage), strict=True))
    seated, on = seats_for(overlay(settings.seats, seats), stage)
    cast.update(
        {role: ci if ci == HUMAN else CIId.from_str(ci).name for role, ci in seated.items()}
    )
    return {
        role: Cast(HUMAN, "tekton answer")
        if ci == HUMAN
        else Cast(f"{ci}-ci", choose_model(get_ci(ci), settings, stage, on.get(role) or model))
        for role, ci in cast.items()
    }
