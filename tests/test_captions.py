import numpy as np
import pytest

from tutorial_lib import captions, data


def _bar(width=2, shear=0.0):
    """A vertical bar, ``width`` pixels wide, sheared ``shear`` pixels right per row up."""
    image = np.zeros((28, 28))
    for row in range(4, 24):
        centre = 14 + shear * (14 - row)
        start = int(round(centre - width / 2))
        image[row, start : start + width] = 1.0
    return image


def test_thickness_slant_and_width_measure_what_they_say():
    found = captions.measure(np.stack([_bar(1), _bar(5), _bar(3, 0.3), _bar(3, -0.3)]))
    thickness, slant, width = found["thickness"], found["slant"], found["width"]
    assert thickness[1] > thickness[0] + 1  # the wide pen
    assert slant[2] > 0.2 and slant[3] < -0.2 and abs(slant[0]) < 0.01
    assert width[1] > width[0]
    assert np.isnan(captions.measure(np.zeros((1, 28, 28, 1)))["slant"][0])  # no ink


def test_captions_put_the_levels_into_words():
    assert captions.caption_words(7, thickness=1, slant=1) == "a thick seven leaning right"
    assert captions.caption_words(0, thickness=-1, slant=-1) == "a thin zero leaning left"
    assert captions.caption_words(8) == "an eight"
    assert captions.caption_words(1, width=1) == "a wide one"
    with pytest.raises(ValueError, match="digit"):
        captions.caption_words(10)
    with pytest.raises(ValueError, match="slant"):
        captions.caption_words(3, slant=2)


def test_thickness_and_width_words_describe_a_third_of_each_digit_and_a_lean_is_absolute():
    cuts = captions.thresholds("mnist")
    assert all(cuts[name].shape == (10, 2) for name in captions.ATTRIBUTES)
    images, labels = data.load_images("mnist", "test")
    measured = captions.measure(images)
    found = captions.levels(labels, measured)
    for name in ("thickness", "width"):  # cut at the training digits' terciles
        for digit in (0, 1, 7):
            shares = [np.mean(found[name][labels == digit] == level) for level in (-1, 0, 1)]
            assert all(0.25 < share < 0.42 for share in shares), (name, digit, shares)
    slant = measured["slant"]
    expected = np.where(slant < -captions.SLANT_CUT, -1, np.where(slant > captions.SLANT_CUT, 1, 0))
    np.testing.assert_array_equal(found["slant"], expected)
    first = captions.captions(images[:50], labels[:50])
    assert first == captions.captions(images[:50], labels[:50])  # deterministic
    assert all(captions.DIGITS[d] in text for d, text in zip(labels[:50], first, strict=True))
    with pytest.raises(ValueError, match="255"):
        captions.measure(images[:2] * 255)
