"""Probes of exercise 05 (diffusion): a learner's DDIM sampler run with a stand-in v network
where the sampler lives, returning its samples and every call the network received.

The stand-ins are fixed functions, so the check computes their exact DDIM trajectory itself;
a probe holds no reference and decides nothing.
"""

from __future__ import annotations

import numpy as np


def _numbers(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


class RecordingV:
    """A stand-in v network, v = (0.3 + 0.01 t) * x_t, that records each call's steps and
    the shape of its ``t`` argument."""

    def __init__(self):
        self.steps, self.t_shapes = [], []

    def __call__(self, x, t):
        x = _numbers(x)
        steps = np.broadcast_to(_numbers(t), (len(x),)) if np.ndim(t) <= 1 else _numbers(t)
        self.steps.append(np.array(steps, dtype=np.float64).ravel())
        self.t_shapes.append(list(np.shape(t)))
        return (0.3 + 0.01 * steps.reshape((-1,) + (1,) * (x.ndim - 1))) * x


class OracleV:
    """The exact v for data that is always ``point``: (sqrt(ab) x_t - point) / sqrt(1 - ab)."""

    def __init__(self, point, alpha_bars):
        self.point, self.alpha_bars = _numbers(point), _numbers(alpha_bars)

    def __call__(self, x, t):
        x = _numbers(x)
        steps = np.broadcast_to(np.asarray(t), (len(x),)).astype(np.int64)
        ab = self.alpha_bars[steps].reshape((-1,) + (1,) * (x.ndim - 1))
        return (np.sqrt(ab) * x - self.point) / np.sqrt(1.0 - ab)


def ddim_v(sampler, x_T, steps, alpha_bars, point=None) -> dict:
    """``sampler(network, x_T, steps, alpha_bars)`` with the recording network (or the oracle
    for ``point``): {"out": the samples, "steps": the steps of each call (one row per
    example), "t_shapes": the shape of each call's t}."""
    network = RecordingV() if point is None else OracleV(point, alpha_bars)
    out = sampler(network, np.array(x_T, dtype=np.float32), np.asarray(steps, np.int64), alpha_bars)
    report = {"out": _numbers(out)}
    if point is None:
        report.update(steps=network.steps, t_shapes=network.t_shapes)
    return report


PROBES = {"ddim_v": ddim_v}
