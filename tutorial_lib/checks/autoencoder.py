"""Checks for ``exercises/01_autoencoder.ipynb``: an encoder for any image shape,
masking noise, a PCA autoencoder, and how many PCA codes MNIST needs.

Each check runs hidden cases on the learner's function (``hidden=True``: other
shapes and seeds, for the graders' hidden tests) and names the usual mistakes.
"""

from __future__ import annotations

import functools

import keras
import numpy as np

from tutorial_lib.checks import CheckFailed, CheckResult, Hints, check_number, expect, run_check

hint = Hints(
    {
        "encoder": (
            "Flatten the image into one vector, then stack one fully connected layer per "
            "entry of `hidden`, each followed by a non-linearity, and end with a layer of "
            "`latent_dim` units that is left linear. Without the non-linearities the whole "
            "stack collapses into a single linear map.",
            "keras.Input(input_shape), keras.layers.Flatten, keras.layers.Dense(units, "
            "activation=...) in a loop over `hidden`, and keras.Model(inputs, outputs).",
        ),
        "mask_noise": (
            "Draw one independent coin flip per value of every image (a new pattern for "
            "each image), zero the values whose coin says 'drop', and leave the others "
            "exactly as they were, without rescaling.",
            "np.random.default_rng(seed), its .random(shape) for uniform numbers, a "
            "comparison with drop_rate for a boolean mask of the full shape of x, and "
            "np.where; return float32.",
        ),
        "pca": (
            "The best linear autoencoder with k codes projects the centred data onto its k "
            "directions of largest variance. Fit: flatten the images, subtract the mean image, "
            "find those directions. Encode: centre and project. Decode: map back, add the "
            "mean, restore the image shape.",
            "x.reshape(len(x), -1), .mean(axis=0), np.linalg.eigh of the centred data's "
            "D x D scatter matrix (its eigenvectors are columns, in *ascending* order of "
            "eigenvalue), the matrix product @ and .T, and reshape with the stored image shape.",
        ),
        "code_size": (
            "Fit your PCAAutoencoder on the training images for a latent_dim, measure the "
            "mean squared error of the reconstructed *test* images, and search for the "
            "smallest latent_dim that reaches the target.",
            "data.load_images('mnist', 'train', limit=...) and ('mnist', 'test', limit=...), "
            "np.mean of the squared difference, and a loop (or a bisection) over latent_dim.",
        ),
    }
)


def _images(shape=(28, 28, 1), n: int = 16, seed: int = 0) -> np.ndarray:
    """Fixed random 'images' in [0, 1] (the checks need no data set)."""
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32)


def _shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _dense_params(sizes) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


# --------------------------------------------------------------------------
# Task 1: an encoder for any image shape
# --------------------------------------------------------------------------


def check_encoder(build_encoder, *, quiet: bool = False, hidden: bool = False) -> CheckResult:
    """``build_encoder(input_shape, latent_dim, hidden)``: a keras.Model from images of
    ``input_shape`` to codes of ``latent_dim``: Flatten, one ReLU Dense layer per entry
    of ``hidden``, then a linear Dense(latent_dim)."""
    shape, latent, widths = ((8, 8, 2), 3, (16, 8, 4)) if hidden else ((28, 28, 1), 32, (64, 32))
    state = {}

    def apply(model, x):
        try:
            return np.asarray(model(x))
        except Exception as error:
            raise CheckFailed(
                f"could not apply your encoder to images of shape {x.shape} "
                f"({type(error).__name__}: {str(error)[:160]}): start with "
                "keras.Input(input_shape), not a fixed (28, 28, 1), and flatten the images "
                "before the Dense layers."
            ) from None

    def returns_a_model():
        model = build_encoder(shape, latent, widths)
        expect(
            isinstance(model, keras.Model),
            f"build_encoder should return a keras.Model, got {type(model).__name__}.",
        )
        state["model"] = model

    def maps_images_to_codes():
        codes = apply(state["model"], _images(shape, 5))
        if codes.ndim > 2:
            raise CheckFailed(
                f"the codes have shape {_shape((None, *codes.shape[1:]))}: a Dense layer on "
                "an image acts on its last axis only; flatten the image first."
            )
        expect(
            codes.shape == (5, latent),
            f"build_encoder({shape}, {latent}, {widths}) gives codes of shape "
            f"{_shape((None, *codes.shape[1:]))}, expected (None, {latent}): use the "
            "latent_dim argument for the last layer.",
        )

    def follows_the_input_shape():
        rgb = (32, 32, 3)
        codes = apply(build_encoder(rgb, 6, (16,)), _images(rgb, 3))
        expect(
            codes.ndim != 2 or codes.shape[1] == 6,
            f"build_encoder({rgb}, 6, (16,)) gives {codes.shape[-1]} codes per image, expected "
            "6: use the latent_dim argument for the last layer.",
        )
        expect(
            codes.shape == (3, 6),
            f"for RGB images of shape {rgb} and latent_dim 6 the codes have shape "
            f"{_shape((None, *codes.shape[1:]))}, expected (None, 6): build the Input "
            "from the input_shape argument, not a fixed (28, 28, 1).",
        )

    def has_the_hidden_layers():
        size = int(np.prod(shape))
        expected = _dense_params([size, *widths, latent])
        got = state["model"].count_params()
        for wrong in ((256, 128), ()):
            if got == _dense_params([size, *wrong, latent]) and tuple(wrong) != tuple(widths):
                raise CheckFailed(
                    f"with hidden={widths} your encoder has the parameters of hidden "
                    f"layers {wrong}: make one Dense layer per entry of the hidden argument."
                )
        expect(
            got == expected,
            f"expected {expected:,} parameters for Dense layers "
            f"{' -> '.join(str(n) for n in (size, *widths, latent))}, got {got:,}: one Dense "
            "layer per entry of hidden, in order, then Dense(latent_dim); no other weights.",
        )

    def is_not_a_linear_map():
        model = state["model"]
        rng = np.random.default_rng(7)
        a = rng.random((4, *shape)).astype(np.float32)
        b = rng.random((4, *shape)).astype(np.float32)
        zero = np.zeros((4, *shape), np.float32)
        gap = apply(model, a + b) - apply(model, a) - apply(model, b) + apply(model, zero)
        scale = np.abs(apply(model, a + b)).max() + 1e-6
        expect(
            np.abs(gap).max() > 1e-3 * scale,
            "your encoder is an affine map (f(a + b) = f(a) + f(b) - f(0) for every pair of "
            "images): the hidden layers have no activation, so the stack is one linear layer "
            "in disguise. Give every hidden Dense layer activation='relu'.",
        )

    def code_is_linear():
        codes = apply(state["model"], 40.0 * _images(shape, 64, seed=1) - 20.0)
        expect(
            (codes < 0).any(),
            "no code value is ever negative: there is a ReLU on the code layer. Leave the "
            "last Dense layer linear (no activation) so that no code unit can die.",
        )
        expect(
            np.abs(codes).max() > 1.0,
            "every code value stays within [-1, 1] even for large inputs: the code layer is "
            "squashed (tanh or sigmoid?). Leave the last Dense layer linear.",
        )

    def gradients_reach_every_layer():
        import tensorflow as tf

        model = state["model"]
        x = tf.constant(_images(shape, 8, seed=2))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(model(x, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        for variable, grad in zip(model.trainable_variables, grads, strict=True):
            expect(
                grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0,
                f"no gradient reaches {variable.path}: call each layer on the previous "
                "layer's output, from the input to the code.",
            )

    cases = [
        returns_a_model,
        maps_images_to_codes,
        follows_the_input_shape,
        has_the_hidden_layers,
        is_not_a_linear_map,
        code_is_linear,
        gradients_reach_every_layer,
    ]
    return run_check("check_encoder", build_encoder, cases, quiet=quiet, task="encoder")


# --------------------------------------------------------------------------
# Task 2: masking noise
# --------------------------------------------------------------------------


def check_mask_noise(mask_noise, *, quiet: bool = False, hidden: bool = False) -> CheckResult:
    """``mask_noise(x, drop_rate, seed)``: every value of every image independently set to
    0 with probability ``drop_rate``, the rest unchanged; float32, reproducible with
    ``seed``, the input left alone."""
    shape = (6, 6, 3) if hidden else (28, 28, 1)
    x = 0.5 + 0.5 * _images(shape, 64, seed=3)  # in [0.5, 1]: a dropped value is the only 0
    rate = 0.3 if hidden else 0.25

    def call(images, drop_rate, seed):
        return np.asarray(mask_noise(images.copy(), drop_rate, seed))

    def keeps_shape_and_dtype():
        out = call(x.copy(), rate, 0)
        expect(
            out.shape == x.shape and out.dtype == np.float32,
            f"expected float32 images of shape {x.shape}, got {out.dtype} of shape "
            f"{out.shape}: return an array like the input, as float32.",
        )

    def leaves_the_input_alone():
        before = x.copy()
        mask_noise(x, rate, 0)
        expect(
            np.array_equal(x, before),
            "mask_noise changed the images it was given: build a new array, do not zero "
            "values in place.",
        )

    def keeps_or_zeroes_each_value():
        out = call(x, rate, 1)
        dropped = out == 0
        kept = ~dropped
        if np.allclose(out[kept], x[kept] / (1 - rate), rtol=1e-5):
            raise CheckFailed(
                f"the kept values are divided by 1 - drop_rate = {1 - rate}: that is the "
                "rescaling of dropout layers; a corrupted *image* keeps its pixel values."
            )
        expect(
            np.allclose(out[kept], x[kept], rtol=1e-6),
            "some values are neither kept as they were nor set to 0: multiply by a 0/1 mask "
            "(or use np.where), not by random numbers or added noise.",
        )

    def drops_the_requested_fraction():
        for drop_rate in (rate, 0.6):
            fraction = float(np.mean(call(x, drop_rate, 2) == 0))
            if abs(fraction - (1 - drop_rate)) < 0.05 and abs(drop_rate - 0.5) > 0.05:
                raise CheckFailed(
                    f"with drop_rate={drop_rate} you zeroed {fraction:.0%} of the values: you "
                    "keep a value with probability drop_rate; it is the probability of "
                    "dropping it."
                )
            expect(
                abs(fraction - drop_rate) < 0.05,
                f"with drop_rate={drop_rate} you zeroed {fraction:.1%} of the values, expected "
                f"about {drop_rate:.0%}.",
            )

    def edges_zero_and_one():
        expect(
            np.array_equal(call(x, 0.0, 3), x),
            "with drop_rate=0 the images should come back unchanged.",
        )
        expect(
            not call(x, 1.0, 3).any(),
            "with drop_rate=1 every value should be 0.",
        )

    def each_image_gets_its_own_mask():
        dropped = call(x, 0.5, 4) == 0
        if all(np.array_equal(dropped[0], dropped[i]) for i in range(1, len(x))):
            raise CheckFailed(
                "every image has the same values dropped: the mask was drawn once (for one "
                "image) and broadcast to the batch. Draw it for the full shape of x, so each "
                "image gets its own pattern."
            )
        per_image = dropped.reshape(len(x), -1).mean(axis=1)
        if np.all((per_image == 0) | (per_image == 1)):
            raise CheckFailed(
                "each image is either dropped whole or kept whole: draw one coin per value, "
                "not one per image."
            )
        expect(
            per_image.std() < 0.15,
            "the fraction of dropped values varies far too much between images: draw the "
            "values independently, one coin per value.",
        )

    def seed_makes_it_reproducible():
        first, again, other = call(x, rate, 7), call(x, rate, 7), call(x, rate, 8)
        expect(
            np.array_equal(first, again),
            "two calls with seed=7 gave different masks: draw from "
            "np.random.default_rng(seed), not from the global np.random.",
        )
        expect(not np.array_equal(first, other), "seeds 7 and 8 gave the same mask: use seed.")

    cases = [
        leaves_the_input_alone,
        keeps_shape_and_dtype,
        keeps_or_zeroes_each_value,
        drops_the_requested_fraction,
        edges_zero_and_one,
        each_image_gets_its_own_mask,
        seed_makes_it_reproducible,
    ]
    return run_check("check_mask_noise", mask_noise, cases, quiet=quiet, task="mask_noise")


# --------------------------------------------------------------------------
# Task 3: a PCA autoencoder
# --------------------------------------------------------------------------


def _low_rank_images(shape, n: int, seed: int) -> np.ndarray:
    """Images with a few strong directions, a mean far from 0, and a little noise."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    basis = np.random.default_rng(98).standard_normal((6, size))  # shared by the splits
    weights = rng.standard_normal((n, 6)) * np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.5])
    mean_image = np.random.default_rng(99).uniform(0.0, 6.0, size)  # the same for every split
    flat = mean_image + weights @ basis + 0.05 * rng.standard_normal((n, size))
    return flat.reshape(n, *shape).astype(np.float32)


def _pca_errors(train, test, k: int) -> dict[str, float]:
    """Test MSE of the right PCA and of the usual mistakes."""
    a = train.reshape(len(train), -1).astype(np.float64)
    b = test.reshape(len(test), -1).astype(np.float64)
    mean = a.mean(axis=0)

    def mse(directions, centre):
        rec = (b - centre) @ directions.T @ directions + centre
        return float(np.mean((b - rec) ** 2))

    vt = np.linalg.svd(a - mean, full_matrices=False)[2]
    vt_raw = np.linalg.svd(a, full_matrices=False)[2]
    vt_scalar = np.linalg.svd(a - a.mean(), full_matrices=False)[2]
    return {
        "right": mse(vt[:k], mean),
        "no_centring": mse(vt_raw[:k], 0.0),
        "scalar_mean": mse(vt_scalar[:k], a.mean()),
        "smallest": mse(vt[-k:], mean),
    }


def check_pca_autoencoder(
    PCAAutoencoder, *, quiet: bool = False, hidden: bool = False
) -> CheckResult:
    """``PCAAutoencoder(latent_dim)`` with ``fit(x)`` (returns itself), ``encode(x)`` ->
    codes (N, latent_dim) and ``decode(codes)`` -> images shaped like the training images:
    the best linear autoencoder, through the top principal directions of centred data."""
    shape = (4, 4, 3) if hidden else (7, 7, 1)
    train = _low_rank_images(shape, 300, seed=11 if hidden else 5)
    test = _low_rank_images(shape, 50, seed=12 if hidden else 6)
    k = 3
    state = {}

    def fits_and_returns_itself():
        model = PCAAutoencoder(k)
        fitted = model.fit(train)
        expect(
            fitted is model,
            f"fit should end with `return self` (so that PCAAutoencoder(k).fit(x) is the fitted "
            f"model), got {type(fitted).__name__}.",
        )
        state["model"] = model

    def has_the_right_shapes():
        model = state["model"]
        codes = np.asarray(model.encode(test))
        expect(
            codes.shape == (len(test), k),
            f"encode of {len(test)} images with latent_dim={k} should give codes of shape "
            f"({len(test)}, {k}), got {codes.shape}.",
        )
        images = np.asarray(model.decode(codes))
        expect(
            images.shape == test.shape,
            f"decode should give images of the training images' shape {test.shape}, got "
            f"{images.shape}: reshape the flat vectors back (store the image shape in fit).",
        )
        state["reconstruction"] = images.astype(np.float64)

    def reconstructs_as_well_as_pca():
        got = float(np.mean((test - state["reconstruction"]) ** 2))
        errors = _pca_errors(train, test, k)
        mistakes = {
            "no_centring": "the data was not centred: subtract the mean image before finding "
            "the directions (and add it back when decoding)",
            "scalar_mean": "you subtracted one number (the mean of all pixels): subtract the "
            "mean *image*, one mean per pixel (axis=0)",
            "smallest": "you kept the directions of *smallest* variance: np.linalg.eigh sorts "
            "eigenvalues in ascending order (np.linalg.svd in descending order); keep the "
            "latent_dim directions of largest variance",
        }
        if np.isclose(got, errors["right"], rtol=1e-3, atol=1e-7):
            return
        for key, message in mistakes.items():
            expect(
                not np.isclose(got, errors[key], rtol=1e-3),
                f"test MSE {got:.4g}, the best {k}-code linear autoencoder reaches "
                f"{errors['right']:.4g}: {message}.",
            )
        raise CheckFailed(
            f"test MSE {got:.4g}, the best {k}-code linear autoencoder reaches "
            f"{errors['right']:.4g}: encode = (flattened x - mean) projected on the top "
            "latent_dim directions; decode = codes mapped back along them, plus the mean."
        )

    def codes_of_the_mean_image_are_zero():
        mean_image = train.mean(axis=0, keepdims=True)
        codes = np.asarray(state["model"].encode(mean_image), dtype=np.float64)
        expect(
            np.allclose(codes, 0.0, atol=1e-3 * np.abs(train).max()),
            "the mean training image should have the code 0 (encode centres the data with "
            f"the mean of fit), got {np.round(codes.ravel()[:3], 3)}.",
        )

    def first_code_has_the_most_variance():
        variances = np.var(np.asarray(state["model"].encode(train), dtype=np.float64), axis=0)
        expect(
            np.all(np.diff(variances) <= 1e-6 * variances.max()),
            f"the codes' variances are {np.round(variances, 2)}: the first code should carry "
            "the most variance, then the next (keep the directions in SVD's order).",
        )

    def full_rank_is_lossless():
        size = int(np.prod(shape))
        model = PCAAutoencoder(size).fit(train[: size + 5])
        back = np.asarray(model.decode(model.encode(test)), dtype=np.float64)
        expect(
            np.allclose(back, test, atol=1e-3),
            f"with latent_dim = {size} (every direction) decode(encode(x)) should give x "
            "back exactly.",
        )

    cases = [
        fits_and_returns_itself,
        has_the_right_shapes,
        reconstructs_as_well_as_pca,
        codes_of_the_mean_image_are_zero,
        first_code_has_the_most_variance,
        full_rank_is_lossless,
    ]
    return run_check("check_pca_autoencoder", PCAAutoencoder, cases, quiet=quiet, task="pca")


# --------------------------------------------------------------------------
# Task 4 (investigate): how many codes does MNIST need?
# --------------------------------------------------------------------------

CODE_SIZE_EXPERIMENT = {"train": 1000, "test": 500, "target_mse": 0.02}


@functools.cache
def _mnist_pca_curves() -> dict[str, np.ndarray]:
    """Test (and train) MSE of PCA on the experiment's MNIST subsets for every latent_dim."""
    from tutorial_lib import data

    train, _ = data.load_images("mnist", "train", limit=CODE_SIZE_EXPERIMENT["train"])
    test, _ = data.load_images("mnist", "test", limit=CODE_SIZE_EXPERIMENT["test"])
    a = train.reshape(len(train), -1).astype(np.float64)
    b = test.reshape(len(test), -1).astype(np.float64)
    mean = a.mean(axis=0)
    vt = np.linalg.eigh((a - mean).T @ (a - mean))[1][:, ::-1].T  # (an SVD is slower here)
    curves = {}
    for name, x in (("test", b), ("train", a)):
        projections = (x - mean) @ vt.T
        total = np.sum((x - mean) ** 2, axis=1).mean()
        captured = np.cumsum(np.mean(projections**2, axis=0))
        curves[name] = (total - captured) / x.shape[1]  # MSE for latent_dim = 1, 2, ...
    return curves


def _smallest_dim(curve: np.ndarray) -> int:
    return int(np.argmax(curve <= CODE_SIZE_EXPERIMENT["target_mse"])) + 1


def check_code_size(experiment, *, quiet: bool = False, hidden: bool = False) -> CheckResult:
    """``experiment()``: the smallest latent_dim whose PCA autoencoder, fitted on the first
    1,000 MNIST training images, reconstructs the first 500 test images with MSE <= 0.02."""
    curves = _mnist_pca_curves
    return check_number(
        "check_code_size",
        experiment,
        lambda: _smallest_dim(curves()["test"]),
        rel_tol=0.1,
        what="the smallest latent_dim that reaches a test MSE of 0.02",
        mistakes=lambda: {
            "you measured the error on the training images; the question is about the "
            "test images": _smallest_dim(curves()["train"]),
        },
        quiet=quiet,
        task="code_size",
    )
