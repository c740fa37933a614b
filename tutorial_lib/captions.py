"""Captions for MNIST digits, from their labels and from what their pixels measure.

A text-to-image model needs images with text. MNIST has labels only, so every digit gets
a short English caption built from its label and three attributes measured on its ink
(the pixels above 0.5), each put into words when it is clearly low or high for that
digit::

    "a thick seven leaning right"     "a wide thin zero"     "an eight"

* **thickness**: twice the mean distance from an ink pixel to the nearest background
  pixel (scipy's Euclidean distance transform). A straight stroke :math:`w` pixels wide
  scores about :math:`w/2 + 1`: it grows with the pen's width, whatever the digit's shape.
* **slant**: the shear that the ink's second moments show. With the ink's intensities as
  weights, centred at their mean, :math:`\\mu_{11} = \\sum w\\,(x - \\bar x)(y - \\bar y)`
  and :math:`\\mu_{02} = \\sum w\\,(y - \\bar y)^2` (rows :math:`y` counted downwards);
  :math:`-\\mu_{11} / \\mu_{02}` is how far the ink moves right per row upwards, so it is
  positive for a digit leaning right (the shear that MNIST "deskewing" undoes).
* **width**: the spread of the ink across the image, :math:`2\\sqrt{3}\\,\\sigma_x`
  pixels (the width of a bar of even ink with that standard deviation). MNIST scales
  every digit to fit a 20-pixel box, so the height says little; the width does.

Thickness and width are words relative to the digit: a "thick one" is thick *for a
one*. Their thresholds are the terciles among the training split's digits of that class
(:func:`thresholds`): the lowest third gets the low word, the highest third the high
word, the middle third no word, so each of these words describes a third of each digit.
A lean is a lean whatever the digit: beyond a shear of ``SLANT_CUT`` = 0.2 (about 11
degrees) either way. Most writers lean right, so a third of the training digits "lean
right" and an eighth "lean left"; a zero leaning left is rare (2% of the zeros).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
from scipy import ndimage

from tutorial_lib import data, stores

ATTRIBUTES = ("thickness", "slant", "width")
# The words for the lowest and the highest third of each attribute.
WORDS = {
    "thickness": ("thin", "thick"),
    "slant": ("leaning left", "leaning right"),
    "width": ("narrow", "wide"),
}
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
INK = 0.5  # a pixel above this is ink
SLANT_CUT = 0.2  # a shear beyond this, either way, is a lean (tan 11 degrees)


def _as_pixels(images) -> np.ndarray:
    """Images (N, 28, 28) or (N, 28, 28, 1) in [0, 1] as float64 (N, 28, 28)."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"Expected images of shape (N, 28, 28) or (N, 28, 28, 1); got {x.shape}.")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError("Expected pixel values in [0, 1]; divide uint8 images by 255.")
    return x


def measure(images) -> dict[str, np.ndarray]:
    """The three attributes of every image: ``{"thickness", "slant", "width"}``, each an
    array of shape (N,). An image without ink gets NaN."""
    x = _as_pixels(images)
    ink = x > INK
    area = ink.sum(axis=(1, 2))
    # Distances to the nearest background pixel, image by image.
    inside = np.array([(ndimage.distance_transform_edt(m) * m).sum() for m in ink])
    # The moments from the ink's sums along the rows and the columns (float64).
    rows = np.arange(x.shape[1], dtype=np.float64)
    cols = np.arange(x.shape[2], dtype=np.float64)
    per_row, per_col = x.sum(axis=2), x.sum(axis=1)  # (N, 28) each
    mass = per_row.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        thickness = 2.0 * inside / area
        mean_row, mean_col = per_row @ rows / mass, per_col @ cols / mass
        mu02 = per_row @ rows**2 - mass * mean_row**2
        mu20 = per_col @ cols**2 - mass * mean_col**2
        mu11 = np.einsum("nij,i,j->n", x, rows, cols) - mass * mean_row * mean_col
        slant = -mu11 / mu02
        width = 2.0 * np.sqrt(3.0) * np.sqrt(mu20 / mass)
    empty = area == 0
    return {
        name: np.where(empty, np.nan, value)
        for name, value in (("thickness", thickness), ("slant", slant), ("width", width))
    }


@functools.cache
def measured_split(dataset: str = "mnist", split: str = "train") -> dict[str, np.ndarray]:
    """:func:`measure` of every image of a split, in the split's order.

    Measuring 60,000 digits takes seconds, so the measures are kept in
    :func:`tutorial_lib.stores.cache_dir` under a name made from the images and from this
    module's code (new data or a changed measure is never read against an old copy)."""
    images, _ = data.load_images(dataset, split)
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(np.ascontiguousarray(images).tobytes())
    return stores.cached_arrays(
        f"{dataset}_{split}_caption_measures", digest.hexdigest(), lambda: measure(images)
    )


@functools.cache
def thresholds(dataset: str = "mnist") -> dict[str, np.ndarray]:
    """Per attribute, an array (10, 2): for each digit, the value below which the low
    word applies and the one above which the high word does. Thickness and width: the
    first and second terciles among that digit's training images (:func:`measured_split`);
    slant: the same ``(-SLANT_CUT, SLANT_CUT)`` for every digit."""
    _, labels = data.load_images(dataset, "train")
    measured = measured_split(dataset, "train")
    cuts = {
        name: np.stack(
            [np.nanquantile(measured[name][labels == digit], [1 / 3, 2 / 3]) for digit in range(10)]
        )
        for name in ("thickness", "width")
    }
    cuts["slant"] = np.tile([-SLANT_CUT, SLANT_CUT], (10, 1))
    return cuts


def levels(labels, measured: dict[str, np.ndarray], dataset: str = "mnist") -> dict:
    """Each attribute as -1 (its low word), 0 (no word) or +1 (its high word), arrays of
    shape (N,): see :func:`thresholds`."""
    labels = np.asarray(labels, dtype=np.int64)
    cuts = thresholds(dataset)
    out = {}
    for name in ATTRIBUTES:
        low, high = cuts[name][labels, 0], cuts[name][labels, 1]
        values = measured[name]
        out[name] = np.where(values < low, -1, np.where(values > high, 1, 0))
    return out


def caption_words(digit: int, thickness: int = 0, slant: int = 0, width: int = 0) -> str:
    """The caption of a digit whose attributes lie at the given levels (-1, 0 or +1):
    ``caption_words(7, thickness=1, slant=1)`` is ``"a thick seven leaning right"``."""
    if not 0 <= digit <= 9:
        raise ValueError(f"digit must be 0 to 9; got {digit}.")
    chosen = {"thickness": thickness, "slant": slant, "width": width}
    for name, level in chosen.items():
        if level not in (-1, 0, 1):
            raise ValueError(f"{name} must be -1, 0 or 1; got {level}.")

    def word(name):
        level = chosen[name]
        return [] if level == 0 else [WORDS[name][(level + 1) // 2]]

    words = [*word("width"), *word("thickness"), DIGITS[digit], *word("slant")]
    article = "an" if words[0][0] in "aeiu" else "a"  # "an eight", but "a one"
    return " ".join([article, *words])


def captions(images, labels, dataset: str = "mnist") -> list[str]:
    """One caption per image, from its label and its measured attributes."""
    labels = np.asarray(labels, dtype=np.int64)
    found = levels(labels, measure(images), dataset)
    return [
        caption_words(int(digit), *(int(found[name][i]) for name in ATTRIBUTES))
        for i, digit in enumerate(labels)
    ]
