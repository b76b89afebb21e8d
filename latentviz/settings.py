"""Names, paths and limits that several modules share, kept in one place."""

import os
from pathlib import Path

from latentviz.constants import ARRAYS_SUFFIX, CACHE_SUFFIX, DEFAULT_DB_NAME, MODELS_SUFFIX

DB_ENV = "LATENTVIZ_DB"
CACHE_ENV = "LATENTVIZ_CACHE"
ARRAYS_ENV = "LATENTVIZ_ARRAYS"  # a URL: a new workspace keeps its Parquet shards there (store/locations.py)
BUNDLE_ENV = "LATENTVIZ_BUNDLE"  # "1" (set by `serve --bundle`): the workspace is a checked bundle nothing writes
WORKER_ENV = "LATENTVIZ_WORKER"  # "1" (set by `serve`): queuing a job starts a worker process if none runs
DEFAULT_DB = Path("data") / DEFAULT_DB_NAME

BUILTIN_DATASET = "bbc-news"
DEFAULT_LIMIT = 5000  # sentences in the default balanced subset: a first map in about a minute on 2 cores
DEFAULT_BACKBONE = "minilm"
DEFAULT_DECODER_LM = "smollm2"  # the pretrained-decoder VAE's language model
# Texts per forward pass when encoding: on CPU, small length-sorted batches beat large ones
# (measured: 32 > 64 > 128 sentences/s)
ENCODE_BATCH_SIZE = 32

# Where in a block activations are read (SAEs): TransformerLens's hook names without the blocks.N prefix
SITES = {
    "resid_post": "the block's output (residual stream)",
    "mlp_out": "the block's MLP output",
    "attn_out": "the block's attention output",
}

MAX_UPLOAD_BYTES = int(float(os.environ.get("LATENTVIZ_MAX_UPLOAD_MB", "50")) * 1024 * 1024)
# What an upload may expand to: a compressed Parquet file unpacks to many times its size
MAX_EXPANDED_BYTES = 4 * MAX_UPLOAD_BYTES
MAX_UPLOAD_ROWS = 1_000_000
MAX_TEXT_CHARS = 5000  # longer texts are skipped and counted: they are documents, not sentences

STATIC_MAX_MB = 500  # `export --static` refuses a larger site: GitHub Pages publishes up to 1 GB

# "0": typed text (searches, prompts, sentences) stays out of page URLs, where history and proxy logs keep it
TEXT_IN_URL_ENV = "LATENTVIZ_TEXT_IN_URL"
# Names a writable app answers to besides loopback (`serve --allow-host`), comma-separated
ALLOWED_HOSTS_ENV = "LATENTVIZ_ALLOWED_HOSTS"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_NEW_TOKENS = 200  # the most a steering run generates (twice: without and with the feature)
PLACE_MAX_TEXTS = 200  # texts placed on a map at once from "Your text": enough to see where a file lands

SEED = 42


def db_path(explicit: str | os.PathLike | None = None) -> Path:
    """The workspace file: --db, else $LATENTVIZ_DB, else data/latentviz.duckdb."""
    return Path(explicit or os.environ.get(DB_ENV) or DEFAULT_DB)


def cache_dir(db: Path) -> Path:
    """Per-workspace folder for converted weights and other rebuildable files; $LATENTVIZ_CACHE instead
    where set (`serve --bundle`: a bundle is never written to)."""
    return Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else db.parent / (db.stem + CACHE_SUFFIX)


def user_cache() -> Path:
    """This user's cache folder for latentviz ($XDG_CACHE_HOME/latentviz, else ~/.cache/latentviz)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "latentviz"


def arrays_dir(db: Path) -> Path:
    """Per-workspace folder of Parquet shards: the vectors and activations its DuckDB file catalogs."""
    return db.parent / (db.stem + ARRAYS_SUFFIX)


def models_dir(db: Path) -> Path:
    """Per-workspace folder for trained models' checkpoints, one sub-folder per model id."""
    return db.parent / (db.stem + MODELS_SUFFIX)
