"""Notebook 06's flow on the plane: a RealNVP of two coordinates, for pictures.

Not a model of the registry (:mod:`tutorial_lib.flows` holds the image flow): the lesson
trains it on two moons in seconds and draws what a flow does, :math:`p(x)` exactly
(:func:`density_grid`) and the grid of :math:`z`-space bent into :math:`x`-space
(:func:`map_lines`). Exercise 06 builds its own flows from :class:`PlaneFlow`.

:data:`MOONS` holds the lesson's sizes per profile.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tutorial_lib import flows
from tutorial_lib.gradients import GradientStepModel

# Per profile: how many moon points the lesson trains the plane flow on, for how many epochs.
MOONS = {
    "fast": {"points": 512, "epochs": 2},
    "cpu": {"points": 4000, "epochs": 60},
    "gpu": {"points": 20_000, "epochs": 60},
}


@keras.saving.register_keras_serializable(package="tutorial_lib")
class PlaneFlow(GradientStepModel):
    r"""A RealNVP on points of the plane: ``couplings`` affine couplings with
    coordinate masks (the kept coordinate alternates), dense networks of width
    ``hidden``. :meth:`log_density` is :math:`\log p(x)` exactly (nats);
    ``fit`` minimises its negative mean."""

    def __init__(self, couplings: int = 6, hidden: int = 64, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.couplings, self.hidden, self.seed = couplings, hidden, seed
        self.flow = flows.FlowSequence(
            [flows.AffineCoupling("coordinate", i % 2, hidden, 1) for i in range(couplings)]
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, x):
        return self.log_density(x)

    def log_density(self, x):
        z, log_det = self.flow(ops.cast(x, "float32"))
        return flows.standard_normal_log_density(z) + log_det

    def inverse(self, z):
        return self.flow.inverse(ops.cast(z, "float32"))

    def train_step(self, x):
        x = x[0] if isinstance(x, tuple | list) else x
        loss, _, _ = self.descend(
            self.optimizer, self.trainable_weights, lambda: (-ops.mean(self.log_density(x)), ())
        )
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def get_config(self):
        return {
            **super().get_config(),
            "couplings": self.couplings,
            "hidden": self.hidden,
            "seed": self.seed,
        }


def build_2d_flow(couplings: int = 6, hidden: int = 64, learning_rate: float = 2e-3) -> PlaneFlow:
    """A compiled :class:`PlaneFlow` (Adam), built for points of shape (2,)."""
    model = PlaneFlow(couplings, hidden, name="plane_flow")
    model(ops.zeros((1, 2)))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def sample_2d(model: PlaneFlow, num: int, *, seed: int = 0) -> np.ndarray:
    """``num`` points: standard normal draws through the inverse flow."""
    z = np.random.default_rng(seed).standard_normal((num, 2)).astype(np.float32)
    return ops.convert_to_numpy(model.inverse(z))


def density_grid(model: PlaneFlow, limits=(-3.0, 3.0, -3.0, 3.0), n: int = 200):
    """``(xs, ys, density)``: the model's density :math:`p(x)` on an n x n grid."""
    xs = np.linspace(limits[0], limits[1], n)
    ys = np.linspace(limits[2], limits[3], n)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
    log_p = ops.convert_to_numpy(model.log_density(grid))
    return xs, ys, np.exp(log_p).reshape(n, n)


def grid_lines(limits=(-3.0, 3.0, -3.0, 3.0), lines: int = 13, points: int = 200) -> list:
    """Horizontal and vertical lines over ``limits``, each an array of shape (points, 2)."""
    x_min, x_max, y_min, y_max = limits
    along_x = np.linspace(x_min, x_max, points)
    along_y = np.linspace(y_min, y_max, points)
    result = [
        np.stack([along_x, np.full(points, y)], axis=1) for y in np.linspace(y_min, y_max, lines)
    ]
    result += [
        np.stack([np.full(points, x), along_y], axis=1) for x in np.linspace(x_min, x_max, lines)
    ]
    return [line.astype(np.float32) for line in result]


def map_lines(model: PlaneFlow, lines: list) -> list:
    """Each line of points of z-space carried to x-space by the inverse flow."""
    return [ops.convert_to_numpy(model.inverse(line)) for line in lines]
