import numpy as np
import pytest

from latentviz import ops


def test_lerp_and_slerp_on_known_paths():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert np.allclose(ops.lerp(a, b, 3), [[1, 0], [0.5, 0.5], [0, 1]])
    path = ops.slerp(a, b, 3)
    assert np.allclose(path, [[1, 0], [np.sqrt(0.5), np.sqrt(0.5)], [0, 1]])  # stays on the unit circle
    assert np.allclose(np.linalg.norm(ops.slerp(a, 2 * b, 5), axis=1), [1, 1.25, 1.5, 1.75, 2])
    assert np.allclose(ops.slerp(a, 3 * a, 3), ops.lerp(a, 3 * a, 3))  # same direction: a straight line


def test_traverse_and_attribute_shift():
    z = np.array([1.0, 2.0])
    path = ops.traverse(z, np.array([0.0, 2.0]), sigma=0.5, steps=3)
    assert np.allclose(path, [[1, 0.5], [1, 2], [1, 3.5]])
    assert np.allclose(ops.attribute_shift(z, np.array([1.0, 1.0]), np.array([0.0, 1.0]), alpha=2), [3, 2])


def test_edit_distance_and_smoothness():
    assert ops.edit_distance("the cat sat".split(), "the cat sat".split()) == 0
    assert ops.edit_distance("the cat sat".split(), "a cat sat down".split()) == 2
    assert ops.edit_distance([], "a b".split()) == 2
    assert ops.smoothness(["a b c", "a b d", "x b d"]) == pytest.approx(1.0)
    assert ops.smoothness(["only one"]) == 0.0


def test_the_smoothness_reference_is_the_distance_between_random_sentences():
    from latentviz import ops

    assert ops.smoothness_reference(["a b c"] * 5) == 0.0  # identical sentences: nothing changes
    # Two sentences 3 words apart: random pairs are the same sentence or 3 apart, about half each.
    reference = ops.smoothness_reference(["a b c", "x y z"], pairs=2000)
    assert 1.3 < reference < 1.7


def test_numbers_and_currency_come_back_as_written():
    from latentviz.vocab import Vocab, words

    text = "The dollar reached $1.2871 and profits rose 5% to £1.3bn in 2004 (up 1,000 at 10:30)."
    assert "1.3bn" in words(text) and "1,000" in words(text) and "10:30" in words(text)
    vocab = Vocab.build([text], size=100, min_count=1)
    assert vocab.decode(vocab.encode([text], 40)[0]) == text.lower()
    hyphenated = Vocab.build(["a 40-year-old man"], size=100, min_count=1)
    assert hyphenated.decode(hyphenated.encode(["a 40-year-old man"], 10)[0]) == "a 40-year-old man"
