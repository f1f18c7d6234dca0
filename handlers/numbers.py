"""Numbers in what people type and in button actions.

`str.isdigit` is true for superscripts and circled digits ('²', '①'), which `int` refuses: a turn
that trusted it crashed. Only decimal digits count. A phone keyboard may type them in another script
(fullwidth '２', Arabic-Indic '٢'); the person plainly means 2, so those are read as numbers.
"""

from __future__ import annotations

import unicodedata

# A menu choice or an option index is short; a limit also keeps `int` away from huge strings.
MAX_DIGITS = 6


def ascii_digits(text: str) -> str | None:
    """'４８２９１５' -> '482915': decimal digits of any script as ASCII; None unless all are decimal digits."""
    if not text.isdecimal():
        return None
    return "".join(str(unicodedata.decimal(char)) for char in text)


def typed_number(text: str) -> int | None:
    """The number a person typed ('2', '２', '٢'), or None for anything else ('²', '①', '2a', '')."""
    digits = ascii_digits(text)
    if digits is None or len(digits) > MAX_DIGITS:
        return None
    return int(digits)


def action_number(text: str, max_digits: int = MAX_DIGITS) -> int | None:
    """A number the bot wrote into a button action: ASCII digits only, anything else is forged."""
    if not text.isascii() or not text.isdecimal() or len(text) > max_digits:
        return None
    return int(text)
