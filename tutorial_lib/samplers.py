r"""Samplers: how a trained denoiser turns noise into data, one small class each.

Diffusion (:mod:`tutorial_lib.diffusion`) and flow matching
(:mod:`tutorial_lib.flow_matching`) train a network on noisy data; both then
generate by starting from pure noise and taking steps back to data. A sampler
says which steps and how:

* :meth:`Sampler.times` lists the pairs ``(t, t_next)`` of its path;
* :meth:`Sampler.step` takes one of them, ``x -> x_next``, calling
  ``predict(x, t)`` (the network's output at ``x`` and ``t``) as often as it needs;
* :meth:`Sampler.network_time` is the time input the network sees at ``t``;
* :meth:`Sampler.run` is the one loop that drives any sampler.

A lesson can show one ``step``; a new sampler is one class, added to
:data:`SAMPLERS` by :func:`register`, and the command line and ``sample`` of its
family then accept its name.

**Diffusion's samplers** walk a noise schedule (:class:`NoiseSchedule`,
:func:`make_schedule`) at integer steps ``t = T-1 .. 0``. Ancestral *DDPM*
(:func:`ddpm_step`) takes every step through the posterior
:math:`q(x_{t-1} \mid x_t, \hat x_0)`; *DDIM* (:func:`ddim_step`, Song et al.,
2021) jumps between any decreasing subset of steps, deterministic with
:math:`\eta = 0`. Both take a noise estimate :math:`\hat\epsilon`; a network that
predicts the velocity :math:`v` (``prediction="v"``) is converted by the sampler
(:meth:`DiffusionSampler.epsilon`).

**Flow matching's samplers** solve :math:`dx/dt = v(x, t)` from :math:`t = 0`
(noise) to :math:`t = 1` (data): Euler's method and Heun's.

Indices: the code counts diffusion steps ``t = 0 .. T-1`` (array positions); step
``t`` here is step :math:`t + 1` of the papers, so ``alpha_bars[0]`` is
:math:`\bar\alpha_1 = 1 - \beta_1`. The network sees the step as a time in [0, 1],
:math:`(t + 1) / T` (:func:`time_of`).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import ClassVar

import numpy as np
from keras import ops

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("epsilon", "v")
PROCESSES = ("diffusion", "flow")  # what a sampler walks: a noise schedule, or an ODE in time


# --------------------------------------------------------------------------
# The noise schedule of diffusion, and the time its network sees
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class NoiseSchedule:
    r"""A noise schedule with everything the model and the samplers need, precomputed.

    All arrays have shape ``(T,)`` (float64), indexed by ``t = 0 .. T-1``:

    * ``betas`` :math:`\beta_t`, ``alphas`` :math:`\alpha_t = 1 - \beta_t`;
    * ``alpha_bars`` :math:`\bar\alpha_t = \prod_{s \le t} \alpha_s` and
      ``alpha_bars_prev`` :math:`\bar\alpha_{t-1}` (1 before the first step);
    * ``posterior_variances`` :math:`\tilde\beta_t = \beta_t (1 - \bar\alpha_{t-1}) / (1 - \bar\alpha_t)`,
      the variance of :math:`q(x_{t-1} \mid x_t, x_0)`, and its mean's coefficients
      ``posterior_mean_x0`` :math:`\beta_t \sqrt{\bar\alpha_{t-1}} / (1 - \bar\alpha_t)` and
      ``posterior_mean_xt`` :math:`(1 - \bar\alpha_{t-1}) \sqrt{\alpha_t} / (1 - \bar\alpha_t)`.
    """

    kind: str
    betas: np.ndarray
    alphas: np.ndarray
    alpha_bars: np.ndarray
    alpha_bars_prev: np.ndarray
    posterior_variances: np.ndarray
    posterior_mean_x0: np.ndarray
    posterior_mean_xt: np.ndarray

    @property
    def timesteps(self) -> int:
        return len(self.betas)

    def snr(self) -> np.ndarray:
        r"""Signal-to-noise ratio :math:`\bar\alpha_t / (1 - \bar\alpha_t)` of every step."""
        return self.alpha_bars / (1.0 - self.alpha_bars)


def linear_betas(timesteps: int, start: float = 1e-4, end: float = 0.02) -> np.ndarray:
    r"""DDPM's linear schedule, :math:`\beta` from ``start`` to ``end`` for :math:`T = 1000`.

    For another :math:`T` both ends are scaled by :math:`1000 / T` (Nichol &
    Dhariwal, 2021), so the chain still ends in almost pure noise.
    """
    scale = 1000.0 / timesteps
    return np.linspace(scale * start, min(scale * end, 0.999), timesteps, dtype=np.float64)


def cosine_betas(timesteps: int, offset: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    r"""The cosine schedule (Nichol & Dhariwal, 2021):
    :math:`\bar\alpha(t) = f(t) / f(0)`, :math:`f(t) = \cos^2\!\big(\frac{t/T + s}{1 + s}\,\frac{\pi}{2}\big)`,
    and :math:`\beta_t = 1 - \bar\alpha(t) / \bar\alpha(t-1)`, capped at ``max_beta``.

    :math:`\bar\alpha` falls slowly at both ends and about linearly in between,
    so fewer steps are wasted on nearly pure noise than with the linear schedule.
    """
    steps = np.arange(timesteps + 1, dtype=np.float64) / timesteps
    f = np.cos((steps + offset) / (1.0 + offset) * math.pi / 2.0) ** 2
    alpha_bars = f / f[0]
    return np.clip(1.0 - alpha_bars[1:] / alpha_bars[:-1], 0.0, max_beta)


def make_schedule(kind: str = "cosine", timesteps: int = 1000) -> NoiseSchedule:
    """The ``linear`` or ``cosine`` schedule of ``timesteps`` steps, every quantity precomputed."""
    if kind not in SCHEDULES:
        raise ValueError(f"Unknown noise schedule {kind!r}; choose one of {SCHEDULES}.")
    if timesteps < 2:
        raise ValueError(f"A schedule needs at least 2 steps; got timesteps={timesteps}.")
    betas = linear_betas(timesteps) if kind == "linear" else cosine_betas(timesteps)
    alphas = 1.0 - betas
    alpha_bars = np.cumprod(alphas)
    alpha_bars_prev = np.concatenate([[1.0], alpha_bars[:-1]])
    return NoiseSchedule(
        kind=kind,
        betas=betas,
        alphas=alphas,
        alpha_bars=alpha_bars,
        alpha_bars_prev=alpha_bars_prev,
        posterior_variances=betas * (1.0 - alpha_bars_prev) / (1.0 - alpha_bars),
        posterior_mean_x0=betas * np.sqrt(alpha_bars_prev) / (1.0 - alpha_bars),
        posterior_mean_xt=(1.0 - alpha_bars_prev) * np.sqrt(alphas) / (1.0 - alpha_bars),
    )


def time_of(t, timesteps: int):
    """Step index ``t`` (0 .. T-1) as the network's time input in (0, 1]: :math:`(t + 1) / T`
    (float32; a tensor of steps gives a tensor of times)."""
    return (ops.cast(t, "float32") + 1.0) / float(timesteps)


# --------------------------------------------------------------------------
# One step of each diffusion sampler, as functions of the schedule
# --------------------------------------------------------------------------


def sampling_steps(timesteps: int, steps: int) -> np.ndarray:
    """``steps`` step indices from ``T - 1`` down to 0, evenly spaced (DDIM's subsequence)."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must lie in [1, {timesteps}] (the model's T); got {steps}.")
    return np.unique(np.linspace(0, timesteps - 1, steps).round().astype(np.int64))[::-1]


def predict_x0(schedule: NoiseSchedule, xt, eps, t: int) -> np.ndarray:
    r"""Invert the forward process with predicted noise:
    :math:`\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\, \hat\epsilon) / \sqrt{\bar\alpha_t}`."""
    ab = schedule.alpha_bars[t]
    return (xt - np.sqrt(1.0 - ab) * eps) / np.sqrt(ab)


def ddpm_step(schedule: NoiseSchedule, xt, eps, t: int, noise, clip_range=None) -> np.ndarray:
    r"""One ancestral step :math:`x_t \to x_{t-1}`: estimate :math:`\hat x_0` (clipped
    to ``clip_range``), then draw from :math:`q(x_{t-1} \mid x_t, \hat x_0)`, i.e.
    its mean plus :math:`\sqrt{\tilde\beta_t}` times ``noise``. At ``t = 0`` the
    variance is 0: the result is the mean."""
    x0 = predict_x0(schedule, xt, eps, t)
    if clip_range is not None:
        x0 = np.clip(x0, -clip_range, clip_range)
    mean = schedule.posterior_mean_x0[t] * x0 + schedule.posterior_mean_xt[t] * xt
    return (mean + np.sqrt(schedule.posterior_variances[t]) * noise).astype(np.float32)


def ddim_step(
    schedule: NoiseSchedule,
    xt,
    eps,
    t: int,
    t_next: int,
    eta: float = 0.0,
    noise=None,
    clip_range=None,
) -> np.ndarray:
    r"""One DDIM step from step ``t`` to an earlier ``t_next`` (``-1``: to clean data).

    .. math::  x_{s} = \sqrt{\bar\alpha_s}\, \hat x_0
               + \sqrt{1 - \bar\alpha_s - \sigma^2}\; \hat\epsilon + \sigma z,
               \quad \sigma = \eta \sqrt{\tfrac{1 - \bar\alpha_s}{1 - \bar\alpha_t}}
               \sqrt{1 - \tfrac{\bar\alpha_t}{\bar\alpha_s}}

    with :math:`\bar\alpha_{-1} = 1`. :math:`\eta = 0` is deterministic. If
    :math:`\hat x_0` is clipped, :math:`\hat\epsilon` is recomputed from it.
    """
    ab_t = schedule.alpha_bars[t]
    ab_s = schedule.alpha_bars[t_next] if t_next >= 0 else 1.0
    x0 = predict_x0(schedule, xt, eps, t)
    if clip_range is not None:
        x0 = np.clip(x0, -clip_range, clip_range)
        eps = (xt - np.sqrt(ab_t) * x0) / np.sqrt(1.0 - ab_t)
    sigma = eta * np.sqrt((1.0 - ab_s) / (1.0 - ab_t)) * np.sqrt(1.0 - ab_t / ab_s)
    x_next = np.sqrt(ab_s) * x0 + np.sqrt(max(1.0 - ab_s - sigma**2, 0.0)) * eps
    if sigma > 0:
        x_next = x_next + sigma * noise
    return x_next.astype(np.float32)


# --------------------------------------------------------------------------
# The sampler objects, and the table of them
# --------------------------------------------------------------------------


class Sampler:
    """What every sampler is. A subclass sets ``name`` (its name in :data:`SAMPLERS`) and
    ``process`` (``"diffusion"``: integer steps of a noise schedule; ``"flow"``: times
    from 0 to 1), and defines :meth:`from_model`, :meth:`times` and :meth:`step`."""

    name: ClassVar[str]
    process: ClassVar[str]
    evaluations_per_step: ClassVar[int] = 1  # network evaluations per step

    @classmethod
    def from_model(cls, model, steps: int | None = None, **options) -> Sampler:
        """This sampler for ``model`` (its schedule, its default ``sample_steps``, ...)."""
        raise NotImplementedError

    def times(self) -> list[tuple]:
        """The pairs ``(t, t_next)`` of the path from noise to data, in order."""
        raise NotImplementedError

    def step(self, predict, x, t, t_next, rng: np.random.Generator) -> np.ndarray:
        """``x`` at ``t`` -> ``x`` at ``t_next``; ``predict(x, t)`` is the network's output."""
        raise NotImplementedError

    def network_time(self, t) -> float:
        """The network's time input at ``t`` (here ``t`` itself)."""
        return float(t)

    def run(self, predict, x, rng: np.random.Generator, keep=()) -> tuple:
        """Drive this sampler from the noise ``x`` to data: for each ``(t, t_next)`` of
        :meth:`times`, ``x = step(predict, x, t, t_next, rng)``. ``keep`` lists times at
        which to keep the state (for pictures of the path). Returns ``(x, {t: state})``."""
        kept = {}
        keep = {float(t) for t in keep}
        for t, t_next in self.times():
            if t in keep:
                kept[t] = x
            x = self.step(predict, x, t, t_next, rng)
        return x, kept


SAMPLERS: dict[str, type[Sampler]] = {}


def register(cls: type[Sampler]) -> type[Sampler]:
    """Add a sampler class to :data:`SAMPLERS` under its ``name`` (a class decorator)."""
    if cls.process not in PROCESSES:
        raise ValueError(f"{cls.__name__}.process must be one of {PROCESSES}; got {cls.process!r}.")
    SAMPLERS[cls.name] = cls
    return cls


def names(process: str) -> tuple[str, ...]:
    """The names of the samplers of ``process`` (``"diffusion"`` or ``"flow"``)."""
    return tuple(name for name, kind in SAMPLERS.items() if kind.process == process)


def make(model, name: str | None = None, steps: int | None = None, **options) -> Sampler:
    """The sampler ``name`` (default: the model's ``default_sampler``) for ``model``, with
    ``steps`` (default: the model's ``sample_steps``) and its own ``options`` (DDIM's
    ``eta``); options left at None are the sampler's defaults."""
    name = name or model.default_sampler
    choices = names(model.process)
    if name not in choices:
        raise ValueError(f"Unknown sampler {name!r}; choose one of {choices}.")
    options = {key: value for key, value in options.items() if value is not None}
    kind = SAMPLERS[name]
    own = [p for p in inspect.signature(kind.from_model).parameters if p not in ("model", "steps")]
    unknown = sorted(set(options) - set(own))
    if unknown:
        takes = f"its options: {', '.join(own)}" if own else "it takes no options"
        raise ValueError(f"The {name} sampler has no option {', '.join(unknown)} ({takes}).")
    return kind.from_model(model, steps, **options)


class DiffusionSampler(Sampler):
    """A sampler of a noise schedule: the network's time is :math:`(t + 1) / T`, and its
    output becomes a noise estimate (:meth:`epsilon`) before a step uses it."""

    process = "diffusion"

    def __init__(self, schedule: NoiseSchedule, clip_range=None, prediction: str = "epsilon"):
        if prediction not in PREDICTIONS:
            raise ValueError(f"Unknown prediction {prediction!r}; choose one of {PREDICTIONS}.")
        self.schedule, self.clip_range, self.prediction = schedule, clip_range, prediction

    def network_time(self, t: int) -> float:
        return float(time_of(t, self.schedule.timesteps))

    def epsilon(self, xt, output, t: int) -> np.ndarray:
        r"""The noise estimate from the network's ``output`` at ``xt`` and step ``t``: the
        output itself for a noise-predicting network; for a velocity-predicting one
        (Salimans & Ho, 2022), :math:`\hat\epsilon = \sqrt{1 - \bar\alpha_t}\, x_t
        + \sqrt{\bar\alpha_t}\, \hat v`."""
        if self.prediction == "epsilon":
            return output
        alpha_bar = self.schedule.alpha_bars[t]
        return (np.sqrt(1.0 - alpha_bar) * xt + np.sqrt(alpha_bar) * output).astype(np.float32)


@register
class DDPMSampler(DiffusionSampler):
    """Ancestral sampling: every one of the T steps, fresh noise at each (:func:`ddpm_step`)."""

    name = "ddpm"

    @classmethod
    def from_model(cls, model, steps: int | None = None) -> DDPMSampler:
        if steps not in (None, model.timesteps):
            raise ValueError(
                f"DDPM takes every one of the model's {model.timesteps} steps; got steps={steps}. "
                "Use sampler='ddim' to sample with fewer steps."
            )
        return cls(model.schedule, model.clip_range, model.prediction)

    def times(self) -> list[tuple[int, int]]:
        """``(t, t - 1)`` for t = T-1 down to 0."""
        return [(t, t - 1) for t in range(self.schedule.timesteps - 1, -1, -1)]

    def step(self, predict, x, t: int, t_next: int, rng: np.random.Generator) -> np.ndarray:
        r""":math:`x_t \to x_{t-1}` with the network's noise estimate."""
        noise = rng.standard_normal(x.shape) if t > 0 else 0.0
        eps = self.epsilon(x, predict(x, t), t)
        return ddpm_step(self.schedule, x, eps, t, noise, self.clip_range)


@register
class DDIMSampler(DiffusionSampler):
    """DDIM: ``steps`` evenly spaced steps (:func:`sampling_steps`), noise level ``eta``
    (:func:`ddim_step`)."""

    name = "ddim"

    def __init__(
        self,
        schedule: NoiseSchedule,
        steps: int = 50,
        eta: float = 0.0,
        clip_range: float | None = None,
        prediction: str = "epsilon",
    ):
        super().__init__(schedule, clip_range, prediction)
        self.eta = float(eta)
        self.path = sampling_steps(schedule.timesteps, steps)

    @classmethod
    def from_model(cls, model, steps: int | None = None, eta: float = 0.0) -> DDIMSampler:
        steps = steps or model.sample_steps
        return cls(model.schedule, steps, eta, model.clip_range, model.prediction)

    def times(self) -> list[tuple[int, int]]:
        """Consecutive pairs of the subsequence, ending at -1 (clean data)."""
        path = [int(t) for t in self.path]
        return list(zip(path, [*path[1:], -1], strict=True))

    def step(self, predict, x, t: int, t_next: int, rng: np.random.Generator) -> np.ndarray:
        r""":math:`x_t \to x_{t_{next}}` with the network's noise estimate."""
        noise = rng.standard_normal(x.shape) if self.eta > 0 and t_next >= 0 else None
        eps = self.epsilon(x, predict(x, t), t)
        return ddim_step(self.schedule, x, eps, t, t_next, self.eta, noise, self.clip_range)


def time_grid(steps: int) -> np.ndarray:
    """``steps + 1`` evenly spaced times from 0 (noise) to 1 (data)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}.")
    return np.linspace(0.0, 1.0, steps + 1)


@register
class EulerSampler(Sampler):
    r"""Euler's method for :math:`dx/dt = v(x, t)`: :math:`x_{t+h} = x_t + h\, v(x_t, t)`;
    one network evaluation per step."""

    name = "euler"
    process = "flow"

    def __init__(self, steps: int = 10):
        self.grid = time_grid(steps)

    @classmethod
    def from_model(cls, model, steps: int | None = None) -> Sampler:
        return cls(steps or model.sample_steps)

    def times(self) -> list[tuple[float, float]]:
        return list(zip(self.grid[:-1], self.grid[1:], strict=True))

    def step(self, predict, x, t: float, t_next: float, rng=None) -> np.ndarray:
        return (x + (t_next - t) * predict(x, t)).astype(np.float32)


@register
class HeunSampler(EulerSampler):
    r"""Heun's method: an Euler step to :math:`\tilde x`, then the average of the slopes
    at both ends, :math:`x_{t+h} = x_t + \frac h2 \big(v(x_t, t) + v(\tilde x, t + h)\big)`;
    two network evaluations per step, a local error of :math:`O(h^3)` instead of
    Euler's :math:`O(h^2)`."""

    name = "heun"
    evaluations_per_step = 2

    def step(self, predict, x, t: float, t_next: float, rng=None) -> np.ndarray:
        h = t_next - t
        slope = predict(x, t)
        guess = x + h * slope
        return (x + 0.5 * h * (slope + predict(guess, t_next))).astype(np.float32)
