"""UserEncoder adapter: the two-tower user tower exported to ONNX, run in process (~10 µs per request).

Inputs come from tastebud.features.two_tower.profile_inputs — the same code that built the training
examples — so serving computes exactly the features the model was trained on. Every user gets a vector:
an unknown user is encoded from context (and location/profile when known), not sent to popularity.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tastebud.adapters.embedded.onnx_session import single_thread_session
from tastebud.domain import RequestContext, UserProfile
from tastebud.features.two_tower import TwoTowerVocab, profile_inputs


class OnnxUserEncoder:
    def __init__(self, model_path: Path, vocab: TwoTowerVocab) -> None:
        self.model_path = model_path  # which tower file is served (float32 or its int8 twin)
        self._session = single_thread_session(model_path)
        self._names = [i.name for i in self._session.get_inputs()]
        self._vocab = vocab

    def with_fresh_items(self, text_vectors: np.ndarray) -> OnnxUserEncoder:
        """The same session, with a vocabulary that knows the fresh items appended to the catalog."""
        encoder = OnnxUserEncoder.__new__(OnnxUserEncoder)
        encoder.model_path, encoder._session, encoder._names = self.model_path, self._session, self._names
        encoder._vocab = self._vocab.with_fresh_rows(text_vectors)
        return encoder

    def encode(self, user: UserProfile, context: RequestContext) -> np.ndarray | None:
        inputs = profile_inputs(self._vocab, user, context)
        (vector,) = self._session.run(None, {name: inputs[name] for name in self._names})
        return np.asarray(vector[0], dtype=np.float32)
