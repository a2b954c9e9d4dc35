"""Debates: a person's answer for a human seat."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Path, Request

from tekton_api import deps
from tekton_api.models import SeatAnswerIn
from tekton_common.contract.codec import make
from tekton_common.contract.debates import SeatAnswer
from tekton_common.contract.ids import ID_CHARS, MAX_ID

router = APIRouter(prefix="/debates", tags=["debates"], dependencies=[Depends(deps.authorized)])
DebateIdPath = Annotated[
    str, Path(pattern=f"^[{ID_CHARS}]+$", max_length=MAX_ID, description="a debate id")
]


@router.post("/{debate_id}/answers", status_code=201)
async def answer(
    debate_id: DebateIdPath, said: SeatAnswerIn, tekton: deps.Platform, request: Request
) -> dict[str, Any]:
    """Answer for the person's seat a debate waits at (`--role ROLE=human`): a
    debater's position or the mediator's outcome, held to the schema a CI's is (400
    with what is wrong, and the seat waits on); 404 when no debate of that id waits
    here, 409 when it waits for no answer from that seat. Who answers is the named
    token's name (TEKTON_API_TOKENS), else `by`."""
    fields = {**said.model_dump(), "by": deps.decider(request, said.by)}
    taken = await tekton.answer(debate_id, make(SeatAnswer, **fields))
    made: dict[str, Any] = msgspec.to_builtins(taken)
    return made
