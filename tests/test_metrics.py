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
    assert metrics.codebook_usage(np.array([0, 0, 1, 2]), 4)["perplexity"] == pytest.approx(2**1.5)
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


def test_gaussian_kl_per_dimension_on_known_cases():
    # Posterior equal to the prior: no KL. μ = 1, σ = 1: ½·1. μ = 0, σ² = e: ½(e − 1 − 1).
    mu = np.array([[0.0, 1.0, 0.0]])
    logvar = np.array([[0.0, 0.0, 1.0]])
    assert metrics.gaussian_kl_per_dim(mu, logvar) == pytest.approx([0.0, 0.5, 0.5 * (np.e - 2)])


def test_active_units_count_dimensions_whose_means_vary():
    mu = np.zeros((100, 4))
    mu[:, 0] = np.linspace(-1, 1, 100)  # variance ≈ 0.34: active
    mu[:, 1] = np.linspace(-0.1, 0.1, 100)  # variance ≈ 0.0034: not active
    mu[:, 2] = np.r_[np.zeros(50), np.full(50, 0.2)]  # variance = 0.0101 (ddof = 1): active, just
    assert np.var(mu[:, 2], ddof=1) == pytest.approx(0.01 * 100 / 99)
    assert metrics.active_units(mu) == 2


def test_mutual_information_limits():
    rng = np.random.default_rng(0)
    # Every posterior the same: z says nothing about x.
    same = metrics.mutual_information(np.zeros((256, 2)), np.zeros((256, 2)), rng)
    assert abs(same) < 0.05
    # Far apart, narrow posteriors: z identifies x within its batch, so the estimate saturates at
    # its ceiling ln B, whatever N: the batch, not the data set, bounds it.
    mu = np.arange(2000)[:, None] * np.array([[10.0, 0.0]])
    saturated = metrics.mutual_information(mu, np.full((2000, 2), -6.0), rng, batch_size=100)
    assert saturated == pytest.approx(np.log(100), abs=0.02)
    assert metrics.mutual_information_bound(2000, 100) == pytest.approx(np.log(100))
    assert metrics.mutual_information_bound(50, 100) == pytest.approx(np.log(50))
    whole = metrics.mutual_information(mu[:500], np.full((500, 2), -6.0), rng, batch_size=500)
    assert whole == pytest.approx(np.log(500), abs=0.1)  # one batch of all: the old ln N ceiling, up to sampling noise


def test_mutual_information_of_a_linear_gaussian_encoder():
    # x ~ N(0, 1), q(z|x) = N(x, s²): I(x; z) = ½ ln(1 + 1/s²) when the batch is large enough to
    # estimate the aggregate posterior N(0, 1 + s²); a batch of 1,000 gets within a few hundredths.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20_000, 1))
    logvar = np.full_like(x, np.log(0.25))
    exact = 0.5 * np.log(1 + 1 / 0.25)
    assert metrics.mutual_information(x, logvar, rng, batch_size=1000) == pytest.approx(exact, abs=0.05)


def test_importance_weighted_nll_is_exact_with_the_true_posterior():
    # z ~ N(0, 1), x | z ~ N(z, 1): p(x) = N(0, 2). With q(z|x) the exact posterior N(x/2, 1/2),
    # every importance weight equals p(x), so the estimate is exact for any K.
    rng = np.random.default_rng(0)
    x = np.array([0.0, 1.5, -2.0])

    def log_normal(v, mean, var):
        return -0.5 * (np.log(2 * np.pi * var) + (v - mean) ** 2 / var)

    z = x[:, None] / 2 + np.sqrt(0.5) * rng.standard_normal((3, 7))
    log_joint = log_normal(z, 0, 1) + log_normal(x[:, None], z, 1)
    nll = metrics.importance_weighted_nll(log_joint, log_normal(z, x[:, None] / 2, 0.5))
    assert nll == pytest.approx(-log_normal(x, 0, 2))
    assert metrics.perplexity_from_nll(2 * np.log(10), 2) == pytest.approx(10.0)


def test_importance_weighting_with_a_wrong_posterior_climbs_from_the_elbo_to_log_p():
    # z ~ N(0, 1), x | z ~ N(z, 1): p(x) = N(0, 2). q(z|x) = N(x/2 + 0.5, 1) is deliberately wrong
    # (shifted and too wide), so K = 1 gives the ELBO and more samples tighten the bound toward ln p(x).
    rng = np.random.default_rng(0)
    x = np.array([0.0, 1.5, -2.0])
    m, v = x / 2 + 0.5, 1.0

    def log_normal(value, mean, var):
        return -0.5 * (np.log(2 * np.pi * var) + (value - mean) ** 2 / var)

    def estimate(k, repeats=2000):
        z = m[:, None, None] + np.sqrt(v) * rng.standard_normal((3, repeats, k))
        log_joint = log_normal(z, 0, 1) + log_normal(x[:, None, None], z, 1)
        log_q = log_normal(z, m[:, None, None], v)
        nll = metrics.importance_weighted_nll(log_joint.reshape(-1, k), log_q.reshape(-1, k))
        return nll.reshape(3, repeats).mean(1)

    exact = -log_normal(x, 0, 2)
    elbo = -0.5 * np.log(2 * np.pi) - 0.5 * ((x - m) ** 2 + v) - 0.5 * np.log(2 * np.pi) - 0.5 * (m**2 + v)
    elbo += 0.5 * np.log(2 * np.pi * v) + 0.5
    assert estimate(1, 20_000) == pytest.approx(-elbo, abs=0.03)  # K = 1 is the (negative) ELBO
    assert (-elbo - exact > 0.2).all()  # a version that returned the ELBO would stay this far off
    by_k = [estimate(k) for k in (1, 10, 100, 1000)]
    assert all((a > b).all() for a, b in zip(by_k, by_k[1:], strict=False))  # the bound tightens with K
    assert by_k[-1] == pytest.approx(exact, abs=0.02)
