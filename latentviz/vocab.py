"""A word-level vocabulary for the text decoders (Bowman et al. 2016 style): lower-cased words and
punctuation, the most frequent kept, the rest mapped to <unk>. A token is one such word or mark;
perplexities in latentviz count these tokens plus the end-of-sentence mark."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import torch

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = [PAD, UNK, BOS, EOS]
# A number stays one token with its decimal or thousands separators and a unit ("1.3bn", "1,000",
# "10:30"); then words (with an apostrophe's tail); then any other mark on its own.
_WORD = re.compile(r"\d+(?:[.,:]\d+)*(?:[a-z]+)?|[a-z0-9]+(?:['’][a-z]+)?|[^\sa-z0-9]")
_OPENING = "($£€\"'"  # marks never attached to the word before them


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Vocab:
    def __init__(self, tokens: list[str]):
        if tokens[:4] != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")
        self.tokens = tokens
        self.index = {token: i for i, token in enumerate(tokens)}

    @classmethod
    def build(cls, texts: Iterable[str], size: int = 10_000, min_count: int = 2) -> Vocab:
        counts = Counter(word for text in texts for word in words(text))
        common = [w for w, c in counts.most_common() if c >= min_count][: size - len(SPECIALS)]
        return cls(SPECIALS + common)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, texts: list[str], max_len: int) -> torch.Tensor:
        """(N, max_len + 2) ids: <bos> words <eos>, cut to max_len words, padded with <pad>."""
        out = torch.zeros(len(texts), max_len + 2, dtype=torch.long)
        unk = self.index[UNK]
        for row, text in enumerate(texts):
            ids = [self.index[BOS]] + [self.index.get(w, unk) for w in words(text)[:max_len]] + [self.index[EOS]]
            out[row, : len(ids)] = torch.tensor(ids)
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Words up to the first <eos>, joined with spaces (punctuation attached to the word before)."""
        out: list[str] = []
        for i in ids:
            token = self.tokens[int(i)]
            if token == EOS:
                break
            if token in (PAD, BOS):
                continue
            if out and (out[-1].endswith("-") or out[-1] in ("$", "£", "€", "(")):  # "40-year-old", "$1.3bn", "(a"
                out[-1] += token
            elif out and re.fullmatch(r"[^\w\s]", token) and token not in _OPENING:
                out[-1] += token
            else:
                out.append(token)
        return " ".join(out)
