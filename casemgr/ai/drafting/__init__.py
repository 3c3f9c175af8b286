"""AI reply drafts (issues 17 and 20): a reply the agent checks, edits and sends; AI never sends one itself.

- `local.draft_local(ctx)`: the offline provider's draft, composed from the case type's macros and the
  current stage's SOPs, filled with the case facts and chosen by intent and category;
- `phrases`: what the customer reads per intent (what we understood, what happens next, what we need);
- `distance.edit_distance(draft, sent)`: how much the agent changed the draft before sending it, recorded
  on the draft_reply decision (casemgr.governance.draft_outcome).
"""
