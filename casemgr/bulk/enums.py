from enum import StrEnum


class BulkAction(StrEnum):
    ASSIGN = "assign"
    CLAIM = "claim"
    MOVE_QUEUE = "move_queue"
    SET_PRIORITY = "set_priority"
    TRANSITION = "transition"
    CLOSE = "close"
    MERGE = "merge"


class Outcome(StrEnum):
    OK = "ok"
    CONFLICT = "conflict"
    FORBIDDEN = "forbidden"
    INVALID = "invalid"
