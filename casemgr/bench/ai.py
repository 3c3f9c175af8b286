"""`casemgr bench ai`: classification throughput on one core, batched, vs a plain TF-IDF+LR baseline."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path("../shared/data/cfpb-complaints/complaints.csv")

_RAW_EMAIL = """Hello,

I am writing about my account ending 4821. On March 3, 2024 I was charged a $35.00 overdraft fee even
though my direct deposit had posted. I called the branch twice and nobody could explain it.
Please refund the fee.

Thanks,
Jane
> On Mon, support wrote:
> previous message
"""


def _texts(data: Path | None, n: int) -> tuple[list[str], list[str] | None]:
    from casemgr.ai.classifier import read_labelled_csv

    path = data or DEFAULT_DATA
    if path.exists():
        texts, labels = read_labelled_csv(path, "narrative", "product")
    else:
        texts, labels = [_RAW_EMAIL], None
    rng = random.Random(0)
    idx = [rng.randrange(len(texts)) for _ in range(n)]
    return [texts[i] for i in idx], ([labels[i] for i in idx] if labels else None)


def _rate(fn: Any, texts: list[str], batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        fn(texts[i : i + batch])
    return len(texts) / max(time.perf_counter() - t0, 1e-9)


def run_ai_bench(data: str | Path | None = None, n: int = 2000, batch: int = 64) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from casemgr.ai import classifier
    from casemgr.ai.providers.local import LocalProvider

    texts, labels = _texts(Path(data) if data else None, n)
    model = classifier.default_model()
    provider = LocalProvider()
    with threadpool_limits(limits=1):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        model.predict(texts[:8])  # warm-up: load and first-call costs are not throughput
        category_rate = _rate(model.predict, texts, batch)
        full_rate = _rate(provider.classify_batch, texts[: max(200, n // 4)], batch)
        raw = [_RAW_EMAIL] * 200
        raw_rate = _rate(provider.classify_batch, raw, batch)
        baseline_rate = None
        if labels:
            from sklearn.feature_extraction.text import TfidfVectorizer
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline

            base = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(texts[:500], labels[:500])
            baseline_rate = _rate(base.predict, texts, batch)
    return {
        "bench": "ai",
        "n": len(texts),
        "batch": batch,
        "threads": 1,
        "model_version": model.version,
        "category_docs_per_s": round(category_rate, 1),
        "classify_docs_per_s": round(full_rate, 1),  # category + urgency + sentiment
        "raw_email_docs_per_s": round(raw_rate, 1),
        "baseline_tfidf_lr_docs_per_s": round(baseline_rate, 1) if baseline_rate else None,
        "meets_50_per_s": category_rate >= 50 and full_rate >= 50,
    }
