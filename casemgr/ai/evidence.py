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


_lifts: dict[tuple[int, str], tuple[Any, Any, Any] | None] = {}


def _lift(model: Any, label: str) -> tuple[Any, Any] | None:
    """(vocabulary, per-word lift of `label`) of the model's word member, computed once per model and label:
    a batch of classifications asks for it three times per text (issue 23 profile)."""
    key = (id(model), label)
    hit = _lifts.get(key)
    if hit is not None and hit[0] is model:
        return hit[1], hit[2]
    found = _nb_member(model)
    out = None
    if found is not None:
        vec, nb = found
        classes = list(nb.classes_)
        if label in classes:
            weights = nb.feature_log_prob_
            out = (vec.vocabulary_, weights[classes.index(label)] - weights.mean(axis=0))
    if len(_lifts) > 256:
        _lifts.clear()
    _lifts[key] = (model, *out) if out is not None else None
    return out


def cue_words(cm: Any, text: str, label: str, k: int = 5) -> list[str]:
    """Up to k words of `text` that speak most for `label` (empty when the model has no word view)."""
    if label not in cm.labels:
        return []
    found = _lift(cm.model, label)
    if found is None:
        return []
    vocab, lift = found
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
