"""Governed learning from overrides (issue 21): reviewed AI decisions become labelled examples, a candidate
category classifier is trained on the shipped data plus those examples, and it is offered to governance leads
only if it beats the active model on a held-back slice of reviewed cases that neither model trained on.
Activating it is a change request of the versioned document kind `ai-model` (four eyes, reason, rollback).

dataset.py      examples with provenance, the train/holdout split, `casemgr ai dataset export`
store.py        candidate artefacts and reports in the data dir (<data_dir>/models/category/)
candidates.py   train a candidate, evaluate candidate vs active on the holdout, the gate, the report
model_doc.py    the `ai-model` document (which artefact is in force) and the live lookup the provider uses
activation.py   request activation of an offered candidate (documents.changes), rollback, history
jobs.py         the weekly `ai.train_candidate` job (trains and reports; never activates)
routes.py       /governance/models and /api/ai/models
"""
