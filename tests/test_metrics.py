import numpy as np
import pytest

from latentviz import metrics


def test_perplexity_utilisation_and_dead_codes_on_known_cases():
    uniform = metrics.codebook_usage(np.repeat(np.arange(8), 5), 8)
    assert uniform == {"perplexity": pytest.approx(8.0), "utilisation": 1.0, "dead_codes": 0, "codebook_size": 8}
    single = metrics.codebook_usage(np.full(40, 3), 8)
    assert single["perplexity"] == pytest.approx(1.0) and single["utilisation"] == 1 / 8 and single["dead_codes"] == 7
    half = metrics.codebook_usage(np.array([0, 1, 2, 3] * 10), 8)
    assert half["perplexity"] == pytest.approx(4.0) and half["dead_codes"] == 4
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2, perplexity = 2^1.5
    assert metrics.codebook_usage(np.array([0, 0, 1, 2]), 4)["perplexity"] == pytest.approx(2 ** 1.5)
    with pytest.raises(ValueError, match="0..7"):
        metrics.codebook_usage(np.array([8]), 8)


def test_purity_and_nmi_on_known_cases():
    labels = np.array(["a", "a", "b", "b"])
    assert metrics.purity(np.array([0, 0, 1, 1]), labels) == 1.0
    assert metrics.nmi(np.array([0, 0, 1, 1]), labels) == pytest.approx(1.0)
    assert metrics.purity(np.array([0, 1, 0, 1]), labels) == 0.5
    assert metrics.nmi(np.array([0, 1, 0, 1]), labels) == pytest.approx(0.0, abs=1e-12)
    # codes (0,0,0,1) vs labels (a,a,b,b): purity = (2 + 1) / 4
    assert metrics.purity(np.array([0, 0, 0, 1]), labels) == 0.75


def test_gini_and_lorenz_on_known_cases():
    assert metrics.gini(np.full(10, 7)) == pytest.approx(0.0)
    assert metrics.gini(np.array([0, 0, 0, 12])) == pytest.approx(1 - 1 / 4)
    assert metrics.gini(np.array([1, 3])) == pytest.approx(0.25)  # Lorenz (0,0),(.5,.25),(1,1): area .375
    codes, uses = metrics.lorenz(np.array([3, 1]))
    assert codes.tolist() == [0.0, 0.5, 1.0] and uses.tolist() == [0.0, 0.25, 1.0]
