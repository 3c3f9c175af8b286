"""Password rules for new passwords (ASVS 2.1): long enough, not absurdly long, not a common password.

The common-password list ships inside the package (common-passwords.txt.gz, see PASSWORDS-SOURCE.md), so the
check needs no network. A password is refused if it, lower-cased, is on the list, or if what is left after
stripping trailing digits and symbols is ("dragon123456789" is "dragon" with a counter on the end). No
composition rules (ASVS 2.1.9): length and the list do the work.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from casemgr.errors import ValidationFailed

MIN_LENGTH = 12  # ASVS 2.1.1
MAX_LENGTH = 128  # ASVS 2.1.2: at least 64 allowed; longer than 128 refused
LIST_FILE = Path(__file__).resolve().parent / "common-passwords.txt.gz"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    with gzip.open(LIST_FILE, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip().lower() for line in fh if line.strip())


def _stem(password: str) -> str:
    return password.lower().rstrip("0123456789!@#$%^&*()-_=+.,;:?/ ")


def problem(password: str, username: str | None = None) -> str | None:
    """Why `password` is not acceptable as a new password, or None."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password must have at most {MAX_LENGTH} characters"
    lowered = password.lower()
    if username and lowered.strip() == username.strip().lower():
        return "the password must not be the username"
    common = common_passwords()
    stem = _stem(password)
    if lowered in common or (len(stem) >= 4 and stem in common) or len(set(lowered)) <= 2:
        return "this password is too common (it is on a list of leaked passwords); choose another"
    return None


def check_new_password(password: str, username: str | None = None) -> None:
    """Raise ValidationFailed (422) naming the problem."""
    why = problem(password, username)
    if why:
        raise ValidationFailed(why, field="password")
