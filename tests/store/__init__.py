"""Tests of latentviz.store, a file per domain module."""

import pandas as pd


def texts(*items, label=None) -> pd.DataFrame:
    """A dataset's rows as add_dataset takes them."""
    return pd.DataFrame({"text": list(items), "label": label, "metadata": None})
