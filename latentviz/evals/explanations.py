"""LLM explanations of SAE features, scored by delphi's detection and fuzzing scorers (Paulo et al., 2024,
"Automatically Interpreting Millions of Features in Large Language Models"), with a local causal LM.

- explainer: shown the feature's top examples as windows of WINDOW tokens, the tokens where it fires at
  ≥ HIGHLIGHT of the example's maximum between << and >> (delphi's format), the LM writes one short
  explanation (greedy decoding).
- detection: shown a label and one window, unmarked, the LM answers 1 (the feature fires in it) or 0.
  Positives are the feature's interval examples (never shown to the explainer), negatives windows of
  texts where it never fired.
- fuzzing: shown a label and one window with tokens marked, the LM answers whether every marked token
  fits the label: an interval example with its firing tokens marked (1), or a window where it never
  fired with as many random tokens marked as the examples mark on average (0; delphi's default fuzzing).

Each answer is read as P(1) / (P(0) + P(1)) from the next-token distribution (delphi's log-prob mode,
one example per prompt); a scorer's score is the balanced accuracy at 0.5 (what delphi reports as
accuracy) and its AUROC. Both the top-words label and the LLM's explanation are scored, on the same
windows, so the two can be compared; the explanation also gets the embedding scorer (labels.py).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import torch

from latentviz import backbones, metrics, runs, settings
from latentviz.errors import LatentvizError
from latentviz.evals.labels import EMBEDDER
from latentviz.features.reads import dashboard
from latentviz.progress import Progress, quiet
from latentviz.store import Store

WINDOW = 32  # tokens around an example, as delphi's contexts
HIGHLIGHT = 0.3  # of the example's maximum: delphi's threshold for a marked token
TOP = 10  # top examples the explainer sees
PER_SIDE = 5  # held-out windows that fire, and as many that do not, per feature and scorer
MAX_EXPLANATION_TOKENS = 24
SCORERS = ("detection", "fuzzing")  # the LLM scorers
# what each label gets, in the order the summary lists them
SCORE_NAMES = ("detection", "detection_auroc", "fuzzing", "fuzzing_auroc", "embedding")

# Tried on SmolLM2-135M-Instruct: a worked example in the prompt is copied back verbatim, and a trailing
# "The feature:" is echoed; this plainer instruction gives a topical phrase where there is one.
EXPLAIN_SYSTEM = (
    "Words in the examples are marked between << and >>. Say in a few words what the marked words have in common."
)
DETECTION_SYSTEM = (
    "A feature of a language model is described below. Answer 1 if the text contains something the "
    "description fits, else 0. Answer with the digit only."
)
FUZZING_SYSTEM = (
    "A feature of a language model is described below. In the text, tokens are marked between << and >>. "
    "Answer 1 if every marked token fits the description, else 0. Answer with the digit only."
)


def window(context: list[tuple[str, float]], position: int) -> list[tuple[str, float]]:
    """The WINDOW tokens around `position`, which sits a quarter from the end (delphi's placement)."""
    start = max(0, position - (WINDOW - WINDOW // 4))
    return context[start : start + WINDOW]


def marked(tokens: list[str], marks: list[bool]) -> str:
    """The tokens joined, each run of marked ones between << and >>."""
    parts, inside = [], False
    for token, mark in zip(tokens, marks, strict=True):
        if mark != inside:
            parts.append("<<" if mark else ">>")
            inside = mark
        parts.append(token)
    return "".join(parts + ([">>"] if inside else [])).strip()


def firing_marks(values: list[float]) -> list[bool]:
    """Which tokens of an example are marked: activation ≥ HIGHLIGHT of its maximum (and above 0)."""
    top = max(values, default=0.0)
    return [top > 0 and value >= HIGHLIGHT * top for value in values]


def random_marks(length: int, count: int, rng: np.random.Generator) -> list[bool]:
    """`count` random tokens of `length` marked: delphi's false positives for fuzzing."""
    chosen = set(rng.choice(length, size=min(count, length), replace=False).tolist())
    return [i in chosen for i in range(length)]


class Judge:
    """A causal LM asked for explanations and for 1/0 answers."""

    def __init__(self, lm, tokenizer):
        self.lm, self.tokenizer = lm, tokenizer
        self.digits = [tokenizer.encode(digit, add_special_tokens=False)[-1] for digit in ("0", "1")]
        self.prompts = 0

    def _prompt(self, system: str, user: str) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{system}\n\n{user}\nAnswer:"  # a base model: the instruction as plain text

    @torch.inference_mode()
    def explain(self, examples: list[str]) -> str:
        """One short explanation of the marked examples (as many as fit the LM's context)."""
        room = getattr(self.lm.config, "max_position_embeddings", 2048) - MAX_EXPLANATION_TOKENS
        for shown in range(len(examples), 0, -1):
            user = "\n".join(f"{i + 1}. {text}" for i, text in enumerate(examples[:shown]))
            ids = self._ids([self._prompt(EXPLAIN_SYSTEM, user)])
            if ids["input_ids"].shape[1] <= room:
                break
        out = self.lm.generate(
            **ids, max_new_tokens=MAX_EXPLANATION_TOKENS, do_sample=False, pad_token_id=self.tokenizer.pad_token_id
        )
        self.prompts += 1
        return clean_explanation(self.tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))

    def _ids(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask of the prompts (right-padded), on the LM's device."""
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {name: batch[name].to(self.lm.device) for name in ("input_ids", "attention_mask")}

    @torch.inference_mode()
    def yes_probability(self, system: str, label: str, texts: list[str]) -> np.ndarray:
        """P(1) / (P(0) + P(1)) of the answer to each text, in one batch."""
        prompts = [self._prompt(system, f"Description: {label}\nText: {text}") for text in texts]
        batch = self._ids(prompts)
        logits = self.lm(**batch).logits
        last = batch["attention_mask"].sum(dim=1) - 1  # right padding: each prompt's own last token
        answer = logits[torch.arange(len(texts)), last][:, self.digits].float().softmax(dim=-1)
        self.prompts += len(texts)
        return answer[:, 1].cpu().numpy()


def clean_explanation(text: str) -> str:
    """The explanation's first sentence, without a preamble that restates the question ("The marked words
    have in common that they are ..."), quotes or the markers."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = re.split(r"(?<=[a-z0-9])\.\s", line)[0]
    line = re.sub(
        r"^(\[?explanation\]?:|the feature( is)?:?|the marked words (have in common|are|all)( that)?( they are)?)\s*",
        "",
        line,
        flags=re.IGNORECASE,
    )
    line = line.replace("<<", "").replace(">>", "").strip(" \"'.:")
    return line if re.search(r"[^\W\d_]{3}", line) else ""  # a bare "1." (an echo of the list) explains nothing


def score(judge: Judge, encoder, label: str, activating: list, silent: list, rng) -> dict[str, float]:
    """Detection, fuzzing and embedding scores of one label on the same windows: {scorer: score,
    scorer_auroc: AUROC} for the LLM scorers (the score: balanced accuracy), {"embedding": AUROC}.
    `activating`: (tokens, values) windows where the feature fires; `silent`: token windows where it does not."""
    truth = np.r_[np.ones(len(activating)), np.zeros(len(silent))]
    plain = ["".join(tokens).strip() for tokens, _ in activating] + ["".join(tokens).strip() for tokens in silent]
    wrong_marks = max(1, math.ceil(np.mean([sum(firing_marks(values)) for _, values in activating])))
    fuzzed = [marked(tokens, firing_marks(values)) for tokens, values in activating] + [
        marked(tokens, random_marks(len(tokens), wrong_marks, rng)) for tokens in silent
    ]
    found = {}
    for scorer, system, texts in (("detection", DETECTION_SYSTEM, plain), ("fuzzing", FUZZING_SYSTEM, fuzzed)):
        probability = judge.yes_probability(system, label, texts)
        found[scorer] = metrics.balanced_accuracy(probability, truth)
        found[f"{scorer}_auroc"] = metrics.auroc(probability[truth == 1], probability[truth == 0])
    label_vector, *text_vectors = backbones.encode(encoder, [label, *plain])
    found["embedding"] = metrics.embedding_score(
        label_vector, np.stack(text_vectors[: len(activating)]), np.stack(text_vectors[len(activating) :])
    )
    return found


def evaluate(
    store: Store, model_id: int, explainer: str, features: int, progress: Progress = quiet, embedder: str = EMBEDDER
) -> tuple[dict, int]:
    """Explain `features` features (a seeded sample of the labelled ones with enough held-out examples)
    with the causal LM `explainer`, score the explanation and the top-words label with each scorer on the
    same windows, and store it all: (summary, prompts the LM ran)."""
    if not store.has_feature_dashboards(model_id):
        raise LatentvizError(f"SAE {model_id} has no feature dashboards yet: build them first")
    row = store.trained_model(model_id, "sae", "SAE")
    capture_id = runs.facts(row)["capture"]
    stats = store.feature_summaries(model_id)
    examples = store.stored_examples(model_id)
    held = examples[examples["bucket"] >= 0].groupby("feature")["text_id"].nunique()
    candidates = stats[(stats["label"] != "") & stats["feature"].isin(held[held >= PER_SIDE].index)]
    if candidates.empty:
        raise LatentvizError(f"no labelled feature has {PER_SIDE} or more interval examples to score on")
    rng = np.random.default_rng(settings.SEED)
    shuffled = candidates.iloc[rng.permutation(len(candidates))]  # a seeded sample, not the best features
    cache = settings.cache_dir(store.path)
    judge, encoder = Judge(*backbones.causal_lm(explainer, cache)), backbones.shared(embedder, cache)
    pool = store.capture_text_ids(capture_id)
    rows = []
    for feature, label in shuffled[["feature", "label"]].itertuples(index=False):
        if len(rows) == features:
            break
        progress(len(rows), features, f"explaining and scoring {features} features with {explainer}")
        top, activating = [], []
        for example in dashboard(store, model_id, capture_id, int(feature)).examples.itertuples():
            tokens, values = zip(*window(example.context, example.position), strict=True)
            if example.bucket == -1:
                top.append(marked(list(tokens), firing_marks(list(values))))
            elif len(activating) < PER_SIDE:
                activating.append((list(tokens), list(values)))
        silent = _silent_windows(store, model_id, capture_id, int(feature), pool, len(activating), rng)
        if len(silent) < 2:
            continue  # too few places where it is silent to score against
        explanation = judge.explain(top[:TOP])
        scored = {"label": score(judge, encoder, label.replace(" · ", ", "), activating, silent, rng)}
        if explanation:
            scored["explanation"] = score(judge, encoder, explanation, activating, silent, rng)
        rows.append((int(feature), explanation, scored))
    if not rows:
        raise LatentvizError("no labelled feature is silent in enough places to score an explanation against")
    progress(features, features, "scored")
    for scorer in SCORERS:  # the top-words label's scores, beside its embedding score from labels.py
        scores = pd.DataFrame([(feature, s["label"][scorer]) for feature, _, s in rows], columns=["feature", "score"])
        store.set_label_scores(model_id, scorer, scores)
    explained = pd.DataFrame(
        [{"feature": feature, "explanation": text, **s["explanation"]} for feature, text, s in rows if text]
    )
    store.set_explanations(model_id, explainer, explained)
    summary = {"explainer": explainer, "features": len(rows), "explained": len(explained), "per_side": PER_SIDE}
    for scorer in SCORE_NAMES:
        summary[f"label_{scorer}"] = float(np.mean([s["label"][scorer] for _, _, s in rows]))
        summary[f"explanation_{scorer}"] = float(explained[scorer].mean()) if len(explained) else None
    summary["shown"] = [{"feature": feature, "explanation": text} for feature, text, _ in rows[:5]]
    return summary, judge.prompts


def _silent_windows(store: Store, model_id: int, capture_id: int, feature: int, pool: np.ndarray, count: int, rng):
    """`count` token windows, from random texts, in which the feature fires on no token (delphi's
    non-activating contexts): a text it fires in still gives a window away from where it fires."""
    texts = [int(t) for t in rng.choice(pool, size=min(len(pool), 3 * count), replace=False)]
    tokens = store.text_tokens(capture_id, texts)
    firing = store.feature_in_texts(model_id, feature, texts).groupby("text_id")["position"].agg(set)
    out = []
    for text_id, group in tokens.groupby("text_id", sort=False):
        pieces, positions = group["token"].fillna("").tolist(), group["position"].tolist()
        fired = firing.get(text_id, set())
        starts = [
            s for s in range(max(1, len(pieces) - WINDOW + 1)) if not fired.intersection(positions[s : s + WINDOW])
        ]
        if starts:
            start = starts[int(rng.integers(len(starts)))]
            out.append(pieces[start : start + WINDOW])
        if len(out) == count:
            break
    return out


def summary_table(figures: dict) -> pd.DataFrame:
    """The stored summary as scorer × (top-words label, LLM explanation) means."""
    return pd.DataFrame(
        {
            "scorer": list(SCORE_NAMES),
            "top-words label": [figures[f"label_{name}"] for name in SCORE_NAMES],
            "LLM explanation": [figures[f"explanation_{name}"] for name in SCORE_NAMES],
        }
    )


def explained_features(store: Store, model_id: int) -> pd.DataFrame:
    """Each explained feature: its top-words label, the LLM's explanation and the scores of both."""
    scores = store.label_scores(model_id).pivot(index="feature", columns="scorer", values="score")
    labels = store.feature_summaries(model_id).set_index("feature")["label"]
    found = store.explanations(model_id).set_index("feature")
    return pd.DataFrame(
        {
            "label": labels.reindex(found.index),
            "label detection": scores.reindex(found.index).get("detection"),
            "label fuzzing": scores.reindex(found.index).get("fuzzing"),
            "explanation": found["explanation"],
            "explanation detection": found["detection"],
            "explanation fuzzing": found["fuzzing"],
            "explanation embedding": found["embedding"],
        }
    ).reset_index()
