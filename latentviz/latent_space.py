"""Working in a trained text VAE's latent space: reconstruct, sample from the prior, traverse a
direction, interpolate between sentences, add an attribute direction, find latent neighbours.

A `LatentSpace` holds the model and the posterior means of its dataset (stored at training time),
so the spreads, PCA directions and label means that these operations need are computed once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from latentviz import corpus, ops, settings
from latentviz.errors import LatentvizError
from latentviz.steps import ARITHMETIC, DECODING, DIRECTIONS, INTERPOLATE, SAMPLE, TRAVERSE
from latentviz.store import Store, StoreError


def mean_encoding(model_id: int) -> str:
    """The `backbone` name under which a VAE's posterior means are stored as an encoding."""
    return f"vae#{model_id}"


def logvar_encoding(model_id: int) -> str:
    return f"vae#{model_id} logvar"


@dataclass
class LatentSpace:
    store: Store
    model_id: int
    model: object  # a TextVAE, in eval mode
    dataset: str
    text_ids: np.ndarray  # (N,) ids of the dataset's texts, in the order of `means`
    means: np.ndarray  # (N, D) their posterior means

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @cached_property
    def texts(self) -> pd.DataFrame:
        return self.store.texts(self.dataset).set_index("id").loc[self.text_ids].reset_index()

    @cached_property
    def _pca(self) -> tuple[np.ndarray, np.ndarray]:
        """Principal directions (D, D) of the posterior means, as rows, and their standard deviations."""
        centred = self.means - self.means.mean(0)
        _, singular, rows = np.linalg.svd(centred, full_matrices=False)
        return rows, singular / np.sqrt(max(1, len(centred) - 1))

    def examples(self, n: int = 2) -> list[str]:
        """n short dataset sentences (8–20 words), from different labels where there are labels:
        sensible defaults for the pages' text boxes."""
        texts = self.texts[self.texts["text"].str.split().str.len().between(8, 20)]
        texts = texts if len(texts) >= n else self.texts
        if texts["label"].notna().any():
            texts = texts.groupby("label", sort=True).head(1)
        return texts["text"].head(n).tolist()

    # -- encode and decode ----------------------------------------------------------------------

    def latents(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log-variances (N, D) of texts."""
        import torch

        from latentviz import backbones

        if not texts or not all(t.strip() for t in texts):
            raise corpus.CorpusError("give a non-empty sentence to encode")
        tokens = self.model.vocab.encode(texts, self.model.config.max_len)
        if self.model.config.variant == "rnn":
            embeddings = torch.zeros(len(texts), 1)
        else:
            backbone = backbones.shared(settings.DEFAULT_BACKBONE, settings.cache_dir(self.store.path))
            embeddings = torch.from_numpy(backbones.encode(backbone, texts))
        with torch.no_grad():
            mu, logvar = self.model.encode(tokens, embeddings)
        return mu.numpy(), logvar.numpy()

    def decode(self, z: np.ndarray, method: str = DECODING.method, **options) -> list[str]:
        import torch

        return self.model.decode(torch.from_numpy(np.asarray(z, np.float32).reshape(-1, self.dim)), method, **options)

    def reconstruct(
        self, text: str, method: str = DECODING.method, *, from_mean: bool = True, seed: int = 0, **options
    ) -> str:
        """The sentence decoded from `text`'s posterior mean, or from one sample of its posterior."""
        mu, logvar = self.latents([text])
        z = mu if from_mean else mu + np.random.default_rng(seed).standard_normal(mu.shape) * np.exp(0.5 * logvar)
        return self.decode(z, method, seed=seed, **options)[0]

    def sample(self, n: int = SAMPLE.n, method: str = DECODING.method, seed: int = SAMPLE.seed, **options) -> list[str]:
        """Sentences decoded from n draws of the prior N(0, I)."""
        return self.decode(np.random.default_rng(seed).standard_normal((n, self.dim)), method, seed=seed, **options)

    # -- directions -------------------------------------------------------------------------------

    def labels(self) -> list[str]:
        return sorted(self.texts["label"].dropna().unique().tolist())

    def label_mean(self, label: str) -> np.ndarray:
        chosen = (self.texts["label"] == label).to_numpy()
        if not chosen.any():
            raise StoreError(
                f"no text of dataset {self.dataset!r} has label {label!r}; labels: {', '.join(self.labels()) or 'none'}"
            )
        return self.means[chosen].mean(0)

    def direction(
        self, kind: str = "dimension", index: int = 0, labels: tuple[str, str] | None = None
    ) -> tuple[np.ndarray, float]:
        """A unit direction in the latent space and the spread (σ) of the dataset's means along it:
        one latent dimension, a principal direction of the means, or mean z|label A − mean z|label B."""
        if kind == "dimension":
            if not 0 <= index < self.dim:
                raise LatentvizError(f"dimension {index} does not exist: the latent has dimensions 0..{self.dim - 1}")
            unit = np.eye(self.dim)[index]
        elif kind == "pca":
            if not 0 <= index < self.dim:
                raise LatentvizError(f"principal direction {index} does not exist: use 0..{self.dim - 1}")
            unit = self._pca[0][index]
        elif kind == "label":
            if not labels or len(labels) != 2 or labels[0] == labels[1]:
                raise LatentvizError("a label direction needs two different labels, A and B")
            difference = self.label_mean(labels[0]) - self.label_mean(labels[1])
            unit = difference / max(np.linalg.norm(difference), 1e-12)
        else:
            raise LatentvizError(f"unknown direction {kind!r}; use one of {', '.join(DIRECTIONS)}")
        return unit, float((self.means @ unit).std())

    def informative_dimensions(self, n: int = 5) -> list[int]:
        """The n dimensions whose posterior means vary most over the dataset (the live ones first)."""
        return np.argsort(-self.means.var(0))[:n].tolist()

    # -- operations -------------------------------------------------------------------------------

    def traverse(
        self,
        text: str,
        kind: str = "dimension",
        indices: list[int] = (0,),
        labels: tuple[str, str] | None = None,
        steps: int = TRAVERSE.steps,
        method: str = DECODING.method,
        **options,
    ) -> pd.DataFrame:
        """`text`'s posterior mean moved along each direction from −3σ to +3σ in `steps` steps, all
        decoded in one batch: direction (a name), offset (in σ), text. A label direction is one
        direction whatever `indices` says."""
        if kind == "label":
            directions = {f"{labels[0]} − {labels[1]}" if labels else "labels": self.direction(kind, 0, labels)}
        else:
            name = "dim" if kind == "dimension" else "PC"
            directions = {f"{name} {i}": self.direction(kind, i) for i in indices}
        mu, _ = self.latents([text])
        path = np.concatenate([ops.traverse(mu[0], unit, sigma, steps) for unit, sigma in directions.values()])
        return pd.DataFrame(
            {
                "direction": np.repeat(list(directions), steps),
                "offset": np.tile(np.linspace(-3, 3, steps), len(directions)),
                "text": self.decode(path, method, **options),
            }
        )

    def interpolate(
        self,
        start: str,
        end: str,
        steps: int = INTERPOLATE.steps,
        method: str = INTERPOLATE.method,
        decoding: str = DECODING.method,
        **options,
    ) -> tuple[pd.DataFrame, float, np.ndarray]:
        """Decodes along the path between two sentences' posterior means, the path's smoothness
        (mean word edit distance between consecutive decodes), and the path itself (steps, D)."""
        if method not in ("lerp", "slerp"):
            raise LatentvizError(f"unknown interpolation {method!r}; use lerp or slerp")
        mu, _ = self.latents([start, end])
        path = (ops.slerp if method == "slerp" else ops.lerp)(mu[0], mu[1], steps)
        decodes = self.decode(path, decoding, **options)
        return pd.DataFrame({"t": np.linspace(0, 1, steps), "text": decodes}), ops.smoothness(decodes), path

    def smoothness_reference(self) -> float:
        """Mean word edit distance between random pairs of the dataset's sentences (see ops)."""
        return ops.smoothness_reference(self.texts["text"].str.lower().tolist())

    def arithmetic(
        self,
        text: str,
        label_a: str,
        label_b: str,
        alphas=tuple(ARITHMETIC.alpha),
        method: str = DECODING.method,
        **options,
    ) -> pd.DataFrame:
        """z(text) + α·(mean z|A − mean z|B) for each α, decoded: alpha, text."""
        mu, _ = self.latents([text])
        shift = self.label_mean(label_a) - self.label_mean(label_b)
        points = np.stack([ops.attribute_shift(mu[0], shift, np.zeros_like(shift), a) for a in alphas])
        return pd.DataFrame({"alpha": list(alphas), "text": self.decode(points, method, **options)})

    def encoding_id(self) -> int:
        """The stored encoding of this VAE's posterior means (what its Latent Map projects)."""
        found = self.store.encodings(self.dataset)
        return int(found[found["backbone"] == mean_encoding(self.model_id)]["id"].iloc[0])

    def map_id(self) -> int | None:
        """The newest map (projection) of this VAE's posterior means, if one was made."""
        maps = self.store.projections(self.dataset)
        maps = maps[maps["backbone"] == mean_encoding(self.model_id)]
        return None if maps.empty else int(maps["id"].max())

    def neighbours(self, z: np.ndarray, k: int = 10) -> pd.DataFrame:
        """The k dataset texts whose posterior means are nearest (Euclidean) to z: id, text, label, distance."""
        distances = np.linalg.norm(self.means - np.asarray(z)[None], axis=1)
        order = np.argsort(distances)[:k]
        return self.texts.iloc[order].assign(distance=distances[order]).reset_index(drop=True)


def open_space(store: Store, model_id: int) -> LatentSpace:
    """The latent space of the trained VAE with this id."""
    from latentviz import backbones
    from latentviz.models import base

    row = store.trained_model(model_id, "vae", "VAE")
    model = base.load(row["checkpoint"]).eval()
    if model.config.variant == "pretrained-decoder":
        model.attach_lm(*backbones.causal_lm(model.config.decoder_lm, settings.cache_dir(store.path)))
    space = LatentSpace(
        store, model_id, model, row["dataset"], np.zeros(0, int), np.zeros((0, model.config.latent_dim))
    )
    space.text_ids, space.means = store.vectors(space.encoding_id())
    return space
