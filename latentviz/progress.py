"""How long work reports how far it has got: every step takes `progress(done, total, message)`, with
`total` None while it is not known yet. The CLI draws it with tqdm, the worker writes it to the job's row."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int | None, str], None]


def quiet(done: int, total: int | None, message: str) -> None:
    """Progress that goes nowhere: the default of every step."""
