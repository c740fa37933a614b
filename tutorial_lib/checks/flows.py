"""Checks for ``exercises/06_flows.ipynb``: an affine coupling that splits the width,
bits per dimension of a flow on pixels scaled to [-1, 1), Glow's invertible 1x1
convolution, and how many Euler steps a curved flow-matching path needs.

Each check compares the learner's code with float64 references on hidden cases
(other shapes, both parities, the edges) and, when the result is wrong, computes
what the usual mistakes give (the log-determinant's sign, a missing Jacobian
term, nats for bits, the lesson's 1/256 scaling, a transposed kernel, ...) and
names the one that matches. The hidden cases are in the instructor's source notebook
(``hidden={...}``); the coupling and the layer are exercised by the probes of
:mod:`tutorial_lib.grading.probes_flows` where they live, and only arrays come back.
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np

from tutorial_lib.backend import numpy_of
from tutorial_lib.checks import (
    CheckFailed,
    CheckResult,
    Hints,
    expect,
    hidden_cases,
    read_evidence,
    run_check,
)
from tutorial_lib.grading.probes_flows import stand_in_s_and_t as _stand_in_s_and_t
from tutorial_lib.grading.remote import run_probe

RTOL, ATOL = 1e-4, 1e-4

hint = Hints(
    {
        "width_coupling": (
            "Cut every image down the middle of its columns: one half is kept as it is and "
            "is the only input of s_and_t; the other half is scaled by e^s and shifted by t. "
            "Going back, the kept half is still known, so s and t can be computed again and "
            "undone in the opposite order (shift first, then scale). The log-determinant "
            "adds the log of every scale factor of the image; the inverse map divides by "
            "those factors.",
            "slicing on axis 2 (the width) at W // 2, np.exp, np.concatenate on axis 2 so "
            "the kept half goes back where it was, and a sum of s over every axis but the "
            "first (one number per image).",
        ),
        "bits_per_dim": (
            "Two changes, one after the other. The density: x is x-tilde scaled by 2/K in "
            "every dimension (and shifted), so by the change of variables the density of "
            "x-tilde is that of x times the Jacobian of the scaling. The unit: a negative "
            "log-density divided by the number of dimensions, converted from nats to bits.",
            "np.log (natural logs throughout, then one division by log 2), dims and levels. "
            "Test yourself: a uniform density on [-1, 1)^D has log p = -D log 2 and must "
            "come out at exactly log2(K) bits per dimension.",
        ),
        "invertible_conv": (
            "At every position the channel vector is multiplied by the same matrix W. As a "
            "map on a whole example that is a block-diagonal matrix with one copy of W per "
            "position, so its log|det| is the number of positions times log|det W|. The "
            "inverse multiplies every position by the inverse of W. Start W as a random "
            "rotation: volume-preserving, and well conditioned.",
            "self.add_weight with keras.initializers.Orthogonal, keras.ops.matmul over the "
            "last axis (it broadcasts over the others; mind which side W multiplies from), "
            "keras.ops.slogdet (its second result is log|det|), keras.ops.inv, keras.ops.ones "
            "for one number per example, and the product of the axes between the first and "
            "the last.",
        ),
        "curved_path": (
            "Invert the path: at time t the point x lies on the path of one noise draw, and "
            "the path's equation gives that draw from x. Differentiate the path with respect "
            "to t (chain rule: the angle is pi t / 2) and put that draw in: the velocity then "
            "depends only on x and t. Run Euler with n = 1, 2, 3, ... steps until the mean "
            "distance to x1 falls below 0.01.",
            "np.cos, np.sin, np.pi; Euler evaluates the velocity at the start of each step "
            "(times 0, 1/n, ..., (n - 1)/n, never at t = 1, where the cosine is 0); "
            "np.linalg.norm(..., axis=1) for the distances, a while loop over n.",
        ),
    }
)


def _numbers(value) -> np.ndarray:
    """The learner's result as a float64 array (tensors of any Keras backend included)."""
    return np.asarray(numpy_of(value), dtype=np.float64)


def _close(a, b) -> bool:
    return np.shape(a) == np.shape(b) and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))


def _name_mistake(got, variants: list[tuple[np.ndarray, str]], default: str) -> str:
    for variant, message in variants:
        if _close(got, variant):
            return message
    return default


def _error_summary(error: Exception) -> str:
    """The line of an error message that says what went wrong (Keras and its backends wrap
    it in lines about where it happened, with colour codes)."""
    return _summary_of(getattr(error, "learner_type", type(error).__name__), str(error))


def _summary_of(kind: str, message: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", message)
    skip = ("Exception encountered", "Arguments received", "\u2022", "in user code", "File ")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(skip)]
    return f"{kind}: {(useful[-1] if useful else '')[:160]}"


def _pair(result, name: str) -> tuple[np.ndarray, np.ndarray]:
    expect(
        isinstance(result, tuple | list) and len(result) == 2,
        f"{name} should return a pair (output, log_det), got {type(result).__name__}"
        + (f" of length {len(result)}." if isinstance(result, tuple | list) else "."),
    )
    return _numbers(result[0]), _numbers(result[1])


def _expect_per_example(log_det: np.ndarray, n: int, what: str) -> None:
    if log_det.shape == (n,):
        return
    if log_det.ndim == 0:
        raise CheckFailed(
            f"{what} is one number for the whole batch: it should hold one per example, "
            f"shape ({n},). You summed (or averaged) over the batch axis too."
        )
    raise CheckFailed(
        f"{what} should hold one number per example, shape ({n},), got shape "
        f"{log_det.shape}: sum over every axis except the first."
    )


# --------------------------------------------------------------------------
# Task 1: an affine coupling that splits the image along its width
# --------------------------------------------------------------------------

WIDTH_AXIS = 2


def _halves(x, parity: int, axis: int = WIDTH_AXIS):
    half = x.shape[axis] // 2
    first, second = np.split(x, [half], axis=axis)
    return (first, second) if parity == 0 else (second, first)


def _join(kept, changed, parity: int):
    return np.concatenate([kept, changed] if parity == 0 else [changed, kept], axis=WIDTH_AXIS)


def _per_image_sum(values) -> np.ndarray:
    return values.reshape(len(values), -1).sum(axis=1)


def _coupling(x, parity: int, inverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    kept, changed = _halves(_numbers(x), parity)
    s, t = _stand_in_s_and_t(kept)
    if inverse:
        return _join(kept, (changed - t) * np.exp(-s), parity), -_per_image_sum(s)
    return _join(kept, changed * np.exp(s) + t, parity), _per_image_sum(s)


def _forward_variants(x, parity: int) -> list[tuple[np.ndarray, str]]:
    kept, changed = _halves(_numbers(x), parity)
    s, t = _stand_in_s_and_t(kept)
    right = changed * np.exp(s) + t
    return [
        (
            _join(kept, changed * s + t, parity),
            "the changed half was multiplied by s itself: the scale is e^s (s is a "
            "log-scale, so that the layer stays invertible for any s)",
        ),
        (
            _join(kept, changed * np.exp(-s) + t, parity),
            "the changed half was scaled by e^(-s), the inverse's factor: the forward map "
            "multiplies by e^s",
        ),
        (
            _join(kept, (changed + t) * np.exp(s), parity),
            "the shift was added before scaling: scale the changed half by e^s, then add t",
        ),
        (
            np.concatenate([right, kept] if parity == 0 else [kept, right], axis=WIDTH_AXIS),
            "the two halves changed places in the output: the kept half must stay where it "
            "was (left columns for parity 0, right columns for parity 1)",
        ),
    ]


def _inverse_variants(y, parity: int) -> list[tuple[np.ndarray, str]]:
    kept, changed = _halves(_numbers(y), parity)
    s, t = _stand_in_s_and_t(kept)
    return [
        (
            _join(kept, changed * np.exp(-s) - t, parity),
            "the inverse undid the scale before the shift: the forward map scaled, then "
            "shifted, so the inverse subtracts t first, then divides by e^s",
        ),
        (
            _join(kept, (changed - t) * np.exp(s), parity),
            "the inverse multiplied by e^s again: it must divide by e^s (multiply by e^(-s))",
        ),
        (
            _join(kept, changed * np.exp(s) + t, parity),
            "inverse=True ran the forward map: undo it instead",
        ),
    ]


def _log_det_variants(s_sum, s, inverse: bool) -> list[tuple[np.ndarray, str]]:
    if inverse:
        return [
            (
                s_sum,
                "the inverse's log-determinant has the wrong sign: the inverse divides by "
                "e^s, so its log|det| is minus the forward one",
            ),
            (
                np.zeros_like(s_sum),
                "the inverse's log-determinant is 0: the coupling changes volumes, and its "
                "inverse undoes that change, so its log|det| is minus the forward one",
            ),
        ]
    return [
        (
            -s_sum,
            "the log-determinant has the wrong sign: the forward map multiplies by e^s, "
            "so its log|det| is the sum of s, not minus it",
        ),
        (
            s.reshape(len(s), -1).mean(axis=1),
            "the log-determinant is the mean of s: it is the sum (one log-factor per scaled "
            "number)",
        ),
        (
            np.exp(s).reshape(len(s), -1).sum(axis=1),
            "the log-determinant summed e^s: the log of the product of the factors e^s is "
            "the sum of s",
        ),
        (
            2.0 * s_sum,
            "the log-determinant counts s twice: only the changed half is scaled",
        ),
    ]


def _kept_half_message(seen: np.ndarray, x: np.ndarray, parity: int) -> str | None:
    """What the learner passed to s_and_t instead of the kept half, if it was wrong."""
    kept, changed = _halves(x, parity)
    if _close(seen, kept):
        return None
    if _close(seen, changed):
        return (
            "s_and_t got the half that changes: it must see only the kept half (the inverse "
            "can compute s and t again only from numbers it still knows)."
        )
    if seen.shape == x.shape:
        return (
            "s_and_t got the whole image (or a masked copy): pass it the kept half only, "
            f"shape {kept.shape}."
        )
    for axis, name in ((1, "the height (axis 1)"), (3, "the channels (axis 3)")):
        if x.shape[axis] >= 2 and any(_close(seen, part) for part in _halves(x, parity, axis=axis)):
            return (
                f"you split along {name}: split along the width, axis 2 of (N, H, W, C), "
                f"into two halves of shape {kept.shape}."
            )
    return (
        f"s_and_t should get the kept half, the {'left' if parity == 0 else 'right'} "
        f"W/2 columns, shape {kept.shape}; it got an array of shape {seen.shape} with other "
        "values."
    )


def _image(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, shape).astype(np.float32)


def check_width_coupling(width_coupling, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``width_coupling(x, s_and_t, parity, inverse=False)`` -> ``(output, log_det)``: an
    affine coupling of images (N, H, W, C) that keeps the left (parity 0) or right
    (parity 1) W/2 columns; log_det per image, minus the forward one for the inverse.
    ``hidden``: ``{"shape": [...], "others": [[...], ...], "seed": s}``."""
    cases = hidden_cases(hidden, "check_width_coupling")
    shape = tuple(cases.get("shape", (5, 4, 6, 3)))
    others = [tuple(o) for o in cases.get("others", [(2, 28, 28, 1), (3, 1, 2, 1)])]
    x = _image(shape, cases.get("seed", 60))
    name = "width_coupling"
    state = {}

    def call(images, parity, inverse=False):
        report = run_probe(
            width_coupling, "width_coupling", images=images, parity=parity, inverse=inverse
        )
        return _pair(report["result"], name) + ([_numbers(a) for a in report["seen"]],)

    def returns_an_image_and_one_log_det_per_image():
        out, log_det, seen = call(x, 0)
        expect(
            out.shape == x.shape,
            f"expected an output shaped like the input, {x.shape}, got {out.shape}: put the "
            "kept and the changed halves back together along the width (axis 2).",
        )
        _expect_per_example(log_det, len(x), "log_det")
        expect(len(seen) >= 1, "s_and_t was never called: s and t come from s_and_t(kept).")
        state.update(out=out, log_det=log_det, seen=seen)

    def s_and_t_sees_the_kept_half_only():
        for seen in state["seen"]:
            message = _kept_half_message(seen, x, 0)
            expect(message is None, message or "")

    def keeps_the_kept_half():
        half = x.shape[WIDTH_AXIS] // 2
        expect(
            _close(state["out"][:, :, :half], x[:, :, :half]),
            "with parity 0 the left half of the columns must pass through unchanged.",
        )

    def forward_is_the_affine_coupling():
        right, _ = _coupling(x, 0)
        expect(
            _close(state["out"], right),
            _name_mistake(
                state["out"],
                _forward_variants(x, 0),
                "the changed half differs from x_changed * e^s + t with (s, t) = s_and_t(kept).",
            )
            + ".",
        )

    def log_det_is_the_sum_of_s():
        kept, _ = _halves(x, 0)
        s, _ = _stand_in_s_and_t(kept)
        right = _per_image_sum(s)
        expect(
            _close(state["log_det"], right),
            _name_mistake(
                state["log_det"],
                _log_det_variants(right, s, inverse=False),
                "log_det differs from log|det dy/dx| of each image.",
            )
            + ".",
        )

    def parity_one_keeps_the_right_half():
        out, log_det, seen = call(x, 1)
        for array in seen:
            message = _kept_half_message(array, x, 1)
            expect(message is None, f"with parity 1: {message}")
        right, right_log_det = _coupling(x, 1)
        expect(
            _close(out, right),
            "with parity 1: "
            + _name_mistake(
                out,
                _forward_variants(x, 1),
                "the right half of the columns is kept and the left half changes.",
            )
            + ".",
        )
        expect(_close(log_det, right_log_det), "with parity 1 the log_det is wrong.")

    def inverse_undoes_the_forward_map():
        for parity in (0, 1):
            y, _ = _coupling(x, parity)
            back, log_det, seen = call(y.astype(np.float32), parity, inverse=True)
            for array in seen:
                message = _kept_half_message(array, y, parity)
                expect(message is None, f"in the inverse: {message}")
            expect(
                _close(back, x),
                _name_mistake(
                    back,
                    _inverse_variants(y, parity),
                    f"inverse=True (parity {parity}) does not give back the x of y.",
                )
                + ".",
            )
            _expect_per_example(log_det, len(x), "the inverse's log_det")
            kept, _ = _halves(_numbers(y), parity)
            s, _ = _stand_in_s_and_t(kept)
            expect(
                _close(log_det, -_per_image_sum(s)),
                _name_mistake(
                    log_det,
                    _log_det_variants(_per_image_sum(s), s, inverse=True),
                    "the inverse's log_det should be log|det dx/dy| of each image.",
                )
                + ".",
            )

    def any_image_shape_and_the_edges():
        for other in others:
            images = _image(other, cases.get("seed", 60) + 2)
            for parity in (0, 1):
                for inverse in (False, True):
                    where = (
                        f"wrong for images of shape {other} (parity {parity}, inverse={inverse})"
                    )
                    advice = (
                        "take the width from the array (axis 2), not a fixed size, and sum s "
                        "over every axis but the first"
                    )
                    try:
                        out, log_det, _ = call(images, parity, inverse)
                    except CheckFailed:
                        raise
                    except Exception as error:  # e.g. halves of a fixed size do not fit
                        raise CheckFailed(f"{where}: {_error_summary(error)}; {advice}.") from None
                    right, right_log_det = _coupling(images, parity, inverse)
                    expect(
                        _close(out, right) and _close(log_det, right_log_det),
                        f"{where}: {advice}.",
                    )

    checks = [
        returns_an_image_and_one_log_det_per_image,
        s_and_t_sees_the_kept_half_only,
        keeps_the_kept_half,
        forward_is_the_affine_coupling,
        log_det_is_the_sum_of_s,
        parity_one_keeps_the_right_half,
        inverse_undoes_the_forward_map,
        any_image_shape_and_the_edges,
    ]
    return run_check(
        "check_width_coupling", width_coupling, checks, quiet=quiet, task="width_coupling"
    )


# --------------------------------------------------------------------------
# Task 2: bits per dimension of a flow on pixels scaled to [-1, 1)
# --------------------------------------------------------------------------


def _bits(log_p, dims: int, levels: int) -> np.ndarray:
    """The reference: -log2 p(x_tilde) / D for x = 2 x_tilde / K - 1."""
    log_p_tilde = np.asarray(log_p, np.float64) + dims * math.log(2.0 / levels)
    return -log_p_tilde / (dims * math.log(2.0))


def _bits_variants(log_p, dims: int, levels: int) -> list[tuple[np.ndarray, str]]:
    log_p = np.asarray(log_p, np.float64)
    continuous = -log_p / (dims * math.log(2.0))
    return [
        (
            continuous,
            "the change of variables is missing: that is -log2 p(x) / D, the density of the "
            "scaled x; the bits are about x-tilde, whose density is p(x) times the Jacobian "
            "of x = 2 x-tilde / K - 1",
        ),
        (
            continuous - (math.log2(levels) - 1.0),
            "the Jacobian term has the wrong sign: x is x-tilde shrunk by 2/K per dimension, "
            "so p(x-tilde) is p(x) times (2/K)^D, a smaller density and more bits",
        ),
        (
            continuous + math.log2(levels),
            "that is the scaling of the lesson's pixels, x-tilde / K in [0, 1): here the "
            "pixels span [-1, 1), a factor 2/K per dimension",
        ),
        (
            continuous + math.log2(levels) + 1.0,
            "the factor 2 of the scaling went the wrong way: the Jacobian of x = 2 x-tilde / K "
            "- 1 is (2/K) per dimension, log 2 - log K",
        ),
        (
            -(log_p + dims * math.log(2.0 / levels)) / dims,
            "those are nats per dimension: divide by log 2 for bits",
        ),
        (
            -(log_p + dims * math.log(2.0 / levels)) / math.log(2.0),
            "those are bits per image: divide by the number of dimensions D",
        ),
        (
            -_bits(log_p, dims, levels),
            "the sign is flipped: bits per dimension measure a negative log-likelihood, "
            "-log2 p / D",
        ),
        (
            continuous + math.log2(levels - 1) - 1.0,
            "the pixels x-tilde = k + u span [0, K), K levels wide: the scaling is 2/K, not "
            "2/(K - 1)",
        ),
        (
            _bits(log_p, dims, 256),
            f"right for 256 levels, but this data has K = {levels}: use levels, not 256",
        ),
    ]


def check_bits_per_dim(bits_per_dim, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``bits_per_dim(log_p, dims, levels=256)``: -log2 p(x_tilde) / D per image, for a flow
    that reports log p(x) in nats of x = 2 x_tilde / K - 1, x_tilde in [0, K)^D.
    ``hidden``: ``{"seed": s, "sizes": [[dims, levels], ...]}``."""
    cases = hidden_cases(hidden, "check_bits_per_dim")
    rng = np.random.default_rng(cases.get("seed", 70))

    def realistic(dims, levels, n, bits=1.2):
        """log p(x) of images that cost about ``bits`` bits per dimension."""
        target = bits + rng.uniform(-0.3, 0.3, n)
        return -target * dims * math.log(2.0) - dims * math.log(2.0 / levels)

    def call(log_p, dims, levels=None):
        args = (np.array(log_p, np.float64), dims) + (() if levels is None else (levels,))
        return _numbers(bits_per_dim(*args))

    def expect_bits(log_p, dims, levels, where="", default=None):
        got = call(log_p, dims, levels)
        right = _bits(log_p, dims, levels)
        if got.shape != right.shape:
            if got.ndim == 0 and len(right) > 1:
                raise CheckFailed(
                    f"{where}expected one number per image, shape {right.shape}, got one "
                    "number: you averaged (or summed) over the images."
                )
            raise CheckFailed(f"{where}expected shape {right.shape}, got {got.shape}.")
        variants = _bits_variants(log_p, dims, levels)
        if levels == 256:
            variants = variants[:-1]
        expect(
            _close(got, right),
            where
            + _name_mistake(got, variants, default or "the bits differ from -log2 p(x-tilde) / D.")
            + ".",
        )

    def one_number_per_image():
        log_p = realistic(784, 256, 6)
        got = call(log_p, 784)
        if got.ndim == 0:
            raise CheckFailed(
                "expected one number per image, shape (6,), got one number: you averaged "
                "(or summed) over the images."
            )
        expect(got.shape == (6,), f"expected one number per image, shape (6,), got {got.shape}.")

    def mnist_digits_at_256_levels():
        expect_bits(realistic(784, 256, 6), 784, 256)

    def the_default_is_256_levels():
        log_p = realistic(784, 256, 3)
        expect(
            _close(call(log_p, 784), _bits(log_p, 784, 256)),
            "without levels, bits_per_dim should assume 256 grey levels (levels=256).",
        )

    def a_uniform_density_costs_log2_levels():
        for dims, levels in ((784, 256), (12, 32)):
            got = call(np.full(2, -dims * math.log(2.0)), dims, levels)
            expect(
                _close(got, np.full(2, math.log2(levels))),
                f"a uniform density on [-1, 1)^D (log p = -D log 2, D = {dims}) must cost "
                f"exactly log2(K) = {math.log2(levels):g} bits per dimension for K = "
                f"{levels} levels; yours gives {np.round(got, 4).tolist()}.",
            )

    def other_depths_and_sizes():
        for dims, levels in cases.get("sizes", [(3 * 8 * 8, 32), (1, 2)]):
            log_p = realistic(dims, levels, 4, bits=0.7)
            expect_bits(log_p, dims, levels, f"for D = {dims} and K = {levels} levels: ")

    def one_image():
        log_p = realistic(784, 256, 1)
        expect_bits(log_p, 784, 256, "for a batch of one image: ")

    checks = [
        one_number_per_image,
        mnist_digits_at_256_levels,
        the_default_is_256_levels,
        other_depths_and_sizes,
        a_uniform_density_costs_log2_levels,
        one_image,
    ]
    return run_check("check_bits_per_dim", bits_per_dim, checks, quiet=quiet, task="bits_per_dim")


# --------------------------------------------------------------------------
# Task 3: Glow's invertible 1x1 convolution
# --------------------------------------------------------------------------


def _matrix(channels: int, seed: int) -> np.ndarray:
    """A well-conditioned matrix that is not orthogonal, with a negative determinant."""
    rng = np.random.default_rng(seed)
    m = np.eye(channels) * rng.uniform(0.6, 1.8, channels) + 0.3 * rng.standard_normal(
        (channels, channels)
    )
    if np.linalg.det(m) > 0:
        m[0] = -m[0]
    return m.astype(np.float32)


def _positions(shape) -> int:
    return int(np.prod(shape[1:-1]))


def _mix(x, w) -> np.ndarray:
    return np.asarray(x, np.float64) @ np.asarray(w, np.float64).T


def _conv_log_det(w, shape) -> np.ndarray:
    return np.full(shape[0], _positions(shape) * np.linalg.slogdet(np.float64(w))[1])


def _summary(error: dict) -> str:
    """:func:`_error_summary` of an error a probe reported ({"type", "message"})."""
    return _summary_of(error["type"], error["message"])


def check_invertible_conv(Invertible1x1Conv, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``Invertible1x1Conv()``: a Keras layer whose ``build`` makes ``self.kernel`` (C, C),
    a random rotation; ``call(x)`` -> ``(y, log_det)`` with every position's channels
    multiplied by the kernel and log_det = positions * log|det W| per example;
    ``inverse(y)`` -> x. Any rank (N, ..., C). The layer is built, run, differentiated and
    compiled by the probes of :mod:`~tutorial_lib.grading.probes_flows`. ``hidden``:
    ``{"shape": [...], "seed": s, "matrix_seed": m, "one": w, "others": [[...], ...],
    "sequence_shape": [...]}``."""
    cases = hidden_cases(hidden, "check_invertible_conv")
    name = "Invertible1x1Conv"
    shape = tuple(cases.get("shape", (2, 3, 4, 3)))
    channels = shape[-1]
    x = np.random.default_rng(cases.get("seed", 80)).standard_normal(shape).astype(np.float32)
    w = _matrix(channels, cases.get("matrix_seed", 83))
    state = {}

    def probe(stage, **params):
        """One probe's report, with the checks every layer gets: the first call returns a
        pair, the layer has a kernel."""
        report = run_probe(Invertible1x1Conv, stage, **params)
        if "first" in report:
            _pair(report["first"], f"{name}.call")
        expect(
            report.get("has_kernel", True),
            f"{name} has no attribute kernel: create the (C, C) matrix in build as "
            "self.kernel (with self.add_weight).",
        )
        return report

    def forward(matrix, inputs, inputs_shape=shape):
        report = probe("conv_run", matrix=matrix, shape=inputs_shape, inputs=inputs)
        return _pair(report["result"], f"{name}.call")

    def builds_a_trainable_kernel():
        report = probe("conv_fresh", shape=shape)
        expect(
            tuple(report["kernel_shape"]) == (channels, channels),
            f"self.kernel should be ({channels}, {channels}) for {channels} channels, got "
            f"{tuple(report['kernel_shape'])}.",
        )
        expect(
            report["trainable"],
            "self.kernel is not a trainable weight of the layer: create it with "
            "self.add_weight (trainable), so that fit can learn it.",
        )
        state["initial"] = _numbers(report["kernel"])

    def starts_as_a_random_rotation():
        k = state["initial"]
        expect(
            np.allclose(k @ k.T, np.eye(channels), atol=1e-4),
            "the kernel does not start orthogonal (W W^T is not the identity): initialise it "
            "to a random rotation, so that the layer starts volume-preserving and well "
            "conditioned.",
        )
        expect(
            not np.allclose(k, np.eye(channels), atol=1e-4),
            "the kernel starts as the identity: a random rotation mixes the channels from "
            "the first step (the identity is a rotation that does nothing).",
        )

    def mixes_the_channels_of_every_position():
        y, log_det = forward(w, x)
        expect(y.shape == x.shape, f"y should be shaped like x, {x.shape}, got {y.shape}.")
        right = _mix(x, w)
        expect(
            _close(y, right),
            _name_mistake(
                y,
                [
                    (
                        _mix(x, w.T),
                        "y used the transposed kernel: output channel c is the sum over k "
                        "of W[c, k] x[..., k], W multiplying each channel vector from the "
                        "left",
                    ),
                    (
                        x.astype(np.float64),
                        "y is x: multiply every position's channels by self.kernel",
                    ),
                ],
                "y differs from W times the channel vector at every position.",
            )
            + ".",
        )
        state["log_det"] = log_det

    def log_det_counts_every_position():
        log_det = state["log_det"]
        _expect_per_example(log_det, len(x), "log_det")
        right = _conv_log_det(w, shape)
        one = np.linalg.slogdet(np.float64(w))[1]
        expect(
            np.all(np.isfinite(log_det)),
            "log_det is NaN for a kernel with a negative determinant: the volume change is "
            "log|det W|, the log of the absolute value (a determinant can be negative).",
        )
        expect(
            _close(log_det, right),
            _name_mistake(
                log_det,
                [
                    (
                        np.full(len(x), one),
                        "log_det is log|det W| once: every position is mixed by W, so it "
                        f"counts {_positions(shape)} times (H * W positions of the image)",
                    ),
                    (-right, "log_det has the wrong sign: it is +positions * log|det W|"),
                    (
                        np.full(len(x), channels * _positions(shape) * one),
                        "log_det also counts the channels: W acts on the C channels "
                        "together, once per position",
                    ),
                    (
                        np.full(len(x), channels * one),
                        "log_det counts the channels, not the positions: W acts once per position",
                    ),
                    (
                        right * len(x),
                        "log_det is summed over the batch: one log-determinant per example",
                    ),
                ],
                "log_det differs from positions * log|det W| for every example.",
            )
            + ".",
        )

    def inverse_undoes_call():
        y = _mix(x, w).astype(np.float32)
        back = _numbers(probe("conv_run", matrix=w, shape=shape, back_of=y)["back"])
        expect(
            _close(back, x),
            _name_mistake(
                back,
                [
                    (
                        _mix(y, np.linalg.inv(np.float64(w))),
                        "the inverse multiplied by the transpose of W's inverse: undo W "
                        "from the same side it was applied",
                    ),
                    (
                        _mix(y, w.T),
                        "the inverse used W transposed: that inverts only a rotation, and "
                        "after training W is no longer one; use the inverse of W",
                    ),
                    (_mix(y, w), "the inverse applied W again: apply the inverse of W"),
                ],
                "inverse(call(x)[0]) does not give back x.",
            )
            + ".",
        )

    def log_det_is_the_jacobians():
        small = (1, 2, 2, channels)
        report = probe("conv_jacobian", matrix=w, shape=small, point=x[:1, :2, :2])
        _, log_det = _pair(report["result"], f"{name}.call")
        expect(
            report["jacobian"] is not None,
            "y does not depend on x for automatic differentiation: compute it with "
            "keras.ops, not NumPy.",
        )
        dims = int(np.prod(small))
        exact = np.linalg.slogdet(_numbers(report["jacobian"]).reshape(dims, dims))[1]
        expect(
            _close(log_det.reshape(-1), np.array([exact])),
            f"for one 2x2 image, log_det is {np.round(log_det, 4).tolist()} but "
            f"log|det| of the layer's full Jacobian (by automatic differentiation) is "
            f"{exact:.4f}.",
        )

    def trains_inside_a_compiled_step():
        report = probe("conv_compiled", matrix=w, shape=shape, inputs=x)
        if "error" in report:
            raise CheckFailed(
                f"{name} fails inside a compiled step (tf.function or jax.jit), as in fit's "
                f"train step ({_summary(report['error'])}): compute with keras.ops; NumPy "
                "cannot work on the symbolic tensors of a compiled step (no np functions on "
                "tensors or weights, no .numpy())."
            )
        expect(
            report["grad"] is not None,
            "the log-determinant does not depend on the kernel for automatic "
            "differentiation, so fit could never learn it: compute it with keras.ops "
            "(slogdet), not NumPy.",
        )
        right = len(x) * _positions(shape) * np.linalg.inv(np.float64(w)).T
        expect(
            _close(_numbers(report["grad"]), right),
            "the gradient of the log-determinant w.r.t. the kernel is wrong (it should be "
            "positions * the inverse of W transposed, per example).",
        )

    def any_rank_one_channel_and_one_example():
        one = np.array([[cases.get("one", -2.0)]], np.float32)  # C = 1: W is a number
        others = [tuple(o) for o in cases.get("others", [(5, channels), (2, 7, channels)])]
        for other, matrix in [(o, w) for o in others] + [((3, 2, 2, 1), one), ((1, 2, 3, 1), one)]:
            advice = (
                f"right for images, wrong for data of shape {other}: the channels are the "
                "last axis, and the positions are all the axes between the first and the "
                f"last ({_positions(other)} here), whatever their number"
            )
            if other[-1] == 1:
                advice = (
                    f"wrong for data of shape {other}, one channel (W is 1x1, here "
                    f"{matrix[0, 0]:g}): the layer must work for any number of channels"
                )
            inputs = np.random.default_rng(84).standard_normal(other).astype(np.float32)
            report = run_probe(
                Invertible1x1Conv, "conv_run", matrix=matrix, shape=other, inputs=inputs, catch=True
            )
            if "error" in report:
                raise CheckFailed(f"{advice} ({_summary(report['error'])}).")
            try:
                y, log_det = _pair(report["result"], f"{name}.call")
            except CheckFailed:
                raise CheckFailed(f"{advice}.") from None
            back = _numbers(report.get("back"))
            expect(
                _close(y, _mix(inputs, matrix))
                and _close(log_det, _conv_log_det(matrix, other))
                and _close(back, inputs),
                f"{advice}.",
            )

    def works_in_a_flow_sequence():
        sequence_shape = tuple(cases.get("sequence_shape", (2, 2, 2, 4)))
        inputs = np.random.default_rng(85).standard_normal(sequence_shape).astype(np.float32)
        report = probe("conv_in_a_sequence", inputs=inputs)
        y, log_det = _pair(report["result"], "flows.FlowSequence with your layer")
        _expect_per_example(log_det, len(inputs), "the log_det of a FlowSequence")
        expect(
            _close(_numbers(report["back"]), inputs),
            "in flows.FlowSequence with a coupling, inverse(forward(x)) is not x.",
        )

    checks = [
        builds_a_trainable_kernel,
        starts_as_a_random_rotation,
        mixes_the_channels_of_every_position,
        log_det_counts_every_position,
        inverse_undoes_call,
        log_det_is_the_jacobians,
        trains_inside_a_compiled_step,
        any_rank_one_channel_and_one_example,
        works_in_a_flow_sequence,
    ]
    return run_check(
        "check_invertible_conv", Invertible1x1Conv, checks, quiet=quiet, task="invertible_conv"
    )


# --------------------------------------------------------------------------
# Task 4 (investigate): Euler steps along a curved path
# --------------------------------------------------------------------------

CURVED_PATH = {"point": (2.0, 1.0), "draws": 1000, "seed": 0, "threshold": 0.01}


def _curved_velocity(x, t, point, factor=math.pi / 2):
    angle = math.pi * t / 2
    return factor * (point - math.sin(angle) * x) / math.cos(angle)


def _mean_error(n: int, *, method: str = "euler", velocity=None, statistic=None) -> float:
    point = np.array(CURVED_PATH["point"])
    start = np.random.default_rng(CURVED_PATH["seed"]).standard_normal((CURVED_PATH["draws"], 2))
    velocity = velocity or (lambda x, t: _curved_velocity(x, t, point))
    h, x = 1.0 / n, start.copy()
    for t in np.arange(n) * h:
        if method == "midpoint":
            x = x + h * velocity(x + 0.5 * h * velocity(x, t), t + 0.5 * h)
        elif method == "own_draw":  # each draw's own path velocity, not the field at x
            angle = math.pi * t / 2
            x = x + h * math.pi / 2 * (-math.sin(angle) * start + math.cos(angle) * point)
        else:
            x = x + h * velocity(x, t)
    distances = np.linalg.norm(x - point, axis=1)
    return float((statistic or np.mean)(distances))


def _first_below(error, limit: int = 4096) -> int:
    """The smallest n with error(n) < threshold (error falls with n; bisection beyond 64)."""
    threshold = CURVED_PATH["threshold"]
    for n in range(1, 65):
        if error(n) < threshold:
            return n
    low, high = 64, limit
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (low, middle) if error(middle) < threshold else (middle, high)
    return high


@functools.cache
def _curved_steps(mistake: str | None = None) -> int:
    point = np.array(CURVED_PATH["point"])
    if mistake == "no_factor":
        return _first_below(
            lambda n: _mean_error(n, velocity=lambda x, t: _curved_velocity(x, t, point, 1.0))
        )
    if mistake == "squared":
        return _first_below(lambda n: _mean_error(n, statistic=lambda d: np.mean(d**2)))
    if mistake in ("midpoint", "own_draw"):
        return _first_below(lambda n: _mean_error(n, method=mistake))
    return _first_below(_mean_error)


def _curved_error(n: int, mistake: str | None = None) -> float:
    """The mean distance after ``n`` Euler steps (or with ``mistake``'s change)."""
    point = np.array(CURVED_PATH["point"])
    if mistake == "no_factor":
        return _mean_error(n, velocity=lambda x, t: _curved_velocity(x, t, point, 1.0))
    if mistake == "squared":
        return _mean_error(n, statistic=lambda d: np.mean(d**2))
    if mistake in ("midpoint", "own_draw"):
        return _mean_error(n, method=mistake)
    return _mean_error(n)


# The distances are deterministic for the task's draws (seed 0); other draws change them by
# a few percent, the nearest named mistake (midpoint) by 30% or more. A rerun agrees within
DISTANCE_RTOL = 0.05
CURVE_MISTAKES = {
    "midpoint": "your distances are the midpoint method's, which evaluates the velocity in "
    "the middle of each step; Euler evaluates it at the start",
    "no_factor": "the chain-rule factor pi/2 is missing from the velocity (the angle is pi t / 2)",
    "own_draw": "your velocity used each draw's own noise x0: the velocity field must depend "
    "on the current point x (solve the path's equation for x0)",
    "squared": "your distances are mean squared distances: the task asks for the mean distance",
}


def check_curved_path(experiment, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``experiment()`` returns ``{"n": the step counts tried, "distance": the mean
    distance to (2, 1) after each, "answer": the smallest n with a distance below 0.01}``
    (1000 noise draws carried along the cosine path's velocity field by Euler): the curve is
    rerun at the learner's points around its crossing (DISTANCE_RTOL), the answer is read
    off the curve, then compared with the check's own search (one step either side)."""
    state: dict = {}
    threshold = CURVED_PATH["threshold"]

    def returns_its_evidence():
        steps, distance, answer = read_evidence(
            experiment,
            {"n": "the step counts you tried", "distance": "the mean distance after each"},
            min_points=2,
        )
        state.update(steps=steps, distance=distance, answer=answer)

    def the_curve_is_a_measurement():
        steps, distance = state["steps"], state["distance"]
        expect(
            bool(np.all(np.isfinite(distance))),
            "your distances hold NaN: a velocity evaluated at t = 1, where cos(pi t / 2) is "
            "0? Euler evaluates it at the start of each step, t = 0, 1/n, ..., (n - 1)/n.",
        )
        expect(
            bool(np.all((steps == np.round(steps)) & (steps >= 1) & (steps <= 4096))),
            "every 'n' should be a whole number of steps, from 1 to 4096.",
        )
        expect(
            bool(np.any(distance >= threshold) and np.any(distance < threshold)),
            "your curve should cover the crossing: at least one n with a mean distance of "
            "0.01 or more, and one below it.",
        )
        low, high = _steps_bracket(steps, distance, threshold)
        points = sorted({int(low), int(high), int(np.sort(steps)[len(steps) // 2])})
        got = np.array([distance[np.flatnonzero(steps == n)[0]] for n in points])
        right = np.array([_curved_error(n) for n in points])
        if not np.allclose(got, right, rtol=DISTANCE_RTOL):
            for mistake, message in CURVE_MISTAKES.items():
                wrong = np.array([_curved_error(n, mistake) for n in points])
                if np.allclose(got, wrong, rtol=DISTANCE_RTOL):
                    raise CheckFailed(message + ".")
        bad = np.flatnonzero(~np.isclose(got, right, rtol=DISTANCE_RTOL))
        expect(
            bad.size == 0,
            f"at n = {points[bad[0]] if bad.size else 0} your distance "
            f"{got[bad[0]] if bad.size else 0:.4g} disagrees with a rerun of the task's "
            "experiment with your own n: check each step (the draws, the velocity, Euler's "
            "times, the distance) against the task.",
        )

    def the_answer_is_read_from_the_curve():
        steps, distance, answer = state["steps"], state["distance"], state["answer"]
        low, high = _steps_bracket(steps, distance, threshold)
        expect(
            low < answer <= high,
            f"your answer {answer:.4g} is not where your own curve first falls below 0.01 "
            f"(after n = {low:.0f}, at most n = {high:.0f}): read the answer off your "
            "measurement.",
        )
        expected = _curved_steps()
        expect(
            abs(answer - expected) <= 1,
            f"your answer {answer:.4g} is not the smallest n with a mean distance below 0.01: "
            "try every n around your crossing, one by one.",
        )

    checks = [returns_its_evidence, the_curve_is_a_measurement, the_answer_is_read_from_the_curve]
    return run_check("check_curved_path", experiment, checks, quiet=quiet, task="curved_path")


def _steps_bracket(steps, distance, threshold) -> tuple[float, float]:
    """The learner's curve around its first fall below ``threshold``: (the largest n at
    or above it before that, the first n below), in increasing n."""
    order = np.argsort(steps)
    steps, distance = steps[order], distance[order]
    first = np.flatnonzero(distance < threshold)[0]
    if first == 0:  # one step already below: nothing before it to read
        return float(steps[0] - 1), float(steps[0])
    return float(steps[first - 1]), float(steps[first])
