"""Numbers as people read them, one way on every page, chart and CLI line: a measured figure to four
significant digits with thousands separated and no trailing zeros (31.9983 → "32", 130.407 → "130.4",
5000 → "5,000"), shares as percentages, counts with their noun, and "–" for a figure not measured.
The charts' d3 formats below say the same to Vega-Lite."""

from __future__ import annotations

import math
import operator

MISSING = "–"
FIGURE_D3 = ",.4~r"  # d3: 4 significant digits, thousands separated, trailing zeros dropped (as `figure`)
COUNT_D3 = ",d"  # d3: a whole number, thousands separated (as `count`)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _whole(value) -> bool:
    """An integer type (Python's or numpy's), which is counted exactly, not rounded to digits."""
    try:
        operator.index(value)
    except TypeError:
        return False
    return not isinstance(value, bool)


def figure(value: float | None, digits: int = 4) -> str:
    """A measured figure to `digits` significant digits, never in scientific notation (d3's "~r"):
    0.15329 → "0.1533", 31.9983 → "32", 1234567.8 → "1,235,000", 0.0000213 → "0.0000213". An
    integer is a count and stays exact: 123456 → "123,456"."""
    if _missing(value):
        return MISSING
    if _whole(value):
        return count(value)
    value = float(value)
    if value == 0 or math.isinf(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = digits - 1 - magnitude  # negative: rounds to tens, hundreds, ...
    text = f"{round(value, decimals):,.{max(0, decimals)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def count(n: int | None, noun: str | None = None, plural: str | None = None) -> str:
    """A whole number with thousands separated, and its noun agreeing: "1 text", "5,000 texts"."""
    if _missing(n):
        return MISSING
    text = f"{int(n):,}"
    if noun is None:
        return text
    return f"{text} {noun if int(n) == 1 else plural or noun + 's'}"


def share(value: float | None, decimals: int = 1) -> str:
    """A fraction as a percentage, trailing zeros dropped: 0.985 → "98.5%", 0.25 → "25%"."""
    if _missing(value):
        return MISSING
    text = f"{100 * float(value):.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "%"


def density(value: float | None) -> str:
    """A firing density, which spans decades: 0.000213 → "2.13e-04" (the convention of SAE dashboards)."""
    return MISSING if _missing(value) else f"{float(value):.2e}"
