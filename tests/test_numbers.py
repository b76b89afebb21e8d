"""The one number format every page, chart and CLI line uses (latentviz.numbers)."""

import math

import numpy as np
import pytest

from latentviz import numbers


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (31.9983, "32"),  # the live chart's L0 for k = 32
        (130.407, "130.4"),
        (2.07857, "2.079"),
        (0.15329, "0.1533"),
        (0.1, "0.1"),  # no trailing zeros
        (-0.5, "-0.5"),
        (1234567.8, "1,235,000"),  # four significant digits, separated, as d3's ",.4~r"
        (0.0000213, "0.0000213"),  # never scientific
        (99999.6, "100,000"),  # rounding up across a decade
        (0.0, "0"),
        (5000.0, "5,000"),
    ],
)
def test_a_figure_has_four_significant_digits_and_separated_thousands(value, shown):
    assert numbers.figure(value) == shown


def test_a_count_stays_exact_and_its_noun_agrees():
    assert numbers.figure(123456) == "123,456"  # an integer is a count, not rounded to 4 digits
    assert numbers.figure(np.int64(123456)) == "123,456"
    assert numbers.count(1, "text") == "1 text"
    assert numbers.count(5000, "text") == "5,000 texts"
    assert numbers.count(2, "match", "matches") == "2 matches"


def test_shares_densities_and_missing_figures():
    assert numbers.share(0.985) == "98.5%"
    assert numbers.share(0.25) == "25%"
    assert numbers.share(0.254, 0) == "25%"
    assert numbers.density(0.000213) == "2.13e-04"
    for missing in (None, math.nan):
        assert numbers.figure(missing) == numbers.share(missing) == numbers.density(missing) == numbers.MISSING


def test_the_training_curves_show_figures_in_the_same_format():
    import pandas as pd

    from latentviz import charts

    curves = pd.DataFrame({"model": "1", "step": [1, 2], "metric": "l0", "value": [31.9983, 32.0]})
    spec = str(charts.curves_chart(curves).to_dict())
    assert f"'format': '{numbers.FIGURE_D3}'" in spec
