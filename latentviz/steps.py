"""One spec per pipeline and analysis step, in the style of the run specs (runs.py): every default is
written here once, with its help text. The CLI's flags for these commands are generated from the specs
(flags.py), the pages read their defaults from them, and the package's functions take them as their
own defaults, so the three cannot disagree (tests/test_steps.py checks each knob that appears twice).

Where the places disagreed before, the kept default is noted beside the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from latentviz import settings
from latentviz.configs import BEAM_WIDTH, TEMPERATURE
from latentviz.configs import DECODING as DECODING_METHODS
from latentviz.engines import ENGINES
from latentviz.flags import option
from latentviz.projection import METHODS

# -- the map pipeline ---------------------------------------------------------------------------------


@dataclass
class Ingest:
    """Add a dataset: the built-in corpus or a file."""

    source: str = option("", "bbc-news, or a .txt/.csv/.tsv/.jsonl/.parquet file", positional=True)
    name: str | None = option(None, "dataset name (none: bbc-news, or the file name without extension)")
    text_column: str | None = option(None, "column holding the text (CSV/TSV/JSONL/Parquet)")
    label_column: str | None = option(None, "column holding a label to colour by")
    limit: int | None = option(
        None, f"keep at most N texts (none: all; bbc-news: a balanced subset of {settings.DEFAULT_LIMIT:,})"
    )


@dataclass
class Engine:
    """Where a step's heavy work runs (engines.py): here, or on a Ray cluster's workers."""

    engine: str = option(
        "local", "local: this process; ray: a Ray cluster's workers (pip install 'latentviz[ray]')", choices=ENGINES
    )
    address: str | None = option(None, "--engine ray: the cluster to join (none: start one on this machine)")
    workers: int | None = option(None, "--engine ray: workers at once (none: one per GPU, else one per CPU)")


@dataclass
class Encode:
    """One vector per text from a backbone's hidden layer (resumes if interrupted)."""

    dataset: str = option("", "the dataset to encode", required=True)
    backbone: str = option(settings.DEFAULT_BACKBONE, "minilm, smollm2, a Hugging Face id or a local model folder")
    layer: int | None = option(None, "hidden layer to pool (none: the last for encoders, the middle for causal LMs)")
    batch_size: int = option(settings.ENCODE_BATCH_SIZE, "texts per forward pass (try 128+ on a GPU)")
    engine: Engine = field(default_factory=Engine)


@dataclass
class Project:
    """A 2-D map of an encoding."""

    dataset: str = option("", "the dataset whose encoding is mapped", required=True)
    backbone: str = option(settings.DEFAULT_BACKBONE, "the backbone that encoded it")
    layer: int | None = option(None, "its layer (none: the backbone's default)")
    method: str = option("umap", "UMAP (neighbourhoods) or PCA (linear, fast)", choices=METHODS)


CLUSTERINGS = ("k-means", "HDBSCAN")


@dataclass
class Cluster:
    """Clusters of a map's texts, each named by its most distinctive words."""

    method: str = option("k-means", "k-means on the encoding's vectors, or HDBSCAN on the 2-D map", choices=CLUSTERINGS)
    k: int = option(8, "k-means: the number of clusters")


# -- a trained VAE's latent space ---------------------------------------------------------------------


@dataclass
class Decoding:
    """How latents become sentences."""

    # beam, as the CLI and the pages had it (the package said greedy): it finds likelier sentences
    method: str = option(
        "beam", "beam search (width --beam), greedy, or sampling", flag="decoding", choices=DECODING_METHODS
    )
    beam: int = option(BEAM_WIDTH, "beam width (--decoding beam)")
    temperature: float = option(TEMPERATURE, "softmax temperature (--decoding sample)")

    def options(self) -> dict:
        """The keyword arguments of LatentSpace.decode and its callers."""
        return {"method": self.method, "beam": self.beam, "temperature": self.temperature}


@dataclass
class Decode:
    """Reconstruct a sentence with a trained VAE."""

    model: int = option(0, "the VAE's model id", positional=True)
    text: str = option("", "the sentence", required=True)
    sample: bool = option(False, "decode a sample of the posterior instead of its mean")
    seed: int = option(0, "seed of the posterior sample and of sampled decoding")
    neighbours: int = option(0, "also list the K dataset texts nearest in latent space")
    decoding: Decoding = field(default_factory=Decoding)


@dataclass
class Sample:
    """Sentences from the prior of a trained VAE."""

    model: int = option(0, "the VAE's model id", positional=True)
    n: int = option(8, "sentences to decode")
    seed: int = option(0, "seed of the prior draws")
    decoding: Decoding = field(default_factory=Decoding)


@dataclass
class Interpolate:
    """The path between two sentences in a VAE's latent space, decoded."""

    model: int = option(0, "the VAE's model id", positional=True)
    start: str = option("", "the first sentence", flag="from", required=True)
    end: str = option("", "the last sentence", flag="to", required=True)
    steps: int = option(7, "points on the path, both ends included")
    # slerp keeps the norm typical of Gaussian samples, where lerp passes near the origin
    method: str = option("slerp", "the path: slerp (great circle) or lerp (straight line)", choices=("slerp", "lerp"))
    decoding: Decoding = field(default_factory=Decoding)


DIRECTIONS = ("dimension", "pca", "label")


@dataclass
class Traverse:
    """A sentence's latent swept along one direction from −3σ to +3σ, decoded."""

    model: int = option(0, "the VAE's model id", positional=True)
    text: str = option("", "the sentence", required=True)
    dim: int | None = option(None, "a latent dimension")
    pca: int | None = option(None, "the K-th principal direction of the dataset's posterior means")
    labels: tuple[str, str] | None = option(None, "the direction mean z|A − mean z|B")
    steps: int = option(7, "points from −3σ to +3σ")
    decoding: Decoding = field(default_factory=Decoding)


@dataclass
class Arithmetic:
    """z(text) + α·(mean z|A − mean z|B), decoded for each α."""

    model: int = option(0, "the VAE's model id", positional=True)
    text: str = option("", "the sentence", required=True)
    plus: str = option("", "label whose mean is added, e.g. sport", required=True)
    minus: str = option("", "label whose mean is subtracted, e.g. business", required=True)
    alpha: list[float] = option([0.0, 0.5, 1.0, 1.5, 2.0], "the α values")
    decoding: Decoding = field(default_factory=Decoding)


# -- SAEs -----------------------------------------------------------------------------------------------


@dataclass
class Features:
    """Build every feature dashboard of an SAE."""

    model: int = option(0, "the SAE's model id", positional=True)
    show: int = option(10, "best-labelled features to print")
    engine: Engine = field(default_factory=Engine)


@dataclass
class TextFeatures:
    """Which features of an SAE fire on a text, token by token."""

    model: int = option(0, "the SAE's model id", positional=True)
    text: str = option("", "the text", positional=True)
    json: bool = option(False, "print one JSON object (each token, its strongest features and activations)")


@dataclass
class Feature:
    """One feature's dashboard: its label, density, examples and links."""

    model: int = option(0, "the SAE's model id", positional=True)
    feature: int = option(0, "the feature", positional=True)
    json: bool = option(False, "print one JSON object (statistics, examples with activations, histogram, links)")


@dataclass
class Steer:
    """A continuation of a prompt with one feature's decoder direction added at every position."""

    prompt: str = option("The news today is", "the text to continue")
    strength: float = option(2.0, "how much is added, in units of the feature's largest activation")
    max_new_tokens: int = option(30, "tokens generated, without steering and with it")


@dataclass
class ImportSAE:
    """An SAE saved in the SAELens layout (cfg.json + sae_weights.safetensors, any version) or as Gemma
    Scope's params.npz, added to the workspace."""

    path: str = option(
        "",
        "the SAE's folder (or its params.npz), hf:OWNER/REPO/PATH in the local Hugging Face cache, or "
        "saelens:RELEASE/SAE_ID (a SAELens release, resolved by its registry when sae-lens is installed)",
        positional=True,
    )
    layer: int | None = option(None, "the layer it reads, when cfg.json names no hook (1-based)")
    site: str | None = option(None, "the site it reads, when cfg.json names no hook", choices=tuple(settings.SITES))
    backbone: str | None = option(None, "the LM it reads (smollm2, a folder or a hub id), when cfg.json names none")
    norm_scaling_factor: float | None = option(
        None, "what SAELens multiplies its activations by (normalize_activations expected_average_only_in)"
    )
    dataset: str | None = option(None, "the dataset it belongs with (optional)")
    name: str | None = option(None, "its name in the workspace (none: imported <folder name>)")


@dataclass
class ExportSAE:
    """A trained SAE written in the SAELens layout."""

    model: int = option(0, "the SAE's model id", positional=True)
    out: str = option("", "the folder to write", required=True)


EVALUATIONS = ("core", "probing", "absorption", "labels", "explanations")


@dataclass
class Evaluate:
    """Evaluations of an SAE the field can compare (SAEBench's core set, with intervals), stored with it."""

    model: int = option(0, "the SAE's model id", positional=True)
    # explanations run an LLM over every chosen feature: minutes on a CPU, so asked for by name
    evaluations: list[str] = option(list(EVALUATIONS[:-1]), "which to run", choices=EVALUATIONS)
    dataset: str | None = option(None, "core: the dataset whose held-out texts it runs on (none: the SAE's own)")
    texts: int = option(64, "core: held-out texts the LM runs on, clean, spliced and zeroed")
    resamples: int = option(1000, "core: bootstrap resamples over the texts for each 95% interval")
    # Eight binary tasks with short prompts (entities, headlines, sentences, tweets) across kinds of
    # concept: a person's gender, grammaticality, sentiment, a headline's subject, click-bait, emotion, a
    # news topic, a sport. Each is read from the installed sae-probes package.
    probe_datasets: list[str] = option(
        [
            "5_hist_fig_ismale",
            "87_glue_cola",
            "92_glue_sst2",
            "21_headline_istrump",
            "105_click_bait",
            "149_twt_emotion_happiness",
            "139_news_class_Politics",
            "155_athlete_sport_basketball",
        ],
        "probing: sae-probes datasets (the SAE's own dataset's labels are added, one against the rest)",
    )
    # sae-probes trains on up to 1,024; on a CPU the LM's pass over the prompts is the cost
    probe_train: int = option(256, "probing: training texts per task, half of each class")
    probe_test: int = option(256, "probing: test texts per task, half of each class")
    # SAEBench reads every whole-word token of the vocabulary; 2,000 keep the LM's pass short on a CPU
    absorption_words: int = option(2000, "absorption: whole-word tokens of the LM's vocabulary, a fifth held out")
    explainer: str = option("smollm2", "explanations: the causal LM that explains and scores (a folder or hub id)")
    # a seeded sample: delphi too scores a sample; each feature costs 21 LLM prompts
    explain_features: int = option(20, "explanations: features explained and scored")
    json: bool = option(False, "print the stored figures as one JSON object")


@dataclass
class Compare:
    """Match two SAEs' features one to one (Hungarian matching on decoder cosine and activation correlation)."""

    a: int = option(0, "the first SAE's model id", positional=True)
    b: int = option(0, "the second SAE's model id", positional=True)
    tokens: int = option(8192, "shared captured tokens whose activations are correlated")
    threshold: float = option(0.7, "decoder cosine at which two features count as the same")
    json: bool = option(False, "print the summary and every feature's match as one JSON object")


# -- sharing and serving --------------------------------------------------------------------------------


@dataclass
class Export:
    """A bundle (a folder `serve --bundle` serves read-only) or a static site."""

    out: str | None = option(None, "the bundle folder to create (served by latentviz serve --bundle)")
    static: str | None = option(None, "a static site instead: plain files any static host serves")
    max_mb: float = option(settings.STATIC_MAX_MB, "with --static: refuse a site larger than this")
    datasets: list[str] | None = option(None, "datasets to include (none: all)")
    models: list[int] | None = option(None, "models to include (none: all of those datasets)")


@dataclass
class Serve:
    """The app on a workspace."""

    port: int = option(8501, "port to listen on")  # Streamlit's own default
    address: str = option("127.0.0.1", "interface to listen on (0.0.0.0: every one)")
    allow_writes: bool = option(False, "allow a writable app on a non-loopback address")
    allow_host: list[str] | None = option(
        None, "names a writable app answers to besides 127.0.0.1 and localhost (the Host its visitors use)"
    )
    read_only: bool = option(False, "open the workspace read-only (for shared demos)")
    bundle: str | None = option(None, "serve a bundle (latentviz export) read-only, after checking it")
    text_in_url: bool | None = option(
        None, "put typed text (searches, prompts) in page URLs so links reproduce them (default: yes, not for a bundle)"
    )
    bootstrap: bool = option(True, "build the default BBC News map in an empty workspace")
    worker: bool = option(True, "start a worker for queued jobs (without: run `latentviz worker` yourself)")


@dataclass
class Worker:
    """The app's queued jobs, run in this process."""

    jobs: int = option(1, "jobs run at once (each heavy job uses every core)")
    idle_exit: float | None = option(None, "exit after this many seconds with an empty queue")
    engine: Engine = field(default_factory=Engine)  # the jobs' encodes, captures and feature builds


# Each spec's defaults, for the package's functions and the pages
ENCODE, PROJECT, CLUSTER, WORKER, STEER = Encode(), Project(), Cluster(), Worker(), Steer()
EVALUATE, COMPARE = Evaluate(), Compare()
DECODING, SAMPLE, INTERPOLATE, TRAVERSE, ARITHMETIC = Decoding(), Sample(), Interpolate(), Traverse(), Arithmetic()
