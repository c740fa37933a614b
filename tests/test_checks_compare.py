"""The exercise checks of exercise 07: the solution passes (visible and hidden cases),
stubs are 'not attempted', and plausible wrong answers fail with the message that names
their mistake: units, the sampling loop, the table's rule and the binarisation's entropy."""

import numpy as np
from check_helpers import (
    expect_failure,
    expect_pass,
    mistakes_test,
    no_marks_even_with_made_up_evidence,
    same_verdicts_over_the_wire,
    solution,
    task_tests,
    variant,
)

from tutorial_lib.checks import compare as checks
from tutorial_lib.grading.probes_compare import Conditional

EX = "07_compare"
TASKS = {
    "to_bits_per_dim": checks.check_to_bits_per_dim,
    "sample_pixels": checks.check_sample_pixels,
    "choose_family": checks.check_choose_family,
    "binarisation_noise_experiment": checks.check_binarisation_noise,
}


test_the_solution_passes_the_visible_and_the_hidden_cases, test_a_stub_is_not_attempted_yet = (
    task_tests(EX, TASKS)
)


RETURN = "    return nats / math.log(2.0)"
UNIT_MISTAKES = {
    "multiplied by ln 2": ([(RETURN, "    return nats * math.log(2.0)")], "multiplied by ln 2"),
    "nats, not bits": ([(RETURN, "    return nats")], "that is nats per dimension"),
    "sign flipped": ([(RETURN, "    return -nats / math.log(2.0)")], "sign is flipped"),
    "per image not divided": (
        [("        nats = value / dims", "        nats = value")],
        "per image: divide by the 784 dimensions",
    ),
    "bits taken for nats": (
        [("nats = value * math.log(2.0) / dims", "nats = value / dims")],
        "in bits already",
    ),
    "perplexity divided by the dimensions": (
        [("nats = math.log(value)", "nats = math.log(value) / dims")],
        "already per dimension",
    ),
    "perplexity taken as the likelihood": (
        [("nats = math.log(value)", "nats = value * math.log(2.0)")],
        "a perplexity is not a likelihood",
    ),
    "per dimension divided again": (
        [
            (
                '    elif unit == "nats per dimension":\n        nats = value\n',
                '    elif unit == "nats per dimension":\n        nats = value / dims\n',
            )
        ],
        "per dimension already",
    ),
    "unknown units accepted": (
        [("        raise ValueError(\n", "        return 0.0\n        raise ValueError(\n")],
        "was accepted",
    ),
}


test_unit_mistakes_are_named = mistakes_test(
    EX, "to_bits_per_dim", checks.check_to_bits_per_dim, UNIT_MISTAKES
)


DRAW = "canvas[:, i, j] = uniforms[:, i, j] < p"
SAMPLER_MISTAKES = {
    "a threshold at one half": ([(DRAW, "canvas[:, i, j] = p > 0.5")], "where p > 0.5"),
    "the comparison inverted": (
        [(DRAW, "canvas[:, i, j] = uniforms[:, i, j] > p")],
        "wrong way round",
    ),
    "probabilities returned": ([(DRAW, "canvas[:, i, j] = p")], "other than 0 and 1"),
    "column by column": (
        [
            (
                "    for i in range(height):\n        for j in range(width):",
                "    for j in range(width):\n        for i in range(height):",
            ),
        ],
        "column by column",
    ),
    "every probability from an empty canvas": (
        [("p = conditional(canvas, i, j)", "p = conditional(np.zeros(uniforms.shape), i, j)")],
        "not all drawn yet",
    ),
    "the canvas starts from the uniforms": (
        [("canvas = np.zeros(uniforms.shape)", "canvas = uniforms.copy()")],
        "must still be 0",
    ),
    "a fixed size": (
        [("n, height, width = uniforms.shape", "n, height, width = 6, 5, 5")],
        "not fixed sizes",
    ),
}


test_sampler_mistakes_are_named = mistakes_test(
    EX, "sample_pixels", checks.check_sample_pixels, SAMPLER_MISTAKES
)


BUDGET = "budget = 1000.0 / images_per_second"
CHOICE_MISTAKES = {
    "no time budget": ([('if row["ms_per_image"] <= budget', "if True")], "budget was not applied"),
    "images per second taken for milliseconds": (
        [(BUDGET, "budget = images_per_second")],
        "compared milliseconds with images per second",
    ),
    "the fastest": (
        [('key=lambda row: row["fd"]', 'key=lambda row: row["ms_per_image"]')],
        "fastest",
    ),
    "the highest FD": ([("return min(fits", "return max(fits")], "lower is better"),
    "'any' as exact only": (
        [('"any": ("bound", "exact")', '"any": ("exact",)')],
        "accepts a bound",
    ),
    "a bound taken for exact": (
        [('"exact": ("exact",)', '"exact": ("bound", "exact")')],
        "does not qualify",
    ),
    "no encoder requirement": (
        [('and (row["encoder"] or not encoder)', "and True")],
        "encoder requirement was ignored",
    ),
    "no None when nothing fits": (
        [("    if not fits:\n        return None\n", "")],
        "raised ValueError",
    ),
    "the table sorted in place": (
        [("    if not fits:", '    table.sort(key=lambda row: row["fd"])\n    if not fits:')],
        "changed the table",
    ),
}


test_choice_mistakes_are_named = mistakes_test(
    EX, "choose_family", checks.check_choose_family, CHOICE_MISTAKES
)


NOISE_MISTAKES = {
    "bits": (
        [
            (
                "entropy = -(g * np.log(g) + (1 - g) * np.log(1 - g))",
                "entropy = -(g * np.log2(g) + (1 - g) * np.log2(1 - g))",
            )
        ],
        "in bits",
    ),
    "per pixel": ([("(entropy).sum(axis=1)", "(entropy).mean(axis=1)")], "per pixel"),
    "half the binary entropy": (
        [("entropy = -(g * np.log(g) + (1 - g) * np.log(1 - g))", "entropy = -(g * np.log(g))")],
        "half of the binary entropy",
    ),
    "thresholded images": (
        [("g = grey.reshape", "g = (grey > 0.5).reshape")],
        "thresholded images",
    ),
    "0 log 0 left as NaN": ([("np.nan_to_num(entropy)", "entropy")], "NaN"),
    "answer not the mean of the evidence": (
        [('"answer": float(per_image.mean())', '"answer": float(np.median(per_image))')],
        "not the mean of your own entropies",
    ),
    "the first test image only": (
        [
            (
                'grey, _ = data.load_images("mnist", "test")',
                'grey, _ = data.load_images("mnist", "test", limit=1)',
            )
        ],
        "one number per test image",
    ),
}


test_noise_mistakes_are_named = mistakes_test(
    EX, "binarisation_noise_experiment", checks.check_binarisation_noise, NOISE_MISTAKES
)


def test_the_sampler_check_counts_every_draw():
    """The reference draws each pixel from the stand-in's conditional with its uniform."""
    sample = solution(EX, "sample_pixels")
    uniforms = np.random.default_rng(3).random((2, 3, 4))
    np.testing.assert_array_equal(
        sample(Conditional(), uniforms), checks._reference_samples(uniforms)
    )
    expect_pass(checks.check_sample_pixels(sample, quiet=True))


def test_a_table_where_nothing_fits_asks_for_none():
    choose = solution(EX, "choose_family")
    assert choose(checks.EXAMPLE_TABLE, 5000, likelihood="exact") is None

    def never_none(table, images_per_second, likelihood=None, encoder=False):
        return choose(table, images_per_second, likelihood, encoder) or "vae"

    expect_failure(checks.check_choose_family(never_none, quiet=True), "no model qualifies")


def test_a_constant_or_a_bisection_earns_nothing():
    """Constants, and a bisection steered by the messages, never pass; no message says
    which way to move."""

    def invented(answer):  # entropies made up to match the guess
        return {"entropy": np.full(10_000, answer), "answer": answer}

    no_marks_even_with_made_up_evidence(
        checks.check_binarisation_noise, invented, bare=(0.0, 1.0), dressed=(0.0, 200.0)
    )


def test_the_probes_give_the_same_verdicts_in_process_and_over_the_wire():
    """The sampler's and the chooser's checks judge the probes' plain data: run through the
    wire format (what crosses from the learner's process), the verdicts are the same."""
    pairs = [
        (checks.check_sample_pixels, solution(EX, "sample_pixels")),
        (
            checks.check_sample_pixels,
            variant(EX, "sample_pixels", ("uniforms[:, i, j] < p", "uniforms[:, i, j] > p")),
        ),
        (checks.check_choose_family, solution(EX, "choose_family")),
    ]
    same_verdicts_over_the_wire(checks, pairs)
