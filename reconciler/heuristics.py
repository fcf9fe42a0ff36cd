"""Guess from a column's name what personal data it holds (for discover and the scan).

Left out on purpose: no database access; names only. Guesses are for a person to review.
"""

from __future__ import annotations

import re

# identifier type -> column-name pattern (whole words or common compounds)
IDENTIFIER_PATTERNS: dict[str, re.Pattern[str]] = {
    "email": re.compile(r"e_?mail"),
    "phone": re.compile(r"phone|mobile|tel(efoon)?(_|$)|gsm"),
    "iban": re.compile(r"iban|bank_?account|account_?number"),
    "customer_number": re.compile(r"cust(omer)?_?(no|nr|num|number)|client_?(no|nr|number)"),
    "username": re.compile(r"user_?name|login"),
    "ip": re.compile(r"(^|_)ip(_|$)|ip_?addr"),
    "cookie_id": re.compile(r"cookie"),
    "kvk": re.compile(r"kvk|coc_?(no|number)|chamber"),
    "mac": re.compile(r"(^|_)mac(_|$)|mac_?addr"),
}
PERSONAL = re.compile(
    r"name|birth|dob|gender|sex|address|street|city|zip|postcode|postal|house|job_?title|"
    r"age$|profile|password|comment|message|note|complaint|body|remark"
)


def identifier_type(column: str) -> str | None:
    """The ledger identifier type a column name suggests, if any.

    Returns:
        A type name or None.
    """
    name = column.lower()
    for id_type, pattern in IDENTIFIER_PATTERNS.items():
        if pattern.search(name):
            return id_type
    return None


def looks_personal(column: str) -> bool:
    """True when the name suggests personal data (an identifier or name, address, birth ...).

    Returns:
        Whether to flag the column.
    """
    return identifier_type(column) is not None or PERSONAL.search(column.lower()) is not None


__all__ = ["IDENTIFIER_PATTERNS", "identifier_type", "looks_personal"]
