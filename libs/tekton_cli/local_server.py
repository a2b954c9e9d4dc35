"""The embedded llama.cpp server `tekton up` starts for the ``local`` model.

``python -m tekton_cli.local_server`` checks the model file (its sha256 when pinned),
loads it into xllamacpp's server (llama.cpp's OpenAI-compatible HTTP server, in this
process) on loopback ``TEKTON_LOCAL_PORT`` with one slot per debater, and serves until
SIGTERM or SIGINT. It keeps llama.cpp's prompt cache, so a debater's next round reuses
the transcript it already read.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from tekton_cli.procs import helper_settings, pid_file
from tekton_common.errors import TektonError
from tekton_common.providers.local import Served, served, verify
from tekton_common.settings import Settings

log = logging.getLogger(__name__)
NAME = "tekton-local"


def params(settings: Settings, model: Served) -> Any:
    """xllamacpp's server parameters for the settings."""
    import xllamacpp  # noqa: PLC0415 - the optional `local` extra

    threads = settings.local_threads or os.cpu_count() or 1
    p = xllamacpp.CommonParams()
    p.model.path = model.path
    p.model_alias = model.spec
    p.hostnames = ["127.0.0.1"]
    p.port = settings.local_port
    p.n_parallel = settings.local_slots
    p.n_ctx = settings.local_slots * model.slot_context
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.cache_prompt = True
    p.use_jinja = True  # the model's own chat template: the one that puts tools to it
    p.cache_ram_mib = settings.local_cache_mb
    p.endpoint_slots = True
    p.endpoint_metrics = True
    return p


def serve(settings: Settings) -> int:
    """Load the model and serve until signalled; 2 when the model cannot be served."""
    try:
        model = served(settings.local_model, settings.local_model_sha256)
        started = time.monotonic()
        verify(model)
        import xllamacpp  # noqa: PLC0415
    except TektonError as exc:
        return _cannot(settings, str(exc))
    except ImportError:
        return _cannot(
            settings, "the local model needs the server: pip install 'tekton[local]' (xllamacpp)"
        )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = xllamacpp.Server(params(settings, model))
    log.info(
        "serving %s (%s) on 127.0.0.1:%d, %d slots of %d tokens, loaded in %.1fs",
        model.spec,
        model.path,
        settings.local_port,
        settings.local_slots,
        model.slot_context,
        time.monotonic() - started,
    )
    stop.wait()
    log.info("stopping")
    del server
    return 0


def _cannot(settings: Settings, why: str) -> int:
    """Say why the model cannot be served, and leave the supervisor nothing to restart
    (starting again would fail the same way)."""
    log.error("%s", why)
    pid_file(settings, NAME).unlink(missing_ok=True)
    return 2


def command() -> list[str]:
    """How `up` starts the local model server."""
    return [sys.executable, "-m", "tekton_cli.local_server"]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tekton_cli.local_server`."""
    settings = helper_settings(
        argv,
        "tekton_cli.local_server",
        "Serve the local model (TEKTON_LOCAL_MODEL) with llama.cpp on loopback.",
        NAME,
    )
    return 2 if settings is None else serve(settings)


if __name__ == "__main__":
    sys.exit(main())
