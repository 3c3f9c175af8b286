"""Why the model said what it said: the words and the sentence that carried a prediction.

Agents and reviewers see every AI field with its evidence. For the text ensemble we read the
naive-Bayes member's per-class word weights, or a linear member's word coefficients (how much more a
word belongs to the predicted class than to the average class), over the words of this text, and point
at the sentence holding most of them.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from casemgr.ai.text import normalise

_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")


def _members(model: Any) -> list[Any]:
    # An ensemble lists its fitted members; a single pipeline (the urgency model) is its own member.
    return list(getattr(model, "members_", None) or [model])


def _word_view(member: Any) -> tuple[dict[str, int], Any] | None:
    """(vocabulary, last step) of a member whose words are its first feature columns, or None.

    A FeatureUnion puts its first transformer's columns first, so a union led by a word vectoriser
    (the urgency and intent LR: word + char TF-IDF) exposes its word weights as the leading columns."""
    steps = list(getattr(member, "named_steps", {}).values())
    if len(steps) < 2:
        return None
    for step in steps[:-1]:
        if hasattr(step, "vocabulary_") and getattr(step, "analyzer", "word") == "word":
            return step.vocabulary_, steps[-1]
        parts = getattr(step, "transformer_list", None)
        if parts:
            first = parts[0][1]
            if hasattr(first, "vocabulary_") and getattr(first, "analyzer", "word") == "word":
                return first.vocabulary_, steps[-1]
    return None


def _member_lift(member: Any, label: str, kind: str) -> tuple[dict[str, int], np.ndarray] | None:
    """Per-word lift of `label` over the member's words: how much more each word speaks for the label
    than for the average class. `kind` "nb" reads naive-Bayes log-probabilities, "linear" the
    coefficients of a (multinomial or binary) linear model."""
    view = _word_view(member)
    if view is None:
        return None
    vocab, est = view
    classes = [str(c) for c in getattr(est, "classes_", [])]
    if label not in classes:
        return None
    i = classes.index(label)
    n = len(vocab)
    if kind == "nb" and hasattr(est, "feature_log_prob_"):
        w = est.feature_log_prob_
        return vocab, (w[i] - w.mean(axis=0))[:n]
    if kind == "linear" and hasattr(est, "coef_"):
        coef = np.asarray(est.coef_)
        if coef.shape[0] == 1:  # binary: one row, for classes_[1]
            row = coef[0] if i == 1 else -coef[0]
        else:
            row = coef[i] - coef.mean(axis=0)
        return vocab, row[:n]
    return None


_lifts: dict[tuple[int, str], tuple[Any, Any, Any] | None] = {}


def _lift(model: Any, label: str) -> tuple[Any, Any] | None:
    """(vocabulary, per-word lift of `label`) of the model's word view, computed once per model and label:
    a batch of classifications asks for it three times per text (issue 23 profile). Naive-Bayes members
    first (the category ensemble's), then any linear member (the urgency and intent LR), whose word
    columns were never read before, so their evidence was always empty and their confidence capped."""
    key = (id(model), label)
    hit = _lifts.get(key)
    if hit is not None and hit[0] is model:
        return hit[1], hit[2]
    out = None
    for kind in ("nb", "linear"):
        for member in _members(model):
            out = _member_lift(member, label, kind)
            if out is not None:
                break
        if out is not None:
            break
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
        low = set(normalise(s).split())  # cached: the same sentences are scored for each of three models
        score = sum(1 for w in words if w in low)
        if score > best_score:
            best, best_score = s, score
    if best is None:
        return None
    return best if len(best) <= max_chars else best[: max_chars - 1].rsplit(" ", 1)[0] + "…"


def margin(probs: np.ndarray) -> float:
    top = np.sort(probs)[::-1]
    return float(top[0] - (top[1] if len(top) > 1 else 0.0))
