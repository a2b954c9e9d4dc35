"""`pip install -e .` with the pip of a fresh venv (Python 3.11's ensurepip bundles pip
23, Debian 12's is 23 too), not upgraded, gives a working `tekton up`.

pips older than 24 do not match `pymilvus[milvus_lite]` to its `milvus-lite` extra; the
project names milvus-lite directly, and this proves it: a fresh venv's own `tekton`
starts the platform with embedded Milvus and reports memory reachable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_base, free_port

ROOT = Path(__file__).resolve().parents[2]
OLD_PIP = "pip<24"

pytestmark = pytest.mark.timeout(1500)


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without this test run's packages (PYTHONPATH) or model keys."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV")
        and not k.startswith(("TEKTON_", "ANTHROPIC_", "OPENAI_", "PIP_REQUIRE"))
    }
    return {**env, **extra}


def _run(args: list[str], timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, env=_clean_env(**env), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _pip_major(venv: Path) -> int:
    shown = _run([str(venv / "bin" / "python"), "-m", "pip", "--version"], 60).stdout
    return int(shown.split()[1].split(".")[0])


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the project installed by its own old pip (from a copy of the
    tree, so the checkout gets no build files)."""
    where = tmp_path_factory.mktemp("fresh")
    source = where / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".venv", ".git", ".tekton", "__pycache__", "*.egg-info"),
    )
    venv = where / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], 300)
    if _pip_major(venv) >= 24:  # a newer ensurepip: go back to the pip this is about
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", OLD_PIP], 300)
    assert _pip_major(venv) < 24
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-e", str(source)], 1200)
    yield venv


def test_old_pip_installs_milvus_lite(venv: Path) -> None:
    shown = _run([str(venv / "bin" / "python"), "-m", "pip", "show", "milvus-lite"], 60)
    assert "Name: milvus-lite" in shown.stdout
    assert (venv / "bin" / "milvus-lite").exists()


def test_tekton_up_works_from_the_fresh_venv(venv: Path, tmp_path: Path) -> None:
    base = free_base(181)
    env = {
        "TEKTON_HOME": str(tmp_path / "home"),
        "TEKTON_NATS_PORT": str(free_port()),
        "TEKTON_MILVUS_PORT": str(free_port()),
        "TEKTON_API_PORT": str(free_port()),
        "TEKTON_PORT_BASE": str(base),
        "TEKTON_CI_PORT_BASE": str(base + 100),
    }
    tekton = str(venv / "bin" / "tekton")
    try:
        up = _run([tekton, "up", "--json"], 600, **env)  # the whole platform
        results = json.loads(up.stdout)
        assert results and all(r["ready"] for r in results), up.stdout
        status = json.loads(_run([tekton, "status", "--json"], 120, **env).stdout)
        assert status["nats_reachable"] is True
        assert status["memory"]["reachable"] is True, status["memory"]
        [apollo] = [c for c in status["cis"] if c["ci"] == "apollo-ci"]
        assert apollo["active"] is True
        reply = _run([tekton, "ask", "apollo", "what should we build first?"], 120, **env)
        assert "simulated" in reply.stdout.lower()
    finally:
        subprocess.run(
            [tekton, "down"], env=_clean_env(**env), capture_output=True, timeout=120, check=False
        )


def test_a_wheel_holds_every_package_and_the_dashboards_files(tmp_path: Path) -> None:
    # a non-editable install (a container image's) has only what the wheel lists
    # from a copy of the sources alone: a stale build/ folder cannot fill in what is missing
    source = tmp_path / "source"
    skip = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    for part in ("libs", "services"):
        shutil.copytree(ROOT / part, source / part, ignore=skip)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    done = _run([*build, str(source), "-w", str(tmp_path)], 600)
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("tekton-*.whl")
    with zipfile.ZipFile(wheel) as packed:
        names = set(packed.namelist())
    sources = [ROOT / "libs", *(ROOT / "services").iterdir()]
    for package in (p for root in sources for p in root.rglob("__init__.py")):
        top = next(root for root in sources if package.is_relative_to(root))
        assert str(package.relative_to(top)) in names, package
    static = ROOT / "services/api/tekton_api/static"
    for shipped in (f for f in static.rglob("*") if f.is_file()):
        assert f"tekton_api/static/{shipped.relative_to(static)}" in names, shipped
