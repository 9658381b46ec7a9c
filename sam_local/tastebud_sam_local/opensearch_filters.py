"""The k-NN search filters and update-by-query queries the adapters send: ``term`` clauses under ``bool``
``filter`` / ``must_not``, on one document or on every document at once."""

from __future__ import annotations

from typing import Any

import numpy as np

MISSING = object()  # a field a document does not have: equal to no term value


def matching_rows(columns: dict[str, np.ndarray], size: int, spec: dict[str, Any] | None) -> np.ndarray:
    """``matches`` over every document at once (the columns of the filtered fields)."""
    keep = np.ones(size, dtype=bool)
    if not spec:
        return keep
    clauses = spec["bool"]
    for clause, wanted in [(c, True) for c in clauses.get("filter", [])] + \
                          [(c, False) for c in clauses.get("must_not", [])]:
        (name, value), = clause["term"].items()
        column = columns.get(name)
        hit = np.zeros(size, dtype=bool) if column is None else np.asarray(column == value, dtype=bool)
        keep &= hit if wanted else ~hit
    return keep


def matches(doc: dict[str, Any], spec: dict[str, Any] | None) -> bool:
    if not spec:
        return True
    clauses = spec["bool"]

    def term(clause: dict[str, Any]) -> bool:
        (name, value), = clause["term"].items()
        return name in doc and doc[name] == value

    return all(term(c) for c in clauses.get("filter", [])) and not any(term(c) for c in clauses.get("must_not", []))
