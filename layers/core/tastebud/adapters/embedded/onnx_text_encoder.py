"""Item text -> all-MiniLM-L6-v2 vector (384-d, L2-normalised) in process: ONNX Runtime + the model's tokenizer.

The ONNX graph (exported at train time, tastebud_training.item_embedding.text_encoder) is the BERT encoder
with mean pooling over the attention mask and L2 normalisation, i.e. what ``SentenceTransformer.encode(...,
normalize_embeddings=True)`` computes. Tokenisation uses the model's own ``tokenizer.json`` with the training
``max_seq_length``; batches are padded to their longest text (padding is masked out of the mean).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tastebud.adapters.embedded.onnx_session import single_thread_session

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


class OnnxTextEncoder:
    """Texts -> float32 ``[n, dimension]`` unit vectors; tokenizer and session loaded once."""

    def __init__(self, model_path: Path, tokenizer_path: Path, max_seq_length: int) -> None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(max_length=max_seq_length)
        pad_id = tokenizer.token_to_id("[PAD]")
        tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")  # to the longest
        self._tokenizer = tokenizer
        self._session = single_thread_session(model_path)
        self._names = [i.name for i in self._session.get_inputs()]
        self.dimension = int(self._session.get_outputs()[0].shape[-1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        tensors = {
            "input_ids": np.asarray([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids for e in encodings], dtype=np.int64),
        }
        (vectors,) = self._session.run(None, {name: tensors[name] for name in self._names})
        return np.ascontiguousarray(vectors, dtype=np.float32)
