"""The span reader's confidence: calibration features of a span and the logistic calibration
(``<model folder>/calibration.json``) that turns them into a score in [0, 1]."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from rag.readers.answer_types import answer_type_fit
from rag.readers.words import overlap

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
FEATURES = (
    "margin_window",
    "margin_min",
    "gap",
    "type_fit",
    "log_p_window",
    "overlap",
    "passage_rank",
)
OVERLAP_STEM = 5  # characters kept per word when matching question words in the sentence


def span_features(
    question: str,
    answer: str,
    sentence: str,
    logit: float,
    null: float,
    min_null: float,
    norm: float,
    best: float,
    rank: int,
) -> tuple[float, ...]:
    """The calibration features of one span, in :data:`FEATURES` order.

    ``margin_window``: lead of the span's logit over its window's no-answer logit ``null``;
    ``margin_min``: lead over the lowest no-answer logit of all windows; ``gap``: how far it
    trails the ``best`` span of all windows; ``type_fit``: :func:`answer_type_fit`;
    ``log_p_window``: its log-probability under its window's start and end softmaxes (``norm``);
    ``overlap``: the share of the question's content words found in the span's ``sentence``;
    ``passage_rank``: ``1 / (1 + rank)`` of the span's passage, best-first from retrieval.
    """
    return (
        logit - null,
        logit - min_null,
        best - logit,
        float(answer_type_fit(question, answer)),
        logit - norm,
        overlap(question, sentence, OVERLAP_STEM),
        1.0 / (1 + rank),
    )


@dataclass(frozen=True)
class Calibration:
    """``score = sigmoid(bias + weights . features)``; features named in :data:`FEATURES`.

    Without a fitted file (e.g. a hub model) the fallback scores ``sigmoid(margin_window)``,
    the span's lead over its window's no-answer score.
    """

    weights: tuple[float, ...]
    bias: float
    threshold: float | None = None  # the threshold chosen on held-out data (informative)
    source: str = "fallback"

    def score(self, features: tuple[float, ...]) -> float:
        z = self.bias + sum(w * f for w, f in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    @classmethod
    def fallback(cls) -> Calibration:
        return cls((1.0,) + (0.0,) * (len(FEATURES) - 1), 0.0)

    @classmethod
    def load(cls, model_dir: str | Path) -> Calibration:
        """The folder's ``calibration.json``, or :meth:`fallback` when absent or unusable."""
        path = Path(model_dir) / CALIBRATION_FILE
        if not path.is_file():
            return cls.fallback()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if tuple(data["features"]) != FEATURES:
                raise ValueError(f"features {data['features']} != {list(FEATURES)}")
            return cls(
                tuple(float(w) for w in data["weights"]),
                float(data["bias"]),
                data.get("threshold"),
                str(path),
            )
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring %s (%s); using the fallback calibration", path, exc)
            return cls.fallback()

    def save(self, model_dir: str | Path, record: dict | None = None) -> Path:
        """Write ``calibration.json`` (what :meth:`load` reads, plus ``record``: how it was fit)."""
        path = Path(model_dir) / CALIBRATION_FILE
        data = {
            "features": list(FEATURES),
            "weights": list(self.weights),
            "bias": self.bias,
            "threshold": self.threshold,
        }
        path.write_text(json.dumps(data | (record or {}), indent=2) + "\n", encoding="utf-8")
        return path
