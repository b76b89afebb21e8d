"""Small HTML snippets for the pages. Text may be an untrusted upload, so every piece of it is
escaped here before any markup is added around it."""

from __future__ import annotations

import difflib
import html

CHANGED = "background:#FFE08A;border-radius:3px;padding:0 2px"


def changed_words(reference: str, sentence: str) -> str:
    """`sentence` as HTML with the words that differ from `reference` highlighted."""
    old, new = reference.split(), sentence.split()
    out = []
    for tag, _, _, start, end in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        for word in new[start:end]:
            escaped = html.escape(word)
            out.append(escaped if tag == "equal" else f'<span style="{CHANGED}">{escaped}</span>')
    return " ".join(out) or "<i>(empty)</i>"


def changes_table(labels: list[str], texts: list[str], references: list[str]) -> str:
    """One row per text: its label, then the text with the words that differ from its reference
    highlighted (an interpolation path against the step before, arithmetic against α = 0)."""
    rows = "".join(
        f"<tr><td style='white-space:nowrap'>{html.escape(label)}</td><td>{changed_words(reference, text)}</td></tr>"
        for label, text, reference in zip(labels, texts, references, strict=True)
    )
    return f"<table style='font-size:0.9rem'>{rows}</table>"


def traversal_table(grid, reference: str) -> str:
    """An HTML table of a traversal (columns direction, offset, text): one row per direction, one
    column per offset, each cell's words that differ from `reference` highlighted."""
    offsets = sorted(grid["offset"].unique())
    head = "".join(f"<th>{offset:+.1f}σ</th>" for offset in offsets)
    rows = []
    for direction, cells in grid.groupby("direction", sort=False):
        texts = cells.set_index("offset")["text"]
        row = "".join(f'<td style="vertical-align:top">{changed_words(reference, texts[o])}</td>' for o in offsets)
        rows.append(f"<tr><th style='white-space:nowrap'>{html.escape(str(direction))}</th>{row}</tr>")
    return f"<table style='font-size:0.85rem;border-collapse:collapse'><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def table(columns: dict[str, list]) -> str:
    """A plain HTML table whose cells wrap (long sentences stay readable); every cell escaped."""
    names = list(columns)
    head = "".join(f"<th style='text-align:left'>{html.escape(str(name))}</th>" for name in names)
    rows = "".join(
        "<tr>" + "".join(f"<td style='vertical-align:top'>{html.escape(str(value))}</td>" for value in values) + "</tr>"
        for values in zip(*columns.values(), strict=True)
    )
    return f"<table style='font-size:0.9rem;width:100%'><tr>{head}</tr>{rows}</table>"


def token_highlights(context: list[tuple[str, float]], top: float | None = None) -> str:
    """Tokens as HTML, each shaded by its activation (relative to `top`, else the context's max),
    the value shown on hover. Token text is escaped."""
    top = top or max((v for _, v in context), default=0.0) or 1.0
    out = []
    for token, value in context:
        alpha = max(0.0, min(1.0, value / top))
        style = f"background:rgba(255,140,0,{alpha:.2f});border-radius:2px" if value > 0 else ""
        out.append(f'<span title="{value:.3f}" style="{style}">{html.escape(token)}</span>')
    return "".join(out)
