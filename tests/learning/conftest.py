"""Governed learning tests: the fast training recipe, small held-back slices, and no model pointer left behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _fast_learning(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from casemgr.runtime import rebuild

    # The linear recipe without CV trains in seconds (the ensemble with 5-fold calibration takes minutes here);
    # the gate and the comparison are the same code whatever the recipe.
    monkeypatch.setenv("CASEMGR_LEARNING_RECIPE", "linear")
    monkeypatch.setenv("CASEMGR_LEARNING_FOLDS", "0")
    monkeypatch.setenv("CASEMGR_LEARNING_MIN_HOLDOUT", "5")
    rebuild()
    yield
