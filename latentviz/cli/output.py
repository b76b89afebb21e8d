"""What every command shares: the workspace it opens, its progress bars and its number format."""

from __future__ import annotations

import sys

from latentviz import numbers, settings


class Bar:
    """Adapts the pipeline's progress(done, total, message) callback to tqdm: one bar per stage,
    labelled by the stage it measures (a new message closes the last stage's bar). A context
    manager: the last bar is closed however the command ends."""

    def __init__(self):
        self.bar, self.stage = None, None

    def __call__(self, done: int, total: int | None, message: str) -> None:
        from tqdm import tqdm

        if message != self.stage:
            self.close()
            self.stage = message
            self.bar = tqdm(total=total, desc=message, dynamic_ncols=True, file=sys.stderr, mininterval=0.5)
        if total is not None and self.bar.total != total:
            self.bar.reset(total=total)
        self.bar.update(done - self.bar.n)  # redraws at most twice a second

    def close(self):
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *error) -> None:
        self.close()


def open_store(args, read_only: bool = False):
    from latentviz.store import Store

    return Store(settings.db_path(args.db), read_only=read_only)


def number(value) -> str:
    """A figure for people (numbers.figure); anything not a number as it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return numbers.figure(value)
