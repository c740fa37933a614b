"""Byte-pair encoding (BPE): the tokenizer behind chat models, written out.

Notebook 04's GPT reads characters: 65 symbols, one per step. Chat models read
**tokens**, pieces of text learned from the data, so a step covers several characters
and the same context window holds more text. BPE (Sennrich et al., 2016, after Gage's
1994 compression scheme) learns them:

1. Start from the characters of the training text as the vocabulary.
2. Count every pair of neighbouring symbols; the most frequent pair becomes one new
   symbol (a **merge**), everywhere it occurs.
3. Repeat for as many merges as wanted. The vocabulary grows by one symbol per merge.

Merges never cross the boundaries of **chunks**, which split the text first (as GPT-2
does): a word with the spaces before it, a run of digits or of punctuation, or a run of
white space. So ``" the"`` can become one token, but no token spans two words.

To **encode** a new text, each chunk is split into characters and the learned merges are
applied in the order they were learned (the earliest merge first, wherever it applies).
**Decoding** joins the tokens' strings: ``decode(encode(text)) == text`` for any text
made of the training text's characters.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import re

import numpy as np

# A word with the spaces before it, a run of digits, of punctuation, or of white space.
CHUNK = re.compile(r" *[A-Za-z']+| *[0-9]+| *[^\sA-Za-z0-9']+|\s+")


def chunks(text: str) -> list[str]:
    """``text`` split into the pieces merges stay within; joined, they are ``text``."""
    return CHUNK.findall(text)


@dataclasses.dataclass(frozen=True)
class BPE:
    """A trained tokenizer: the base characters and the merges, in the order learned.

    Token ids: the characters first (sorted), then one id per merge.
    """

    alphabet: tuple[str, ...]
    merges: tuple[tuple[str, str], ...]

    @functools.cached_property
    def vocabulary(self) -> list[str]:
        """Each id's string."""
        return [*self.alphabet, *(a + b for a, b in self.merges)]

    @functools.cached_property
    def _ids(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.vocabulary)}

    @functools.cached_property
    def _rank(self) -> dict[tuple[str, str], int]:
        return {pair: i for i, pair in enumerate(self.merges)}

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    def split(self, chunk: str) -> list[str]:
        """One chunk as tokens: its characters, then the merges in the order learned."""
        missing = sorted(set(chunk) - set(self.alphabet))
        if missing:
            raise ValueError(
                f"The characters {missing} never occurred in the tokenizer's training text: "
                "train it on a text that has them."
            )
        symbols = list(chunk)
        while len(symbols) > 1:
            pairs = [
                (self._rank.get(pair, len(self._rank)), i)
                for i, pair in enumerate(itertools.pairwise(symbols))
            ]
            rank, i = min(pairs)
            if rank == len(self._rank):
                break  # no learned merge applies
            symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
        return symbols

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` (int32)."""
        cache: dict[str, list[int]] = {}
        ids = []
        for chunk in chunks(text):
            if chunk not in cache:
                cache[chunk] = [self._ids[token] for token in self.split(chunk)]
            ids.extend(cache[chunk])
        return np.asarray(ids, dtype=np.int32)

    def decode(self, ids) -> str:
        """The text of token ids."""
        return "".join(self.vocabulary[int(i)] for i in np.asarray(ids).reshape(-1))


def train_bpe(text: str, num_merges: int) -> BPE:
    """Learn up to ``num_merges`` merges from ``text`` (fewer if no pair occurs twice).

    Each step merges the most frequent pair of neighbouring symbols, counted over every
    chunk of the text (ties: the pair first in sorted order, so training is
    deterministic). The counts are kept up to date incrementally: a merge only recounts
    the chunks that hold the pair.
    """
    if num_merges < 0:
        raise ValueError(f"num_merges must be >= 0; got {num_merges}.")
    counted = collections.Counter(chunks(text))
    words = [list(chunk) for chunk in counted]  # each distinct chunk, as symbols
    weights = list(counted.values())  # how often it occurs
    pair_counts: collections.Counter = collections.Counter()
    holders: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
    for index, (symbols, weight) in enumerate(zip(words, weights, strict=True)):
        for pair in itertools.pairwise(symbols):
            pair_counts[pair] += weight
            holders[pair].add(index)

    merges = []
    for _ in range(num_merges):
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))
        if pair_counts[best] < 2:
            break
        merges.append(best)
        joined = best[0] + best[1]
        for index in sorted(holders.pop(best)):
            symbols, weight = words[index], weights[index]
            for pair in itertools.pairwise(symbols):  # forget this chunk's old pairs
                pair_counts[pair] -= weight
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(joined)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            words[index] = merged
            for pair in itertools.pairwise(merged):  # and count its new ones
                pair_counts[pair] += weight
                holders[pair].add(index)
    return BPE(alphabet=tuple(sorted(set(text))), merges=tuple(merges))


def compression(tokenizer: BPE, text: str) -> dict:
    """How much shorter ``text`` is in tokens than in characters."""
    tokens = len(tokenizer.encode(text))
    return {
        "characters": len(text),
        "tokens": tokens,
        "characters_per_token": len(text) / max(tokens, 1),
        "vocabulary": tokenizer.size,
    }
