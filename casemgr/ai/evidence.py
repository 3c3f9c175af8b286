"""Why the model said what it said: the words and the sentence that carried a prediction.

Agents and reviewers see every AI field with its evidence. For the text ensemble we read the
naive-Bayes member's per-class word weights (how much more a word belongs to the predicted class
than to the average class) over the words of this text, and point at the sentence holding most of them.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from casemgr.ai.text import normalise

_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")


def _nb_member(model: Any) -> tuple[Any, Any] | None:
    for member in getattr(model, "members_", []):
        steps = getattr(member, "named_steps", {})
        vec = next((s for s in steps.values() if hasattr(s, "vocabulary_")), None)
        nb = next((s for s in steps.values() if hasattr(s, "feature_log_prob_")), None)
        if vec is not None and nb is not None and getattr(vec, "analyzer", "word") == "word":
            return vec, nb
    return None


def cue_words(cm: Any, text: str, label: str, k: int = 5) -> list[str]:
    """Up to k words of `text` that speak most for `label` (empty when the model has no word view)."""
    found = _nb_member(cm.model)
    if found is None or label not in cm.labels:
        return []
    vec, nb = found
    classes = list(nb.classes_)
    if label not in classes:
        return []
    weights = nb.feature_log_prob_
    lift = weights[classes.index(label)] - weights.mean(axis=0)
    vocab = vec.vocabulary_
    seen: dict[str, float] = {}
    for w in normalise(text, cm.vocabulary).split():
        j = vocab.get(w)
        if j is not None and lift[j] > 0:
            seen[w] = float(lift[j])
    return [w for w, _ in sorted(seen.items(), key=lambda kv: -kv[1])[:k]]


def best_sentence(text: str, words: list[str], max_chars: int = 240) -> str | None:
    """The sentence of the original text that holds most of the evidence words."""
    if not words:
        return None
    best, best_score = None, 0
    for sent in _SENTENCE_RE.split(text):
        s = sent.strip()
        if not s:
            continue
        low = normalise(s)
        score = sum(1 for w in words if w in low.split())
        if score > best_score:
            best, best_score = s, score
    if best is None:
        return None
    return best if len(best) <= max_chars else best[: max_chars - 1].rsplit(" ", 1)[0] + "…"


def margin(probs: np.ndarray) -> float:
    top = np.sort(probs)[::-1]
    return float(top[0] - (top[1] if len(top) > 1 else 0.0))
