"""Small HTML snippets for the pages. Text may be an untrusted upload, so every piece of it is
escaped here before any markup is added around it."""

from __future__ import annotations

import difflib
import html

from latentviz import numbers

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
        out.append(f'<span title="{numbers.figure(value)}" style="{style}">{html.escape(token)}</span>')
    return "".join(out)


def divergence(plain: str, steered: str) -> str:
    """`steered` as HTML, the part from where it departs from `plain` (the first differing word
    on) highlighted; the same text when they never part."""
    old, new = plain.split(" "), steered.split(" ")
    same = 0
    while same < min(len(old), len(new)) and old[same] == new[same]:
        same += 1
    kept, departed = " ".join(new[:same]), " ".join(new[same:])
    if not departed:
        return html.escape(kept) + " <i>(the same as unsteered)</i>"
    gap = " " if kept else ""
    return f'{html.escape(kept)}{gap}<span style="{CHANGED}">{html.escape(departed)}</span>'


def feature_tokens(tokens: list[str], shade: list[float], top: list[list[tuple[int, float, str]]], link) -> str:
    """A text's tokens shaded by one feature's activation, each token's strongest features (id,
    value, label) on hover, and those feature ids as links below: `link(feature)` gives the href."""
    peak = max(shade, default=0.0) or 1.0
    spans = []
    for token, value, fired in zip(tokens, shade, top, strict=True):
        alpha = max(0.0, min(1.0, value / peak))
        style = f"background:rgba(255,140,0,{alpha:.2f});border-radius:2px" if value > 0 else ""
        hover = "; ".join(f"#{f} {numbers.figure(v)} {label}" for f, v, label in fired) or "no feature fires"
        spans.append(f'<span title="{html.escape(hover)}" style="{style}">{html.escape(token)}</span>')
    seen: dict[int, str] = {}
    for fired in top:
        for f, _, label in fired:
            seen.setdefault(f, label)
    links = " ".join(
        f'<a href="{html.escape(link(f))}" target="_self" title="{html.escape(label)}">#{f}</a>'
        f"&nbsp;<small>{html.escape(label.split(' · ')[0])}</small>"
        for f, label in seen.items()
    )
    text = f"<div style='font-size:1.05rem;line-height:1.8'>{''.join(spans)}</div>"
    return f"{text}<div><small>features here (open one): {links}</small></div>"


def top_examples(examples, top: float) -> str:
    """A feature's top examples (columns value, context), one per line: its activation, then the text
    shaded token by token relative to `top` (the feature's max)."""
    return "".join(
        f"<div style='margin:2px 0'><b>{numbers.figure(value)}</b> {token_highlights(context, top)}</div>"
        for value, context in zip(examples["value"], examples["context"], strict=True)
    )


def interval_examples(examples, top: float, buckets: int) -> str:
    """A feature's interval examples (columns bucket, context), the highest interval first, each
    with its range as a share of the max."""
    share = 1 / buckets
    ordered = examples.sort_values("bucket", ascending=False)
    return "".join(
        "<div style='margin:2px "
        f"0'><small>{numbers.figure(bucket * share)}–{numbers.figure((bucket + 1) * share)}·max</small> "
        f"{token_highlights(context, top)}</div>"
        for bucket, context in zip(ordered["bucket"], ordered["context"], strict=True)
    )


def plain(text: str) -> str:
    """Text as an HTML block, escaped."""
    return f"<div>{html.escape(text)}</div>"


def steered(prompt: str, plain_continuation: str, steered_continuation: str) -> str:
    """A steered continuation after its prompt, where it departs from the unsteered one marked."""
    return f"<div>{html.escape(prompt)}{divergence(plain_continuation, steered_continuation)}</div>"


def explanation(explainer: str, text: str, detection: float, fuzzing: float) -> str:
    """An LLM's explanation of a feature (model output about untrusted text: escaped) with its scores."""
    return (
        f"<div><b>{html.escape(explainer)} explains it as:</b> {html.escape(text)} "
        f"<small>· detection {numbers.figure(detection)}, fuzzing {numbers.figure(fuzzing)} (balanced "
        "accuracy, 0.5 = chance)</small></div>"
    )
