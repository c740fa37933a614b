"""Checks for ``exercises/07_compare.ipynb``: bits per dimension from any unit (perplexity
included), sampling pixel by pixel from any conditional, the family a table recommends for
a use case, and how many nats stochastic binarisation itself costs.

Each check compares the learner's function with a reference on hidden cases and, when the
result is wrong, computes what the usual mistakes give (nats for bits, a missing division
by the dimensions, the perplexity taken as nats, a threshold at one half instead of a draw,
columns before rows, the fastest model instead of the best that is fast enough, ...) and
names the one that matches. The hidden cases are in the instructor's source notebook
(``hidden={...}``); the sampler and the chooser's table are exercised by the probes of
:mod:`tutorial_lib.grading.probes_compare` where they live.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from tutorial_lib.checks import (
    CheckFailed,
    CheckResult,
    Hints,
    expect,
    hidden_cases,
    read_evidence,
    run_check,
)
from tutorial_lib.grading.probes_compare import Conditional
from tutorial_lib.grading.remote import run_probe

hint = Hints(
    {
        "to_bits_per_dim": (
            "Bring every unit to one place first, say nats per dimension, then go to bits. "
            "Per image and per dimension differ by the number of dimensions of one item; "
            "nats and bits by the factor ln 2 (one bit is ln 2 nats). A perplexity is "
            "already per dimension: it is e raised to the nats per dimension, so its log "
            "gives them back.",
            "math.log (the natural log) and math.log(2.0); the perplexity's natural log is "
            "nats per dimension (its log2 is bits per dimension); a ValueError raised "
            "after the known units. Test yourself: 1.5 bits per character is a perplexity "
            "of 2 ** 1.5, about 2.83.",
        ),
        "sample_pixels": (
            "One pixel at a time, in raster order: row 0 from left to right, then row 1, and "
            "so on. Before asking for the probability of pixel (i, j), every earlier pixel "
            "must already be drawn and every later one still 0. Drawing means comparing the "
            "pixel's uniform with its probability: 1 when the uniform is below it, so that "
            "the pixel is 1 with exactly that probability.",
            "np.zeros for the canvas (the shape of the uniforms), two nested for loops over "
            "range(height) and range(width) in the right nesting, conditional(canvas, i, j) "
            "for the batch's probabilities, and a comparison of the batch's uniforms at (i, j) "
            "with them, stored in the canvas (as floats).",
        ),
        "choose_family": (
            "Two steps: keep the models that meet every requirement, then take the best of "
            "those, the lowest FD. A throughput of n images per second leaves 1000 / n "
            "milliseconds per image. An exact likelihood is needed only when asked for "
            "'exact'; 'any' accepts a bound too. With nothing left, there is no answer.",
            "a list comprehension (or a loop) over the rows with the conditions joined by "
            "and, a time budget in milliseconds computed from images_per_second, "
            "min(..., key=...) on the 'fd' of what is left, and None when nothing is left.",
        ),
        "binarisation_noise": (
            "For one grey image the draws of its pixels are independent, so the entropy of "
            "its binary image is the sum over pixels of the binary entropy of each grey "
            "value. Average that over the test images. Pixels that are exactly 0 or 1 are "
            "not random at all: they add nothing.",
            "data.load_images('mnist', 'test') for grey pixels in [0, 1]; np.log (nats); "
            "np.where (or np.errstate with np.nan_to_num) to make 0 log 0 count as 0; sum "
            "over the pixels of each image, then the mean over the images.",
        ),
    }
)

UNITS = ("nats per image", "bits per image", "nats per dimension", "perplexity")


def _number(value) -> float:
    if hasattr(value, "numpy"):
        value = value.numpy()
    array = np.asarray(value, dtype=np.float64)
    if array.shape != ():
        raise CheckFailed(
            f"expected one number, got an array of shape {array.shape}: the function "
            "converts one value."
        )
    return float(array)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


# --------------------------------------------------------------------------
# Task 1: bits per dimension from any unit
# --------------------------------------------------------------------------


def _bits_per_dim(value: float, unit: str, dims: int) -> float:
    nats_per_dim = {
        "nats per image": value / dims,
        "bits per image": value * math.log(2.0) / dims,
        "nats per dimension": value,
        "perplexity": math.log(value),
    }[unit]
    return nats_per_dim / math.log(2.0)


def _unit_variants(value: float, unit: str, dims: int) -> list[tuple[float, str]]:
    """What the usual mistakes give for one conversion, with the message that names each."""
    ln2 = math.log(2.0)
    right = _bits_per_dim(value, unit, dims)
    variants = [
        (
            right * ln2 * ln2,
            "you multiplied by ln 2 where bits need a division: 1 nat is "
            "1 / ln 2, about 1.44, bits, so the number of bits is larger than that of nats",
        ),
        (right * ln2, "that is nats per dimension: divide by ln 2 for bits"),
        (-right, "the sign is flipped: a negative log-likelihood is positive"),
    ]
    if unit in ("nats per image", "bits per image") and dims > 1:
        variants.append((right * dims, f"that is per {'image'}: divide by the {dims} dimensions"))
    if unit == "bits per image":
        variants.append(
            (
                right / ln2,
                "the value is in bits already: only the division by the dimensions "
                "is left, no conversion from nats",
            )
        )
    if unit == "perplexity":
        variants += [
            (
                math.log(value),
                "that is the natural log of the perplexity, nats per "
                "dimension: the bits are its log base 2",
            ),
            (
                right / dims,
                "a perplexity is already per dimension (per character, per "
                "pixel): do not divide it by the dimensions again",
            ),
            (
                value,
                "a perplexity is not a likelihood in bits: it is e to the nats per "
                "dimension (2 to the bits); take its log",
            ),
        ]
    if unit == "nats per dimension" and dims > 1:
        variants.append(
            (right / dims, "the value is per dimension already: do not divide it by the dimensions")
        )
    return variants


def check_to_bits_per_dim(to_bits_per_dim, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``to_bits_per_dim(value, unit, dims)``: a negative log-likelihood in ``unit``
    (:data:`UNITS`) of items of ``dims`` dimensions, in bits per dimension. ``hidden``:
    ``{"cases": [[value, unit, dims], ...]}``, other cases."""
    cases_of = hidden_cases(hidden, "check_to_bits_per_dim").get(
        "cases",
        [
            (86.76, "nats per image", 784),
            (125.2, "bits per image", 784),
            (1.04, "nats per dimension", 1),
            (0.11, "nats per dimension", 784),
            (2.83, "perplexity", 1),
            (1.12, "perplexity", 784),
        ],
    )

    def convert(value, unit, dims):
        return _number(to_bits_per_dim(value, unit, dims))

    def each_unit(unit):
        def case():
            for value, which, dims in cases_of:
                if which != unit:
                    continue
                got, right = convert(value, unit, dims), _bits_per_dim(value, unit, dims)
                if _close(got, right):
                    continue
                where = f"{value} {unit} of {dims} dimension{'s' if dims > 1 else ''}"
                for wrong, message in _unit_variants(value, unit, dims):
                    if _close(got, wrong):
                        raise CheckFailed(f"{where}: your {got:.4g} is wrong: {message}.")
                raise CheckFailed(
                    f"{where}: expected {right:.4g} bits per dimension, got {got:.4g}."
                )

        case.__name__ = unit.replace(" ", "_")
        return case

    def other_units_are_refused():
        for unit in ("bits per pixel", "nats"):
            try:
                to_bits_per_dim(1.0, unit, 784)
            except ValueError:
                continue
            except NotImplementedError:
                raise
            except Exception as error:
                raise CheckFailed(
                    f"the unknown unit {unit!r} raised {type(error).__name__}; raise a "
                    "ValueError that names the units you know."
                ) from None
            raise CheckFailed(
                f"the unknown unit {unit!r} was accepted: raise a ValueError for any unit "
                "other than the four of the task."
            )

    cases = [each_unit(unit) for unit in UNITS] + [other_units_are_refused]
    return run_check(
        "check_to_bits_per_dim", to_bits_per_dim, cases, quiet=quiet, task="to_bits_per_dim"
    )


# --------------------------------------------------------------------------
# Task 2: sampling pixel by pixel
# --------------------------------------------------------------------------


def _canvas_problem(calls, canvases, out: np.ndarray) -> str | None:
    """What was wrong with the canvases the conditional was given, for the images ``out``
    that came of them: each must hold the pixels drawn before (i, j) and 0 from (i, j) on."""
    for (i, j), canvas in zip(calls, canvases, strict=True):
        canvas = np.asarray(canvas, np.float64)
        if canvas.shape != out.shape:
            return (
                f"conditional got a canvas of shape {canvas.shape}; it expects the shape "
                f"of the uniforms, {out.shape}"
            )
        position = i * out.shape[2] + j
        flat, drawn = canvas.reshape(len(canvas), -1), out.reshape(len(out), -1)
        if np.any(flat[:, position:] != 0):
            return (
                f"when the probability of pixel ({i}, {j}) was asked for, the canvas "
                "held values at that pixel or after it: they must still be 0"
            )
        if not np.array_equal(flat[:, :position], drawn[:, :position]):
            return (
                f"when the probability of pixel ({i}, {j}) was asked for, the pixels "
                "before it were not all drawn yet: draw each pixel into the canvas "
                "before asking for the next"
            )
    return None


def _reference_samples(uniforms: np.ndarray, *, order="rows", rule="draw") -> np.ndarray:
    canvas = np.zeros(uniforms.shape)
    n, height, width = uniforms.shape
    positions = [(i, j) for i in range(height) for j in range(width)]
    if order == "columns":
        positions = [(i, j) for j in range(width) for i in range(height)]
    for i, j in positions:
        p = Conditional.probability(canvas, i, j)
        u = uniforms[:, i, j]
        canvas[:, i, j] = {"draw": u < p, "threshold": p > 0.5, "inverted": u > p}[rule]
    return canvas


def _all_at_once(uniforms: np.ndarray) -> np.ndarray:
    empty = np.zeros(uniforms.shape)
    n, height, width = uniforms.shape
    out = np.zeros(uniforms.shape)
    for i in range(height):
        for j in range(width):
            out[:, i, j] = uniforms[:, i, j] < Conditional.probability(empty, i, j)
    return out


def check_sample_pixels(sample_pixels, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``sample_pixels(conditional, uniforms)``: binary images (N, H, W), pixel (i, j) 1
    exactly when ``uniforms[:, i, j] < conditional(canvas, i, j)``, drawn in raster order
    on a canvas that holds the pixels drawn so far and 0 after them (the stand-in
    conditional of :mod:`~tutorial_lib.grading.probes_compare`). ``hidden``:
    ``{"shapes": [...], "seed": s}``."""
    cases = hidden_cases(hidden, "check_sample_pixels")
    shapes = [tuple(shape) for shape in cases.get("shapes", [(6, 5, 5), (4, 3, 8), (1, 2, 2)])]
    rng = np.random.default_rng(cases.get("seed", 80))
    state = {}

    def run(shape):
        uniforms = rng.random(shape)
        report = run_probe(sample_pixels, "sample_pixels", uniforms=uniforms)
        calls = [(int(i), int(j)) for i, j in report["calls"]]
        recorded = {"calls": calls, "canvases": report["canvases"]}
        return uniforms, recorded, np.asarray(report["out"], np.float64)

    def returns_binary_images_of_the_uniforms_shape():
        uniforms, conditional, out = run(shapes[0])
        expect(
            out.shape == uniforms.shape,
            f"expected binary images shaped like the uniforms, {uniforms.shape}, got {out.shape}.",
        )
        if not np.all((out == 0) | (out == 1)):
            raise CheckFailed(
                "the images hold values other than 0 and 1: return the drawn pixels, not "
                "their probabilities."
            )
        state.update(uniforms=uniforms, conditional=conditional, out=out)

    def asks_for_every_pixel_once_in_raster_order():
        calls, uniforms = state["conditional"]["calls"], state["uniforms"]
        _, height, width = uniforms.shape
        rows = [(i, j) for i in range(height) for j in range(width)]
        if sorted(calls) != sorted(rows) or len(calls) != len(rows):
            raise CheckFailed(
                f"conditional should be asked once for each of the {len(rows)} pixels; it "
                f"was asked {len(calls)} times."
            )
        if calls != rows:
            columns = [(i, j) for j in range(width) for i in range(height)]
            message = (
                "the pixels were drawn column by column: raster order is row by row, "
                "(0, 0), (0, 1), ... along the first row, then the second"
                if calls == columns
                else f"the pixels were not drawn in raster order: the first calls were "
                f"{calls[:4]}, expected {rows[:4]}"
            )
            raise CheckFailed(message + ".")

    def each_canvas_holds_the_pixels_drawn_so_far():
        conditional = state["conditional"]
        problem = _canvas_problem(conditional["calls"], conditional["canvases"], state["out"])
        expect(problem is None, f"{problem}.")

    def each_pixel_is_drawn_with_its_uniform():
        uniforms, out = state["uniforms"], state["out"]
        if np.array_equal(out, _reference_samples(uniforms)):
            return
        for rule, message in (
            (
                "threshold",
                "you set a pixel to 1 where p > 0.5: draw it instead, 1 when its "
                "uniform is below p, so that it is 1 with probability p",
            ),
            (
                "inverted",
                "the comparison is the wrong way round: a pixel is 1 when its uniform "
                "is below p (u > p makes it 1 with probability 1 - p)",
            ),
        ):
            if np.array_equal(out, _reference_samples(uniforms, rule=rule)):
                raise CheckFailed(message + ".")
        if np.array_equal(out, _all_at_once(uniforms)):
            raise CheckFailed(
                "every probability came from an empty canvas: draw each pixel before "
                "asking for the next one's probability."
            )
        raise CheckFailed("some pixels differ from those drawn with their uniforms.")

    def other_sizes_and_one_image():
        for shape in shapes[1:]:
            advice = (
                f"wrong for uniforms of shape {shape}: take the batch, the height and the "
                "width from the uniforms, not fixed sizes"
            )
            try:
                uniforms, conditional, out = run(shape)
            except CheckFailed:
                raise
            except Exception as error:  # e.g. loops of a fixed size run off the array
                raise CheckFailed(f"{advice} ({type(error).__name__}: {error}).") from None
            expect(
                out.shape == uniforms.shape and np.array_equal(out, _reference_samples(uniforms)),
                f"{advice}.",
            )
            problem = _canvas_problem(conditional["calls"], conditional["canvases"], out)
            expect(problem is None, f"for uniforms of shape {shape}: {problem}.")

    cases = [
        returns_binary_images_of_the_uniforms_shape,
        asks_for_every_pixel_once_in_raster_order,
        each_canvas_holds_the_pixels_drawn_so_far,
        each_pixel_is_drawn_with_its_uniform,
        other_sizes_and_one_image,
    ]
    return run_check("check_sample_pixels", sample_pixels, cases, quiet=quiet, task="sample_pixels")


# --------------------------------------------------------------------------
# Task 3: the family a table recommends
# --------------------------------------------------------------------------

EXAMPLE_TABLE = [
    {"model": "vae", "ms_per_image": 0.1, "fd": 60.0, "likelihood": "bound", "encoder": True},
    {"model": "gan", "ms_per_image": 0.1, "fd": 25.0, "likelihood": "none", "encoder": False},
    {"model": "diffusion", "ms_per_image": 5.0, "fd": 15.0, "likelihood": "none", "encoder": False},
    {"model": "realnvp", "ms_per_image": 0.8, "fd": 120.0, "likelihood": "exact", "encoder": True},
    {
        "model": "pixelcnn",
        "ms_per_image": 16.0,
        "fd": 80.0,
        "likelihood": "exact",
        "encoder": False,
    },
]
USE_CASES = [
    {"images_per_second": 100},
    {"images_per_second": 1000},
    {"images_per_second": 10, "likelihood": "exact"},
    {"images_per_second": 100, "likelihood": "any", "encoder": True},
    {"images_per_second": 50, "encoder": True},
    {"images_per_second": 5000, "likelihood": "exact"},
]


def _choose(table, images_per_second, likelihood=None, encoder=False, *, mistake=None):
    budget = images_per_second if mistake == "ips_as_ms" else 1000.0 / images_per_second
    kinds = {None: ("none", "bound", "exact"), "any": ("bound", "exact"), "exact": ("exact",)}
    if mistake == "exact_only":
        kinds["any"] = ("exact",)
    if mistake == "bound_is_exact":
        kinds["exact"] = ("bound", "exact")
    fits = [
        row
        for row in table
        if (mistake == "no_budget" or row["ms_per_image"] <= budget)
        and row["likelihood"] in kinds[likelihood]
        and (row["encoder"] or not encoder or mistake == "no_encoder")
    ]
    if not fits:
        return None
    if mistake == "fastest":
        return min(fits, key=lambda row: row["ms_per_image"])["model"]
    if mistake == "highest_fd":
        return max(fits, key=lambda row: row["fd"])["model"]
    return min(fits, key=lambda row: row["fd"])["model"]


CHOICE_MISTAKES = {
    "no_budget": "the time budget was not applied: n images per second leave 1000 / n ms "
    "per image, and slower models do not qualify",
    "ips_as_ms": "the budget compared milliseconds with images per second: n images per "
    "second leave 1000 / n milliseconds per image",
    "fastest": "that is the fastest model that qualifies; the task asks for the best "
    "samples (the lowest FD) among those fast enough",
    "highest_fd": "the FD is a distance to the real images: lower is better",
    "exact_only": "'any' accepts a bound as well as an exact likelihood",
    "bound_is_exact": "'exact' asks for an exact likelihood: a bound (the VAE's ELBO) does "
    "not qualify",
    "no_encoder": "the encoder requirement was ignored: with encoder=True only models with "
    "an encoder qualify",
}


def check_choose_family(choose_family, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``choose_family(table, images_per_second, likelihood=None, encoder=False)``: the
    model with the lowest FD among those that draw ``images_per_second`` images a second and
    have the likelihood and encoder asked for, or None. ``hidden``: ``{"table": rows,
    "uses": [...]}``, another table and other use cases."""
    cases = hidden_cases(hidden, "check_choose_family")
    table, uses = cases.get("table", EXAMPLE_TABLE), cases.get("uses", USE_CASES)

    def each_use_case():
        answers = [choose_family([dict(row) for row in table], **use) for use in uses]
        for use, got in zip(uses, answers, strict=True):
            right = _choose(table, **use)
            if got == right:
                continue
            where = ", ".join(f"{k}={v!r}" for k, v in use.items())
            if right is None:
                raise CheckFailed(
                    f"for {where} no model qualifies, and the answer is None; you returned {got!r}."
                )

            # The mistake that explains every answer, else one that explains this one.
            def explains_all(mistake):
                return answers == [_choose(table, **u, mistake=mistake) for u in uses]

            named = [
                mistake
                for mistake in CHOICE_MISTAKES
                if got is not None and got == _choose(table, **use, mistake=mistake)
            ]
            if named:
                mistake = max(named, key=explains_all)
                raise CheckFailed(f"for {where} you chose {got!r}: {CHOICE_MISTAKES[mistake]}.")
            raise CheckFailed(f"for {where} the table recommends {right!r}; you chose {got!r}.")

    def names_a_model():
        got = choose_family([dict(row) for row in table], 100)
        names = [row["model"] for row in table]
        expect(
            got in names,
            f"choose_family should return the 'model' name of a row (one of {names}), got {got!r}.",
        )

    def leaves_the_table_as_it_was():
        after = run_probe(
            choose_family, "choose_on_a_copy", table=table, images_per_second=100, likelihood="any"
        )["rows"]
        expect(
            after == [dict(row) for row in table],
            "choose_family changed the table it was given: leave it as it is.",
        )

    cases = [names_a_model, each_use_case, leaves_the_table_as_it_was]
    return run_check("check_choose_family", choose_family, cases, quiet=quiet, task="choose_family")


# --------------------------------------------------------------------------
# Task 4: the nats that stochastic binarisation itself costs
# --------------------------------------------------------------------------


@functools.cache
def _per_image_entropy(mistake: str | None = None) -> np.ndarray:
    """The entropy of each MNIST test image's stochastic binarisation, in nats: the sum over
    its pixels of each grey value's binary entropy. ``mistake`` gives the usual wrong ones."""
    from tutorial_lib import data

    g, _ = data.load_images("mnist", "test")
    g = g.astype(np.float64).reshape(len(g), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        one, zero = np.nan_to_num(-g * np.log(g)), np.nan_to_num(-(1 - g) * np.log(1 - g))
    per_pixel = one if mistake == "half" else one + zero
    if mistake == "per_pixel":
        return per_pixel.mean(axis=1)
    per_image = per_pixel.sum(axis=1)
    return per_image / math.log(2.0) if mistake == "bits" else per_image


def _entropy(mistake: str | None = None) -> float:
    """The mean over the test images of :func:`_per_image_entropy`."""
    return float(_per_image_entropy(mistake).mean())


# The entropies are exact up to float32 rounding (a relative 1e-5); the nearest named
# mistake (bits for nats) is 30% away. Per image and for the mean, accepted within:
ENTROPY_RTOL = 1e-3
ENTROPY_MISTAKES = {
    "bits": "your entropies are in bits (log base 2); the task asks for nats (the natural log)",
    "per_pixel": "your entropies are per pixel: sum over the 784 pixels of each image",
    "half": "only the -g log g half of the binary entropy is there: a pixel is 0 with "
    "probability 1 - g, which adds -(1 - g) log(1 - g)",
}


def check_binarisation_noise(experiment, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``experiment()`` returns ``{"entropy": the entropy of each MNIST test image's
    stochastic binarisation (10,000 numbers, nats), "answer": their mean}``: the entropies
    are checked against the check's own (ENTROPY_RTOL), the answer against their mean."""
    state: dict = {}

    def returns_its_evidence():
        entropy, answer = read_evidence(
            experiment,
            {"entropy": "the entropy of each test image, in nats"},
            answer="their mean",
        )
        state.update(entropy=entropy, answer=answer)

    def the_entropies_are_a_measurement():
        entropy, right = state["entropy"], _per_image_entropy()
        expect(
            entropy.shape == right.shape,
            f"'entropy' should hold one number per test image, {len(right)}; got {entropy.size}.",
        )
        expect(
            bool(np.all(np.isfinite(entropy))),
            "your entropies hold NaN or infinite values: 0 log 0 counts as 0 (np.where, or "
            "np.nan_to_num after the logs).",
        )
        if np.allclose(entropy, right, rtol=ENTROPY_RTOL, atol=1e-9):
            return
        for mistake, message in ENTROPY_MISTAKES.items():
            wrong = _per_image_entropy(mistake)
            if np.allclose(entropy, wrong, rtol=ENTROPY_RTOL, atol=1e-9):
                raise CheckFailed(message + ".")
        if np.allclose(entropy, 0.0):
            raise CheckFailed(
                "0 nats is the entropy of thresholded images, which are not random: every "
                "grey pixel adds its binary entropy."
            )
        first = int(np.flatnonzero(~np.isclose(entropy, right, rtol=ENTROPY_RTOL))[0])
        raise CheckFailed(
            f"the entropy of test image {first} ({entropy[first]:.4g}) disagrees with a rerun "
            "of the task's experiment: for each image, the sum over its pixels of "
            "-g log g - (1 - g) log(1 - g), with 0 log 0 = 0."
        )

    def the_answer_is_their_mean():
        answer, mean = state["answer"], float(state["entropy"].mean())
        expect(
            math.isfinite(answer) and abs(answer - mean) <= ENTROPY_RTOL * abs(mean),
            f"your answer {answer:.5g} is not the mean of your own entropies ({mean:.5g}).",
        )

    checks = [returns_its_evidence, the_entropies_are_a_measurement, the_answer_is_their_mean]
    return run_check(
        "check_binarisation_noise", experiment, checks, quiet=quiet, task="binarisation_noise"
    )
