"""Every file name latentviz writes or reads, in one place (as SAELens keeps its own): a checkpoint folder,
a capture's shards, a bundle, a static site. Table names live in the store's schema (store/schema.py)."""

# A checkpoint folder (models/base.py): the config and the weights, written atomically
CONFIG_FILE = "cfg.json"
WEIGHTS_FILE = "model.safetensors"
# ... and beside them, what resuming needs (train.py) and the VAE's best held-out point (fit/vae.py)
TRAINER_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
BEST_FILE = "best.json"
# An SAE in SAELens's layout (saelens.py): CONFIG_FILE and this
SAELENS_WEIGHTS_FILE = "sae_weights.safetensors"

# A workspace's neighbours: data/latentviz.duckdb has data/latentviz.models/<id>/ and data/latentviz.cache/
DEFAULT_DB_NAME = "latentviz.duckdb"
MODELS_SUFFIX = ".models"
CACHE_SUFFIX = ".cache"
ARRAYS_SUFFIX = ".arrays"  # Parquet shards of large arrays (store/arrays.py)

# A bundle (bundle.py) and a static site (static_site.py)
MANIFEST_FILE = "manifest.json"
BUNDLE_WORKSPACE = "workspace.duckdb"
SITE_INDEX = "index.html"
PLOTLY_FILE = "plotly.min.js"
POINT_MAP_FILE = "point_map.js"  # the map's renderer: the map component's and the static site's
