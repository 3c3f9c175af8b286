"""Vocabularies of the intake package."""

from __future__ import annotations

from enum import StrEnum


class AttachmentKind(StrEnum):
    DOCUMENT = "document"  # what the customer sent: files, images, forwarded mail
    SIGNATURE = "signature"  # an S/MIME or PGP signature part: kept as evidence, not a customer document
