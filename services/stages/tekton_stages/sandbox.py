"""Commands in a sandbox: a repository's checks run under bubblewrap.

Inside: the system read-only, the worktree and a private /tmp the only writable
places, no network (a network namespace of its own), its own pid namespace, an
environment of PATH (this process's, so the same tools are found), HOME=/tmp, LANG and
TMPDIR only (no model key, no NATS credential), the platform's state folder, secret
files and the user's credential folders hidden. Outside: a wall-time limit (the whole
sandbox is killed), an address space and file size limit, and the output kept to its
last `Limits.output_bytes`.

Without bubblewrap a check refuses to run, unless ``TEKTON_SANDBOX=none`` is set on
purpose: then it runs as a plain subprocess (environment still cleared) and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tekton_common.errors import ConfigError

SANDBOX_ENV = "TEKTON_SANDBOX"
BWRAP_MISSING = "bubblewrap (bwrap) is not installed"
#: PATH when this process has none
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: folders under $HOME that hold credentials (hidden inside the sandbox)
CREDENTIAL_DIRS = (".ssh", ".aws", ".azure", ".config/gcloud", ".docker", ".kube", ".gnupg")
CREDENTIAL_FILES = (".netrc", ".git-credentials", ".pypirc", ".npmrc")
#: the system read-only, a minimal /dev, the sandbox's own /proc
BASE_MOUNTS = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc")


class SandboxUnavailableError(ConfigError):
    """Checks cannot run isolated here, and nobody said they may run without."""


@dataclass(frozen=True)
class Limits:
    """What one command may take."""

    wall_s: float = 600.0
    memory_mb: int = 8192
    file_mb: int = 1024
    output_bytes: int = 16 * 1024


@dataclass(frozen=True)
class Ran:
    """What a command did: its exit code (None when it was killed at its limit), the
    tail of its output (stdout and stderr together), and how long it took."""

    exit_code: int | None
    output: str
    duration_s: float
    timed_out: bool
    sandbox: str


def mode() -> str:
    """``bwrap`` (the default) or ``none`` (``TEKTON_SANDBOX=none``)."""
    chosen = os.environ.get(SANDBOX_ENV, "bwrap").strip().lower() or "bwrap"
    if chosen not in ("bwrap", "none"):
        raise ConfigError(f"{SANDBOX_ENV} must be bwrap or none, not {chosen!r}")
    return chosen


@functools.cache
def _bwrap_works() -> str | None:
    """None when bubblewrap can make a sandbox here, else why not."""
    binary = shutil.which("bwrap")
    if binary is None:
        return BWRAP_MISSING
    # the mounts every check gets: a container that masks parts of /proc (the default
    # of docker and podman) lets bwrap make namespaces but not mount a new /proc
    trial = subprocess.run(
        [binary, *BASE_MOUNTS, "--unshare-all", "--die-with-parent", "true"],
        capture_output=True,
        check=False,
        timeout=30,
    )
    if trial.returncode != 0:
        why = trial.stderr.decode(errors="replace")[:300].strip()
        if "proc" in why:
            why += (
                " (in a container: run it with --security-opt systempaths=unconfined, "
                "podman's unmask=/proc/*, which leaves /proc unmasked so a sandbox can "
                "mount its own)"
            )
        return f"bwrap cannot create its sandbox here: {why}"
    return None


def require() -> str:
    """The sandbox checks will use; SandboxUnavailableError with the fix when none."""
    chosen = mode()
    if chosen == "bwrap" and (why := _bwrap_works()) is not None:
        fix = (
            "install bubblewrap (Debian: apt install bubblewrap), or "
            if why == BWRAP_MISSING
            else ""
        )
        raise SandboxUnavailableError(
            f"checks need a sandbox and {why}; {fix}set {SANDBOX_ENV}=none to run checks "
            "unisolated on purpose"
        )
    return chosen


def hidden_paths(environ: dict[str, str] | None = None, extra: Iterable[Path] = ()) -> list[Path]:
    """What a check must not read: /run (secrets, and the host's Unix sockets: Docker,
    PostgreSQL, D-Bus), the platform's state, secret files named by ``*_FILE``
    variables or given in `extra` (from the settings), and credential folders under
    $HOME."""
    env = os.environ if environ is None else environ
    found: list[Path] = [Path("/run"), Path("/var/run"), *extra]
    if env.get("TEKTON_HOME"):
        found.append(Path(env["TEKTON_HOME"]))
    found += [Path(v) for k, v in env.items() if k.endswith("_FILE") and v.startswith("/")]
    home = Path(env.get("HOME") or Path.home())
    found += [home / d for d in CREDENTIAL_DIRS] + [home / f for f in CREDENTIAL_FILES]
    return sorted({p.resolve() for p in found if p.exists()})


def _tools_under_tmp(env: dict[str, str], command: str) -> list[Path]:
    """Tool folders below /tmp (a virtualenv there, say) stay visible, read-only, under
    the sandbox's private /tmp: PATH entries, and the programs the command names by an
    absolute path."""
    found: list[Path] = []
    named = [Path(w) for w in command.replace(";", " ").replace("&", " ").split()]
    programs = [w for w in named if w.is_absolute() and w.is_relative_to("/tmp")]
    for entry in [*(Path(p) for p in env["PATH"].split(":") if p), *programs]:
        folder = entry.parent if entry.name == "bin" or entry.is_file() else entry
        if folder.name == "bin":
            folder = folder.parent
        if folder.is_relative_to("/tmp") and folder != Path("/tmp") and folder.exists():
            found.append(folder)
    return found


def bwrap_command(
    worktree: Path,
    command: str,
    hidden: Iterable[Path],
    env: dict[str, str],
    readable: Iterable[Path] = (),
) -> list[str]:
    """The bubblewrap command line that runs `command` in `worktree`; `readable` are
    folders bound read-only again after the hidden ones (the worktree's git folder)."""
    args = ["bwrap", *BASE_MOUNTS, "--tmpfs", "/tmp"]
    for path in hidden:  # hidden first, so a worktree inside one is bound again after
        args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
    for path in [*_tools_under_tmp(env, command), *readable]:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--bind", str(worktree), str(worktree), "--chdir", str(worktree)]
    args += ["--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return [*args, "--", "/bin/sh", "-c", command]


def _safe_env() -> dict[str, str]:
    path = os.environ.get("PATH") or SAFE_PATH
    return {"PATH": path, "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}


def _limit(limits: Limits) -> None:  # runs in the child before exec
    memory = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = limits.file_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


async def run(
    command: str,
    worktree: Path,
    limits: Limits | None = None,
    secrets: Iterable[Path] = (),
    readable: Iterable[Path] = (),
) -> Ran:
    """Run `command` with ``/bin/sh -c`` in `worktree` (an absolute path), sandboxed
    (see the module): `secrets` hidden besides the usual ones, `readable` bound
    read-only (the worktree's git folder)."""
    limits = limits or Limits()
    chosen = await asyncio.to_thread(require)
    env = _safe_env()
    if chosen == "bwrap":
        hidden = hidden_paths(extra=secrets)
        argv = bwrap_command(worktree, command, hidden, env, readable)
    else:
        argv = ["/bin/sh", "-c", command]
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=worktree,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=functools.partial(_limit, limits),
    )
    tail = bytearray()

    async def read() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            tail.extend(chunk)
            del tail[: max(0, len(tail) - limits.output_bytes)]

    timed_out = False
    try:
        await asyncio.wait_for(asyncio.gather(read(), proc.wait()), limits.wall_s)
    except TimeoutError:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
    text = tail.decode(errors="replace")
    if chosen == "none":
        text = f"[{SANDBOX_ENV}=none: this check ran without a sandbox]\n{text}"
    if timed_out:
        text += f"\n[killed after {limits.wall_s:g}s, its wall-time limit]"
    return Ran(
        exit_code=None if timed_out else proc.returncode,
        output=text,
        duration_s=round(time.perf_counter() - started, 3),
        timed_out=timed_out,
        sandbox=chosen,
    )
