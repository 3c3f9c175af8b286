"""Queue views (issue 20): the default views with their counts, saved personal/shared views, and keyset-paged
case lists sorted by SLA due, priority, updated or created time."""
