from __future__ import annotations

import pytest

from tekton_common.catalog import CATALOG, CIId, fleet_order, get_ci
from tekton_common.contract.ids import InvalidIdError
from tekton_common.errors import UnknownCIError

# the contract's table: CI id → (component port, CI port)
CONTRACT = {
    "engram-ci": (8000, 45000),
    "hermes-ci": (8001, 45001),
    "ergon-ci": (8002, 45002),
    "rhetor-ci": (8003, 45003),
    "terma-ci": (8004, 45004),
    "athena-ci": (8005, 45005),
    "prometheus-ci": (8006, 45006),
    "harmonia-ci": (8007, 45007),
    "telos-ci": (8008, 45008),
    "synthesis-ci": (8009, 45009),
    "metis-ci": (8011, 45011),
    "apollo-ci": (8012, 45012),
    "budget-ci": (8013, 45013),
    "sophia-ci": (8014, 45014),
    "nous-ci": (8015, 45015),
    "numa-ci": (8016, 45016),
    "hephaestus-ci": (8080, 45080),
}


def test_catalog_matches_contract_ports() -> None:
    assert {str(s.ci_id): (s.component_port(), s.ci_port()) for s in CATALOG} == CONTRACT


def test_ports_follow_the_bases() -> None:
    apollo = get_ci("apollo")
    assert apollo.component_port(9000) == 9012
    assert apollo.ci_port(50000) == 50012


@pytest.mark.parametrize("alias", ["apollo", "apollo-ci", "apollo-ai", "Apollo", " APOLLO-CI "])
def test_aliases_resolve(alias: str) -> None:
    assert str(CIId.from_str(alias)) == "apollo-ci"


def test_legacy_names() -> None:
    assert get_ci("penia").name == "budget"
    assert get_ci("noesis-ai").name == "nous"


def test_unknown_ci_is_a_clear_lookup_error() -> None:
    with pytest.raises(UnknownCIError, match=r"unknown CI 'zeus'.*apollo"):
        get_ci("zeus")
    # a name that is no identifier at all is a bad request (400), not an unknown CI
    for bad in ("", "*", "apollo.chat", "../apollo", "apol lo"):
        with pytest.raises(InvalidIdError, match="not a valid id") as caught:
            CIId.from_str(bad)
        assert caught.value.code == 400


def test_configured_temperatures_from_contract() -> None:
    assert get_ci("apollo").temperature == 0.4
    assert get_ci("athena").temperature == 0.3
    assert get_ci("numa").temperature == 0.5


def test_numa_starts_last() -> None:
    order = fleet_order()
    assert len(order) == 17 and order[-1].name == "numa"
    assert all(spec.prompt.startswith(f"You are {spec.component}") for spec in CATALOG)
