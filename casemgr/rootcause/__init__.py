"""Root causes of complaints (issue 22: the feedback loop to product and operations).

Agents confirm a resolution code when a complaint closes (casemgr.cases.resolution); the AI classification gives
its product (the case's category) and issue (the intent). `report` counts the confirmed causes of a period by
product, issue and queue, week by week, against the period before (top movers); `csvexport` is the flat table for
the product owner; `digest` mails the weekly summary to a configured owner address through the outbox.
"""
