"""NB-weighted logistic regression (Wang & Manning 2012, "NBSVM"), built from scikit-learn parts.

For each class, features are rescaled by the naive-Bayes log-count ratio of that class against the
rest, then a one-vs-rest logistic regression is fitted. On short texts this behaves differently
enough from plain LR and complement NB to add to an ensemble (its errors are less correlated).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


class NBLogisticRegression(BaseEstimator, ClassifierMixin):
    def __init__(self, C: float = 4.0, alpha: float = 1.0, max_iter: int = 3000):
        self.C = C
        self.alpha = alpha
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any) -> NBLogisticRegression:
        X = sparse.csr_matrix(X)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        self.ratios_: list[np.ndarray] = []
        self.models_: list[LogisticRegression] = []
        for c in self.classes_:
            pos = y == c
            p = self.alpha + np.asarray(X[pos].sum(axis=0)).ravel()
            q = self.alpha + np.asarray(X[~pos].sum(axis=0)).ravel()
            r = np.log((p / p.sum()) / (q / q.sum())).astype(X.dtype)
            self.ratios_.append(r)
            self.models_.append(LogisticRegression(C=self.C, max_iter=self.max_iter).fit(X.multiply(r).tocsr(), pos))
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        X = sparse.csr_matrix(X)
        return np.column_stack([m.decision_function(X.multiply(r).tocsr())
                                for m, r in zip(self.models_, self.ratios_, strict=True)])

    def predict_proba(self, X: Any) -> np.ndarray:
        # Softmax of the one-vs-rest margins; the ensemble's temperature calibrates the result.
        d = self.decision_function(X)
        d -= d.max(axis=1, keepdims=True)
        e = np.exp(d)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(axis=1)]
