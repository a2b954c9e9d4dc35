"""Identifiers that become NATS subject tokens, KV keys, file names or SQL values.

Run, debate, stage, CI and instance ids all match one strict pattern: letters, digits,
``_`` and ``-``, at most `MAX_ID` characters (a run id at most `MAX_RUN_ID`, so the ids
derived from it stay within the bound). No ``.``, ``*``, ``>``, whitespace, ``/``,
``..``, control or bidi characters can pass, so an id can never widen a subscription,
leave its subject's stream, or name a path. Structs use the annotated types below, so a
bad id is refused where a message is decoded; `check_id` does the same for a loose
string (a path parameter, a flag).
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from tekton_common.errors import ProtocolError

MAX_ID = 100
MAX_RUN_ID = 64
ID_CHARS = "A-Za-z0-9_-"
ID_PATTERN = f"^[{ID_CHARS}]{{1,{MAX_ID}}}$"
_ID = re.compile(ID_PATTERN)

#: any identifier of the contract
Id = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, max_length=MAX_ID)]
#: a run id (shorter: debate ids are made from it)
RunId = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, max_length=MAX_RUN_ID)]
DebateId = Id
InstanceId = Id
#: a person who decides or answers: a name, as given (letters, digits and ``_ . @ -``
#: and spaces); never a subject token or a path
PERSON_PATTERN = r"^[A-Za-z0-9_.@ -]+$"
MAX_PERSON = 100
Person = Annotated[str, msgspec.Meta(pattern=PERSON_PATTERN, min_length=1, max_length=MAX_PERSON)]


class InvalidIdError(ProtocolError):
    """An identifier that does not match the contract's pattern (400)."""


def valid_id(value: str, max_length: int = MAX_ID) -> bool:
    """True when `value` may be used as a subject token, key or file name."""
    return len(value) <= max_length and _ID.match(value) is not None


def check_id(what: str, value: object, max_length: int = MAX_ID) -> str:
    """`value` when it is a valid identifier; else InvalidIdError naming `what`."""
    if not isinstance(value, str) or not valid_id(value, max_length):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise InvalidIdError(
            f"{what} {shown} is not a valid id: use 1 to {max_length} letters, digits, '_' or '-'"
        )
    return value


def check_run_id(value: object) -> str:
    """A run id, checked (see `check_id`)."""
    return check_id("run id", value, MAX_RUN_ID)
