"""Probes of exercise 07 (families compared): a learner's pixel-by-pixel sampler run with a
stand-in conditional where the sampler lives (returning the images and every call with the
canvas it was given), and a learner's table chooser run on a table that it might change.

The stand-in is a fixed function, so the check computes the exact samples itself; a probe
holds no reference and decides nothing.
"""

from __future__ import annotations

import math

import numpy as np


class Conditional:
    """A stand-in for a trained model: p(x_ij = 1 | the pixels before it) from the pixel to
    the left, the one above and the position. It records every call with a copy of the
    canvas it was given."""

    def __init__(self):
        self.calls: list[tuple[int, int]] = []
        self.canvases: list[np.ndarray] = []

    @staticmethod
    def probability(canvas: np.ndarray, i: int, j: int) -> np.ndarray:
        left = canvas[:, i, j - 1] if j > 0 else np.zeros(len(canvas))
        above = canvas[:, i - 1, j] if i > 0 else np.zeros(len(canvas))
        logit = -0.4 + 1.8 * left + 1.1 * above - 0.9 * left * above + 0.3 * math.sin(i + 2 * j)
        return 1.0 / (1.0 + np.exp(-logit))

    def __call__(self, canvas, i, j):
        canvas = np.array(canvas, np.float64)
        self.calls.append((int(i), int(j)))
        self.canvases.append(canvas)
        return self.probability(canvas, i, j)


def sample_pixels(sampler, uniforms) -> dict:
    """``sampler(conditional, uniforms)`` with the stand-in: {"out": the images, "calls":
    the (i, j) of each call, "canvases": the canvas of each call}."""
    conditional = Conditional()
    out = sampler(conditional, np.array(uniforms, np.float64))
    if hasattr(out, "numpy"):
        out = out.numpy()
    return {
        "out": np.asarray(out, np.float64),
        "calls": [list(call) for call in conditional.calls],
        "canvases": conditional.canvases,
    }


def choose_on_a_copy(chooser, table, **use) -> dict:
    """``chooser(rows, **use)`` on a copy of ``table``: {"answer": its answer, "rows": the
    rows as they are afterwards}."""
    rows = [dict(row) for row in table]
    return {"answer": chooser(rows, **use), "rows": rows}


PROBES = {"sample_pixels": sample_pixels, "choose_on_a_copy": choose_on_a_copy}
