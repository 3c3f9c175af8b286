from enum import StrEnum


class NotificationKind(StrEnum):
    MENTION = "mention"
    CUSTOMER_REPLY = "customer_reply"
    SLA_WARNING = "sla_warning"
    TAKEN_OVER = "taken_over"
