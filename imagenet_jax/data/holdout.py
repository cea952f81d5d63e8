"""How many training examples a config holds out for evaluation (minival): read by the input streams, the
evaluators and the resume check alike, so it lives below all three (and loads no TensorFlow)."""

from __future__ import annotations

import ml_collections


def holdout_examples(config: ml_collections.ConfigDict | dict) -> int:
    """Training examples held out for evaluation (a config.evals set's holdout; 0: none); also of a stored config."""
    evals = config.get("evals") or {}
    return max((entry.get("holdout", 0) for entry in dict(evals).values() if hasattr(entry, "get")), default=0)
