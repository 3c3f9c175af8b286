"""Bulk case actions with per-case optimistic locking (POST /api/cases/bulk), claim / take over, and merge."""
