"""Checks in the real bubblewrap sandbox: no network, nothing writable but the worktree
and /tmp, no secret visible, a hung check killed at its limit; counts read from the
runner's own summary."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tekton_common import checks
from tekton_common.contract.workspaces import CheckSpec
from tekton_stages import evidence, sandbox

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    folder = tmp_path / "wt"
    folder.mkdir()
    return folder


async def test_worktree_and_tmp_are_the_only_writable_places(worktree: Path) -> None:
    with tempfile.TemporaryDirectory(dir="/var/tmp") as host_folder:  # writable on the host
        outside = Path(host_folder) / "outside.txt"
        probe = f"tekton-sandbox-probe-{os.getpid()}"
        ran = await sandbox.run(
            f"echo made > inside.txt && echo t > /tmp/{probe} && echo no > {outside}; echo rc=$?",
            worktree,
        )
        assert (worktree / "inside.txt").read_text() == "made\n"
        assert "Read-only file system" in ran.output and "rc=2" in ran.output
        assert not outside.exists()
    # the sandbox's /tmp was its own
    assert probe not in await asyncio.to_thread(os.listdir, "/tmp")


async def test_no_network_even_to_this_host(worktree: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3)"
        ran = await sandbox.run(f'{sys.executable} -c "{code}"', worktree)
    assert ran.exit_code != 0 and "ConnectionRefusedError" in ran.output


async def test_no_secret_is_visible(
    worktree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "nats.creds").write_text("NATS-SECRET-CREDS")
    key_file = tmp_path / "key"
    key_file.write_text("sk-ant-FILE-SECRET")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-ENV-SECRET")
    monkeypatch.setenv("ANTHROPIC_API_KEY_FILE", str(key_file))
    monkeypatch.setenv("TEKTON_HOME", str(home))
    # a repository file that asks for every secret it can find
    (worktree / "steal.sh").write_text(
        f"env; cat {key_file}; cat {home}/nats.creds; ls -la {home}; cat /run/secrets/* 2>&1\n"
    )
    ran = await sandbox.run("sh steal.sh", worktree)
    assert "HOME=/tmp" in ran.output  # it did run
    for secret in ("ENV-SECRET", "FILE-SECRET", "NATS-SECRET-CREDS"):
        assert secret not in ran.output


async def test_a_hung_check_is_killed_at_its_limit(worktree: Path) -> None:
    ran = await sandbox.run("sleep 60 & sleep 60", worktree, sandbox.Limits(wall_s=1))
    assert ran.timed_out and ran.exit_code is None and ran.duration_s < 10
    assert "wall-time limit" in ran.output


async def test_output_is_bounded_to_its_tail(worktree: Path) -> None:
    limits = sandbox.Limits(output_bytes=1000)
    ran = await sandbox.run("seq 1 100000", worktree, limits)
    assert ran.exit_code == 0 and len(ran.output) <= 1000 and ran.output.endswith("100000\n")


async def test_without_bubblewrap_checks_refuse_unless_told(
    worktree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    sandbox._bwrap_works.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxUnavailableError, match="TEKTON_SANDBOX=none"):
            await sandbox.run("true", worktree)
        monkeypatch.setenv("TEKTON_SANDBOX", "none")
        ran = await sandbox.run("echo plain", worktree)
        assert ran.sandbox == "none" and "ran without a sandbox" in ran.output
    finally:
        sandbox._bwrap_works.cache_clear()


async def test_pytest_counts_come_from_its_summary(worktree: Path) -> None:
    (worktree / "test_x.py").write_text(
        "import pytest\n"
        "def test_ok(): assert True\n"
        "def test_bad(): assert 1 == 2\n"
        "@pytest.mark.skip\ndef test_skip(): pass\n"
    )
    check = CheckSpec("test", f"{sys.executable} -m pytest -q -p no:cacheprovider")
    result = await evidence.run_check(check, worktree, "abc123", sandbox.Limits(wall_s=120))
    assert (result.passed, result.failed, result.skipped) == (1, 1, 1)
    assert result.exit_code == 1 and not result.ok and result.commit == "abc123"
    assert "assert 1 == 2" in result.output_tail


def test_checks_from_toml_request_or_detection(worktree: Path) -> None:
    given = [CheckSpec("unit", "make unit")]
    assert checks.checks_for(worktree, given) == (given, "request")
    assert checks.checks_for(worktree, []) == ([], "none")
    (worktree / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert checks.checks_for(worktree, [])[1] == "detected"
    (worktree / "tekton.toml").write_text('[checks]\ntest = "pytest -q"\nlint = "ruff check ."\n')
    listed, source = checks.checks_for(worktree, [])
    assert source == "tekton.toml" and [c.name for c in listed] == ["test", "lint"]
    (worktree / "tekton.toml").write_text("[checks]\ntest = 3\n")
    with pytest.raises(Exception, match="checks"):
        checks.checks_for(worktree, [])


def test_counts_of_other_runners() -> None:
    assert checks.counts("test result: ok. 3 passed; 1 failed; 2 ignored; 0 measured") == (3, 1, 2)
    assert checks.counts("==== 2 failed, 5 passed, 1 error in 0.3s ====") == (5, 3, 0)
    assert checks.counts("all good") == (None, None, None)


async def test_host_unix_sockets_under_run_are_out_of_reach(worktree: Path) -> None:
    path = Path("/run") / f"tekton-sandbox-{os.getpid()}.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()
        try:
            code = f"import socket; socket.socket(socket.AF_UNIX).connect('{path}')"
            ran = await sandbox.run(f'{sys.executable} -c "{code}"', worktree)
        finally:
            path.unlink()
    assert ran.exit_code != 0 and "FileNotFoundError" in ran.output


async def test_a_virtualenv_below_tmp_stays_usable(worktree: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"  # pytest's tmp_path is below /tmp, the sandbox's own
    await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True
    )
    command = f"true && {venv}/bin/python -c 'import sys; print(sys.prefix)'"
    ran = await sandbox.run(command, worktree)
    assert ran.exit_code == 0 and ran.output.strip() == str(venv), ran.output
