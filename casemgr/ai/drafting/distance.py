"""How much an agent changed an AI draft before sending it: normalised word-level Levenshtein distance.

edit_distance(draft, sent) = (words inserted, deleted or replaced to turn the draft into the sent text)
                             / (words in the longer of the two), in [0, 1]:
0.0 sent as drafted, 1.0 nothing of the draft kept. Words, not characters: an agent who rewrites one sentence
of five changed about a fifth of the draft, whatever the word lengths. Whitespace (line wrapping, blank lines)
is not an edit. The common head and tail are skipped first (agents mostly edit in the middle), so a typical
reply costs a few thousand cell updates; beyond MAX_CELLS the difflib matching-blocks estimate is used instead
of the quadratic table.
"""

from __future__ import annotations

import difflib

MAX_CELLS = 4_000_000


def words(text: str) -> list[str]:
    return text.split()


def levenshtein(a: list[str], b: list[str]) -> int:
    """Edit distance between two word lists (insert, delete, replace: cost 1 each)."""
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = a[start:end_a], b[start:end_b]
    if not a or not b:
        return max(len(a), len(b))
    if len(a) * len(b) > MAX_CELLS:
        # Too large for the table: count the words outside the longest matching blocks (an upper bound).
        matched = sum(block.size for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())
        return max(len(a), len(b)) - matched
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, wa in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, wb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (wa != wb))
        prev = cur
    return prev[-1]


def edit_distance(draft: str, sent: str) -> float:
    """Normalised word edit distance in [0, 1], rounded to 4 places (0: sent unchanged)."""
    a, b = words(draft), words(sent)
    longest = max(len(a), len(b))
    if longest == 0:
        return 0.0
    return round(levenshtein(a, b) / longest, 4)
