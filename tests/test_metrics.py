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


# -- comparing SAEs and evaluating them (latentviz eval / compare) ---------------------------------------


def test_pairwise_mcc_is_one_on_a_permuted_rescaled_copy_and_pairs_one_to_one():
    rng = np.random.default_rng(0)
    decoder = rng.standard_normal((6, 4))
    order = rng.permutation(6)
    copy = decoder[order] * rng.uniform(0.5, 3.0, size=(6, 1))
    similarity = metrics.cosine_matrix(decoder, copy)
    rows, columns = metrics.matching(similarity)
    assert metrics.pairwise_mcc(similarity) == pytest.approx(1.0)
    assert (order[columns] == rows).all()  # each row paired with its own copy
    # one-to-one: two rows whose best column is the same cannot both take it. Greedy best-per-row
    # (the formula this must not be) gives (0.9 + 0.8) / 2; the matching 0.9 + 0.1 < 0.8 + 0.7
    crowded = np.array([[0.9, 0.7], [0.8, 0.1]])
    assert metrics.pairwise_mcc(crowded) == pytest.approx((0.7 + 0.8) / 2)
    # signed: a flipped direction is another feature, not the same one
    flipped = metrics.cosine_matrix(decoder, -decoder)
    assert metrics.pairwise_mcc(np.abs(flipped)) == pytest.approx(1.0)
    assert metrics.pairwise_mcc(flipped) < 0.9


def test_correlation_matrix_is_pearson_and_a_silent_latent_correlates_zero():
    rng = np.random.default_rng(1)
    a = rng.random((200, 3))
    b = np.column_stack([2 * a[:, 0] + 5, -a[:, 1], np.zeros(200)])
    c = metrics.correlation_matrix(a, b)
    assert c[0, 0] == pytest.approx(1.0) and c[1, 1] == pytest.approx(-1.0)
    assert c[0, 2] == 0 and c[2, 2] == 0
    assert c[0, 1] == pytest.approx(np.corrcoef(a[:, 0], b[:, 1])[0, 1])


def test_kl_divergence_runs_from_the_clean_distribution_to_the_spliced_one():
    import math

    import torch

    clean, spliced = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3.0), 0.0]])
    # p = (1/2, 1/2), q = (3/4, 1/4): KL(p‖q) = ½ ln(4/3); the reverse, KL(q‖p) = ¾ ln 1.5 + ¼ ln 0.5, differs
    assert float(metrics.kl_divergence(clean, spliced)[0]) == pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)
    assert float(metrics.kl_divergence(clean, clean)[0]) == pytest.approx(0.0, abs=1e-7)
    assert metrics.kl_div_score(0.25, 1.0) == pytest.approx(0.75)


def test_relative_reconstruction_bias_is_the_scale_that_best_undoes_shrinkage():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((500, 8))
    assert metrics.relative_reconstruction_bias(x, 0.8 * x) == pytest.approx(0.8)
    # with noise orthogonal to x the mean norm ratio (a wrong formula) is no longer γ
    noise = rng.standard_normal((500, 8))
    noise -= (noise * x).sum(1, keepdims=True) / (x * x).sum(1, keepdims=True) * x
    x_hat = 0.8 * x + 0.5 * noise
    gamma = metrics.relative_reconstruction_bias(x, x_hat)
    best = min(np.linspace(0.5, 1.5, 1001), key=lambda g: ((x_hat / g - x) ** 2).sum())
    assert gamma == pytest.approx(best, abs=1e-3)
    assert gamma != pytest.approx(np.mean(np.linalg.norm(x_hat, axis=1) / np.linalg.norm(x, axis=1)), abs=0.02)


def test_bootstrap_interval_resamples_units_together_and_shrinks_with_more_of_them():
    def ratio(num, den):
        return num.sum() / den.sum()

    same = {"num": np.full(50, 2.0), "den": np.full(50, 4.0)}
    assert metrics.bootstrap_interval(ratio, same) == pytest.approx((0.5, 0.5))
    # numerator and denominator drawn together: a per-unit ratio that is constant stays constant
    rng = np.random.default_rng(3)
    den = rng.uniform(1, 10, 80)
    assert metrics.bootstrap_interval(ratio, {"num": 3 * den, "den": den}) == pytest.approx((3.0, 3.0))
    # a mean's 95% interval is about ±1.96 σ/√n
    values = rng.standard_normal(400)
    low, high = metrics.bootstrap_interval(lambda v: v.mean(), {"v": values}, resamples=2000)
    assert (high - low) / 2 == pytest.approx(1.96 * values.std() / 20, rel=0.15)
    with pytest.raises(ValueError):
        metrics.bootstrap_interval(ratio, {"num": np.ones(3), "den": np.ones(4)})


def test_auroc_counts_ordered_pairs_with_ties_as_halves_and_the_embedding_score_uses_it():
    assert metrics.auroc([0.9, 0.4], [0.5, 0.1]) == 0.75  # 3 of the 4 pairs in order
    assert metrics.auroc([0.5], [0.5]) == 0.5 and metrics.auroc([1.0, 2.0], [0.0]) == 1.0
    label = np.array([1.0, 0.0])
    near, far = np.array([[2.0, 0.1], [1.0, 0.5]]), np.array([[0.0, 1.0], [-1.0, 0.2]])
    assert metrics.embedding_score(label, near, far) == 1.0
    assert metrics.embedding_score(label, far, near) == 0.0  # swapped sides: a label for the other texts


def test_balanced_accuracy_weighs_both_classes_equally():
    # 8 negatives all right, 2 positives: one right. Plain accuracy would give 0.9; balanced (1 + 0.5) / 2.
    probability = np.array([0.9, 0.2] + [0.1] * 8)
    truth = np.array([1, 1] + [0] * 8)
    assert metrics.balanced_accuracy(probability, truth) == pytest.approx(0.75)
    assert metrics.balanced_accuracy(np.array([0.5, 0.49]), np.array([1, 0])) == 1.0  # 0.5 counts as a yes
