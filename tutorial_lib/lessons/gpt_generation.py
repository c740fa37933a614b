"""Notebook 04b's measurement of generation: characters per second, with and without the
key-value cache (:meth:`tutorial_lib.transformer.MultiHeadSelfAttention.call_cached`).

Not part of the GPT family itself (:mod:`tutorial_lib.transformer`): the lesson's experiment.
"""

from __future__ import annotations

from tutorial_lib import transformer
from tutorial_lib.training import Timer


def generation_speed(model, prompt_ids, num_tokens: int, *, use_cache: bool) -> float:
    """Characters per second of :func:`tutorial_lib.transformer.generate` (after one
    warm-up call that traces it)."""
    transformer.generate(model, prompt_ids, 2, use_cache=use_cache)
    with Timer() as timer:
        transformer.generate(model, prompt_ids, num_tokens, use_cache=use_cache)
    return num_tokens / timer.seconds
