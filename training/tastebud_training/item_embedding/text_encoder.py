"""all-MiniLM-L6-v2 -> ``text_encoder.onnx`` + the model's own ``tokenizer.json`` (DESIGN §6, verified route).

The sentence-transformers BERT module is wrapped with mean pooling over the attention mask and L2
normalisation, then exported with ``torch.onnx.export(..., opset_version=17, dynamo=False)`` and dynamic batch
and sequence axes. Serving (tastebud.adapters.embedded.onnx_text_encoder) tokenises with ``tokenizers`` at
the training ``max_seq_length``. The export (90 MB, ~2-3 s) is cached in the training cache directory by a hash
of the model path, its weights file and the export settings.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.adapters.embedded.onnx_text_encoder import INPUT_NAMES, OnnxTextEncoder
from tastebud_training.item_embedding.files import cached_export
from tastebud_training.text_embedding import MAX_SEQ_LENGTH, MODEL_NAME, model_path, sentence_transformer

ONNX_FILE = "text_encoder.onnx"
TOKENIZER_FILE = "tokenizer.json"
ONNX_OPSET = 17
_EXPORT_FORMAT = 1  # bump when the exported graph changes meaning


def export_text_encoder(cache_dir: Path) -> Path:
    """The directory holding ``text_encoder.onnx`` and ``tokenizer.json`` (built once per cache key)."""
    return cached_export(cache_dir, f"minilm-onnx-{_cache_key(model_path())}", _export_into)


def load_text_encoder(directory: Path) -> OnnxTextEncoder:
    """The serving encoder over an export directory (what OnnxItemEmbedder runs)."""
    return OnnxTextEncoder(directory / ONNX_FILE, directory / TOKENIZER_FILE, MAX_SEQ_LENGTH)


def text_encoder_parity(directory: Path, texts: list[str], expected: np.ndarray) -> float:
    """Max |serving ONNX encoder(texts) - expected| where ``expected`` are SentenceTransformer vectors."""
    return float(np.max(np.abs(load_text_encoder(directory).encode(texts) - expected))) if texts else 0.0


def _cache_key(model_dir: Path) -> str:
    weights = model_dir / "model.safetensors"
    stat = weights.stat() if weights.is_file() else None
    parts = [str(_EXPORT_FORMAT), MODEL_NAME, str(model_dir.resolve()),
             f"{stat.st_size}-{stat.st_mtime_ns}" if stat else "-", str(MAX_SEQ_LENGTH), str(ONNX_OPSET),
             importlib.metadata.version("torch"), importlib.metadata.version("transformers")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _export_into(directory: Path) -> None:
    import torch

    class MeanPooledUnit(torch.nn.Module):
        """BERT -> mean over unmasked tokens -> unit length: SentenceTransformer's Pooling + Normalize."""

        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                               return_dict=False)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    bert = sentence_transformer()[0].auto_model.eval()
    example = torch.ones((2, 8), dtype=torch.int64)
    # The tracer warns that transformers' mask helpers turn shape comparisons into constants: with an attention
    # mask always given they are constant (no causal mask, no extra padding); the parity checks hold that.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            MeanPooledUnit(bert), (example, example, torch.zeros_like(example)), str(directory / ONNX_FILE),
            input_names=list(INPUT_NAMES), output_names=["embedding"],
            dynamic_axes={**{name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}, "embedding": {0: "batch"}},
            opset_version=ONNX_OPSET, dynamo=False)
    shutil.copyfile(model_path() / TOKENIZER_FILE, directory / TOKENIZER_FILE)
