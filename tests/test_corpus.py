import codecs
import io
import json

import pandas as pd
import pytest

from latentviz import corpus, pipeline
from latentviz.corpus import CorpusError, parse_upload, split_sentences
from latentviz.errors import LatentvizError


def test_split_sentences_respects_abbreviations_and_quotes():
    text = (
        'Mr. Smith went to Washington today. He said "we will win this one." Then U.S. officials left the room!\n'
        "A new paragraph starts here."
    )
    assert split_sentences(text) == [
        "Mr. Smith went to Washington today.",
        'He said "we will win this one."',
        "Then U.S. officials left the room!",
        "A new paragraph starts here.",
    ]
    assert split_sentences("Too short. Far too short.") == []


@pytest.fixture(scope="module")
def bbc_all():
    return corpus.load_bbc_news(limit=None)


def test_bbc_news_is_split_deduplicated_and_labelled(bbc_all):
    frame, report = bbc_all
    assert set(frame["label"]) == {"business", "entertainment", "politics", "sports", "tech"}
    assert 35_000 < len(frame) < 45_000  # about 41k sentences, as documented
    assert frame["text"].is_unique and report.duplicates > 0
    # BBC News repeats about a hundred of its 2,225 articles word for word: those add no new sentences.
    assert 2100 < frame["metadata"].map(lambda m: m["article"]).nunique() <= 2225


def test_bbc_latin1_article_is_decoded(bbc_all):
    frame, _ = bbc_all
    article = frame[frame["metadata"].map(lambda m: m["article"]) == "sports/199.txt"]
    assert not article.empty
    assert not article["text"].str.contains("\ufffd").any()


def test_html_entities_are_decoded_at_ingest(bbc_all):
    frame, _ = bbc_all
    assert not frame["text"].str.contains(r"&#\d+;|&amp;", regex=True).any()
    assert frame["text"].str.contains("communiqué").any()  # "communiqu&#233;" in the article files
    upload, _ = parse_upload(b"S&#227;o Paulo &amp; Rio\n<b>bold</b> stays as typed\n", "notes.txt")
    assert upload["text"].tolist() == ["São Paulo & Rio", "<b>bold</b> stays as typed"]


def test_bbc_subset_is_balanced_and_reproducible():
    first, _ = corpus.load_bbc_news(limit=500)
    second, _ = corpus.load_bbc_news(limit=500)
    assert first["label"].value_counts().tolist() == [100] * 5
    assert first["text"].tolist() == second["text"].tolist()
    with pytest.raises(CorpusError, match="limit must be a positive"):
        corpus.load_bbc_news(limit=0)


# -- good uploads ------------------------------------------------------------------------------


def test_txt_one_text_per_line_with_empties_long_and_duplicates_counted():
    data = "first text\n\n   \nsecond text\nfirst text\n" + "x" * 6000 + "\n"
    frame, report = parse_upload(data.encode(), "notes.txt")
    assert frame["text"].tolist() == ["first text", "second text"]
    assert (report.skipped_empty, report.skipped_long, report.duplicates) == (2, 1, 1)


def test_csv_with_chosen_columns_keeps_the_rest_as_metadata():
    data = 'id,body,topic\n1,"Hello, world",greeting\n2,"A ""quoted"" text",other\n'
    frame, _ = parse_upload(data.encode(), "t.csv", text_column="body", label_column="topic")
    assert frame["text"].tolist() == ["Hello, world", 'A "quoted" text']
    assert frame["label"].tolist() == ["greeting", "other"]
    assert frame["metadata"].tolist() == [{"id": "1"}, {"id": "2"}]


def test_tsv_and_default_text_column():
    frame, _ = parse_upload(b"text\tlabel\nsome words\ta\nmore words\tb\n", "t.tsv")
    assert frame["text"].tolist() == ["some words", "more words"] and frame["label"].tolist() == ["a", "b"]


def test_jsonl_and_parquet():
    data = b'{"text": "one line", "label": "x", "extra": {"k": 1}}\n\n{"text": "two lines", "label": "y"}\n'
    frame, _ = parse_upload(data, "t.jsonl")
    assert frame["text"].tolist() == ["one line", "two lines"]
    buffer = io.BytesIO()
    pd.DataFrame({"sentence": ["alpha beta", "gamma delta"], "n": [1, 2]}).to_parquet(buffer)
    frame, _ = parse_upload(buffer.getvalue(), "t.parquet", text_column="sentence")
    assert frame["text"].tolist() == ["alpha beta", "gamma delta"]
    assert list(corpus.preview(buffer.getvalue(), "t.parquet").columns) == ["sentence", "n"]


@pytest.mark.parametrize(
    "encoded",
    [
        "café au lait\n".encode(),
        codecs.BOM_UTF8 + "café au lait\n".encode(),
        "café au lait\n".encode("utf-16"),  # with BOM
        codecs.BOM_UTF16_BE + "café au lait\n".encode("utf-16-be"),
    ],
)
def test_utf8_with_or_without_bom_and_utf16_with_bom(encoded):
    frame, _ = parse_upload(encoded, "t.txt")
    assert frame["text"].tolist() == ["café au lait"]


# -- bad uploads: one line that says what to fix -------------------------------------------------


@pytest.mark.parametrize(
    "data, name, options, message",
    [
        (b"", "t.txt", {}, "empty file"),
        (b"  \n\n", "t.csv", {}, "empty file"),
        (b"text\n", "t.csv", {}, "no usable texts"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "t.txt", {}, "not UTF-8"),
        (b"abc\x00def\n", "t.txt", {}, "binary"),
        ("caf\u00e9 in latin-1\n".encode("latin-1"), "t.txt", {}, r"not UTF-8 \(byte 0xe9 on line 1\)"),
        (b"a,b\n1,2\n", "t.csv", {}, "which column holds the text"),
        (b"text,label\nx y,1\n", "t.csv", {"text_column": "body"}, "no column 'body'"),
        (b"text,label\nx y,1\n", "t.csv", {"label_column": "topic"}, "no column 'topic' for the label"),
        (
            b"text,label\ngood row,a\nbad,row,here\nalso good,b\nshort\n",
            "t.csv",
            {},
            "2 malformed rows .* at lines 3, 5",
        ),
        (b'{"text": "ok"}\n{"text": broken\n[1, 2]\n', "t.jsonl", {}, "2 lines are not JSON objects, at lines 2, 3"),
        (b"not a parquet file", "t.parquet", {}, "not a readable Parquet file"),
        (b"hello", "t.docx", {}, "unsupported file type .docx"),
        (b"hello there\n", "t.txt", {"text_column": "text"}, "has no columns"),
        (b"text\n" + b"\n" * 3, "t.csv", {}, "no usable texts"),
    ],
)
def test_bad_uploads_get_a_clear_one_line_error(data, name, options, message):
    with pytest.raises(CorpusError, match=message) as error:
        parse_upload(data, name, **options)
    assert "\n" not in str(error.value) and str(error.value).startswith(name)


def test_size_limit():
    with pytest.raises(CorpusError, match="over the 1 MB limit"):
        parse_upload(b"x y z\n" * 300_000, "big.txt", max_bytes=2**20)


def test_numeric_text_column_is_refused():
    buffer = io.BytesIO()
    pd.DataFrame({"text": [1.5, 2.5], "label": ["a", "b"]}).to_parquet(buffer)
    with pytest.raises(CorpusError, match="not text"):
        parse_upload(buffer.getvalue(), "n.parquet")


def test_rejected_import_leaves_the_store_unchanged(store, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("text,label\nfirst good text,a\nsecond good text,b\n")
    pipeline.ingest(store, str(good))
    before = (store.datasets()[["name", "texts"]].to_dict("records"), store.texts("good").to_dict("records"))
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,a\nbroken,row,extra\n")
    with pytest.raises(CorpusError, match="line"):
        pipeline.ingest(store, str(bad))
    with pytest.raises(LatentvizError, match="already exists"):
        pipeline.ingest(store, str(good))
    with pytest.raises(CorpusError, match="no such file"):
        pipeline.ingest(store, str(tmp_path / "missing.csv"))
    assert (store.datasets()[["name", "texts"]].to_dict("records"), store.texts("good").to_dict("records")) == before
    assert json.loads(json.dumps(store.info()))["datasets"][0]["texts"] == 2


def test_a_map_selection_saves_as_a_dataset_of_its_texts(store):
    import pandas as pd

    from latentviz import pipeline
    from latentviz.store import StoreError

    store.add_dataset("d", "test", pd.DataFrame({"text": ["one", "two", "three"], "label": ["a", "b", None]}))
    ids = store.texts("d")["id"].tolist()
    assert pipeline.save_selection(store, "d", ids[1:], " picked ") == 2
    saved = store.texts("picked")
    assert (
        saved["text"].tolist() == ["two", "three"] and saved["label"].iloc[0] == "b" and pd.isna(saved["label"].iloc[1])
    )
    with pytest.raises(StoreError, match="nothing is selected"):
        pipeline.save_selection(store, "d", [], "empty")
    with pytest.raises(StoreError, match="already exists"):
        pipeline.save_selection(store, "d", ids, "picked")


def hostile_parquet(rows=1_000_000, chars=1_000) -> bytes:
    """A few hundred kilobytes of zstd that unpack to about a gigabyte: one long string, repeated."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    table = pa.table({"text": pa.array(["x" * chars], pa.string()).take([0] * rows)})
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


PEAK_MEMORY = """
import resource, sys
from latentviz import corpus
data = open(sys.argv[1], "rb").read()
try:
    corpus.parse_upload(data, "bomb.parquet", max_rows=int(sys.argv[2]) if len(sys.argv) > 2 else None)
    print("read", end=" ")
except corpus.CorpusError as error:
    print("refused:", error, end=" ")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_a_parquet_file_that_unpacks_to_gigabytes_is_refused_without_being_held(tmp_path):
    import subprocess
    import sys

    bomb = tmp_path / "bomb.parquet"
    bomb.write_bytes(hostile_parquet())
    assert bomb.stat().st_size < 1_000_000  # small on the wire: the upload limit does not stop it
    baseline = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource; from latentviz import corpus; import pyarrow.parquet, pandas; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for extra in ([], ["201"]):  # ingest reads it all; placing reads no further than it places
        out = subprocess.run(
            [sys.executable, "-c", PEAK_MEMORY, str(bomb), *extra], capture_output=True, text=True, check=True
        ).stdout.split()
        peak = int(out[-1]) - int(baseline)
        assert peak < 400, f"{peak} MB above the interpreter's own for a {bomb.stat().st_size // 1024} KB file"
        if extra:
            assert out[0] == "read"
        else:
            assert out[0] == "refused:" and "expands to over 200 MB of data" in " ".join(out)


def test_parquet_rows_and_nested_columns_are_read_as_text_or_refused(monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(corpus.settings, "MAX_UPLOAD_ROWS", 3)
    buffer = io.BytesIO()
    pd.DataFrame({"text": ["one text here", "two texts here", "three", "four"]}).to_parquet(buffer)
    with pytest.raises(CorpusError, match="4 rows, over the 3-row limit; split the file"):
        parse_upload(buffer.getvalue(), "long.parquet")
    assert len(parse_upload(buffer.getvalue(), "long.parquet", max_rows=2)[0]) == 2
    buffer = io.BytesIO()
    table = pa.table(
        {
            "text": ["the first text", "the second text"],
            "tags": pa.array([["a", "b"], []], pa.list_(pa.string())),
            "where": pa.array([{"page": 1}, {"page": 2}], pa.struct([("page", pa.int64())])),
        }
    )
    pq.write_table(table, buffer)
    frame, _ = parse_upload(buffer.getvalue(), "nested.parquet")
    assert frame["metadata"].tolist() == [
        {"tags": '["a", "b"]', "where": '{"page": 1}'},
        {"tags": "[]", "where": '{"page": 2}'},
    ]
    with pytest.raises(CorpusError, match="column 'tags' holds lists or records, not text; choose a text column"):
        parse_upload(buffer.getvalue(), "nested.parquet", text_column="tags")


def test_a_huge_csv_field_is_an_over_long_text_not_a_malformed_row():
    data = ("text,label\n" + '"' + "word " * 60_000 + '",a\n' + "a short text here,b\n").encode()
    frame, report = parse_upload(data, "huge.csv")
    assert frame["text"].tolist() == ["a short text here"] and report.skipped_long == 1


def test_a_sample_of_bbc_news_reports_no_duplicates_it_did_not_meet():
    frame, report = corpus.load_bbc_news(limit=200)
    assert report.kept == len(frame) == 200 and report.duplicates == 0 and "duplicates" not in report.summary()
    assert corpus.load_bbc_news(limit=None)[1].duplicates > 0  # the whole corpus has some


def test_an_upload_shows_its_first_rows_and_its_columns_are_guessed_by_name():
    data = b"id,module,sentence,score\n1,physics,the first sentence here,3\n2,maths,a second sentence here,4\n"
    first = corpus.preview(data, "notes.csv")
    assert list(first.columns) == ["id", "module", "sentence", "score"] and len(first) == 2
    assert corpus.guess_columns(list(first.columns)) == ("sentence", "module")
    assert corpus.guess_columns(["body", "x"]) == ("body", None)  # no label-like name: none
    assert corpus.guess_columns(["a", "b"]) == ("a", None)
    lines = corpus.preview(b"one line here\ntwo lines here\n" * 10, "t.txt")
    assert lines["text"].tolist() == ["one line here", "two lines here"] * 2 + ["one line here"]
