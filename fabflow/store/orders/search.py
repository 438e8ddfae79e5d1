"""The orders list's search text: folded once at intake, so that a search ignores case and
accents ("zoe" finds "Zoë", "MULLER" finds "Müller") alike on SQLite and PostgreSQL.

Neither database folds accents on its own without an extension (PostgreSQL's ``unaccent`` is
not always installed, SQLite's ``lower`` is ASCII only), so the text is folded here, in
Python, both when an order is stored and when a search is typed: the same function on both
sides, one indexable text column, no work at query time.
"""

from __future__ import annotations

import unicodedata
from typing import Any

# Letters that Unicode does not decompose into a base letter and a mark.
_LETTERS = str.maketrans({"ø": "o", "đ": "d", "ł": "l", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe"})


def fold(text: str) -> str:
    """``text`` in lower case without accents: what a search compares."""
    if text.isascii():  # most ids, emails and names: the fast path intake takes
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare).translate(_LETTERS)


def search_text(order_id: str, order: dict[str, Any]) -> str:
    """The folded text an order is found by: its id, external id, customer name and email."""
    customer = order.get("customer") or {}
    parts = (
        order_id,
        order.get("externalId") or "",
        customer.get("name") or "",
        customer.get("email") or "",
    )
    return fold(" ".join(parts))
