from latentviz.markup import changed_words


def test_changed_words_are_highlighted_and_everything_is_escaped():
    out = changed_words("the cat sat on the mat", "the dog sat on the <b>mat</b>")
    assert out.startswith("the <span") and ">dog</span> sat on the <span" in out
    assert "&lt;b&gt;mat&lt;/b&gt;" in out and "<b>" not in out
    assert changed_words("same words", "same words") == "same words"
    assert changed_words("a b", "") == "<i>(empty)</i>"


def test_tables_escape_every_cell():
    from latentviz.markup import table

    out = table({"sentence": ["<script>alert(1)</script>", "plain"], "decoded": ["a & b", "c"]})
    assert "&lt;script&gt;" in out and "<script>" not in out and "a &amp; b" in out and out.count("<tr>") == 3


def test_an_llm_explanation_is_escaped_with_its_scores():
    from latentviz.markup import explanation

    out = explanation("smollm2", "<img src=x onerror=alert(1)> words & [links](http://x.test)", 0.75, 0.5)
    assert "&lt;img" in out and "<img" not in out and "&amp;" in out
    assert "detection 0.75, fuzzing 0.5" in out
