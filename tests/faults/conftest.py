"""The platform for fault and load tests: every process, slow enough to break mid-run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_fleet_lifecycle import Fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    platform = Fleet(tmp_path / "home")
    platform.env["TEKTON_SIMULATED_LATENCY_MS"] = "150"  # a run of a few seconds
    # a turn whose request or reply is lost with a dead process is asked again after
    # the turn timeout (120 s by default, for real models)
    platform.env["TEKTON_DEBATE_TURN_TIMEOUT"] = "8"
    platform.env["TEKTON_STAGE_SILENCE"] = "25"  # a lost stage request is asked again
    platform.up()
    yield platform
    platform.run("down", "--grace", "3")
