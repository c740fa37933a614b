"""Checks for ``exercises/01_autoencoder.ipynb``: an encoder for any image shape,
masking noise, a PCA autoencoder, and how many PCA codes MNIST needs.

While grading, the learner's code runs in its own process: the checks send it inputs, and
the probes of :mod:`tutorial_lib.grading.probes_autoencoder` fit its PCA there and send
back arrays (codes, reconstructions), which the checks judge here against float64
references; its Keras encoders come back as ``.keras`` files that the check loads with
``safe_mode=True`` and runs here. The hidden cases (``hidden={...}``: other shapes
and seeds) are in the instructor's source notebook only. Each check names the usual
mistakes.
"""

from __future__ import annotations

import functools

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
from tutorial_lib.grading.remote import run_probe

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
            "np.mean of the squared difference, a loop (or a bisection) over latent_dim, and a "
            "dict that keeps every latent_dim you fitted with its test MSE.",
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


def _loaded(file: dict):
    """The learner's encoder from its ``.keras`` file, loaded here with ``safe_mode=True``
    (no code of the learner's runs in the grader), or the failure that says why not."""
    import tempfile
    from pathlib import Path

    import keras

    expect(
        file["type"] == "Model", f"build_encoder should return a keras.Model, got {file['type']}."
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "encoder.keras"
        path.write_bytes(np.asarray(file["keras"], np.uint8).tobytes())
        try:
            return keras.models.load_model(path, safe_mode=True, compile=False)
        except Exception as error:
            raise CheckFailed(
                f"your encoder could not be saved and loaded again ({type(error).__name__}: "
                f"{str(error)[:160]}): build it from Keras's own layers only (no Lambda "
                "layers, no layer classes of your own)."
            ) from None


def _to_numpy(value) -> np.ndarray:
    """A tensor of any backend (a PyTorch one that tracks gradients included) as NumPy."""
    from keras import ops

    return np.asarray(ops.convert_to_numpy(value))


def _apply(model, x) -> np.ndarray:
    try:
        return np.asarray(_to_numpy(model(x)), np.float64)
    except Exception as error:
        raise CheckFailed(
            f"could not apply your encoder to images of shape {x.shape} "
            f"({type(error).__name__}: {str(error)[:160]}): start with "
            "keras.Input(input_shape), not a fixed (28, 28, 1), and flatten the images "
            "before the Dense layers."
        ) from None


def check_encoder(build_encoder, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``build_encoder(input_shape, latent_dim, hidden)``: a keras.Model from images of
    ``input_shape`` to codes of ``latent_dim``: Flatten, one ReLU Dense layer per entry
    of ``hidden``, then a linear Dense(latent_dim). The models are built where the
    learner's code lives and come here as ``.keras`` files, loaded with ``safe_mode=True``
    and run here. ``hidden``: ``{"shape": [...], "latent": n, "widths": [...], "flat": [d]}``."""
    cases_ = hidden_cases(hidden, "check_encoder")
    shape = tuple(cases_.get("shape", (28, 28, 1)))
    latent, widths = int(cases_.get("latent", 32)), tuple(cases_.get("widths", (64, 32)))
    rgb, flat_shape = (32, 32, 3), tuple(cases_.get("flat", (12,)))  # other ranks, sizes
    builds = [
        {"shape": shape, "latent": latent, "widths": widths, "n": (5, 1)},
        {"shape": rgb, "latent": 6, "widths": (16,), "n": (3,)},
        {"shape": flat_shape, "latent": 2, "widths": (5,), "n": (4, 1)},
    ]
    state = {}

    def returns_a_model():
        files = run_probe(build_encoder, "encoder_files", builds=builds)
        state["models"] = [_loaded(file) for file in files]
        state["model"] = state["models"][0]

    def maps_images_to_codes():
        for n in builds[0]["n"]:
            codes = _apply(state["model"], _images(shape, n, seed=n))
            if codes.ndim > 2:
                raise CheckFailed(
                    f"the codes have shape {_shape((None, *codes.shape[1:]))}: a Dense layer "
                    "on an image acts on its last axis only; flatten the image first."
                )
            expect(
                codes.shape == (n, latent),
                f"build_encoder({shape}, {latent}, {widths}) gives codes of shape "
                f"{codes.shape} for {n} image(s), expected ({n}, {latent}): use the "
                "latent_dim argument for the last layer.",
            )

    def follows_the_input_shape():
        for model, build in zip(state["models"][1:], builds[1:], strict=True):
            other, size = build["shape"], build["latent"]
            for n in build["n"]:
                codes = _apply(model, _images(other, n, seed=n))
                expect(
                    codes.ndim != 2 or codes.shape[1] == size,
                    f"build_encoder({other}, {size}, {build['widths']}) gives "
                    f"{codes.shape[-1]} codes per image, expected {size}: use the latent_dim "
                    "argument for the last layer.",
                )
                expect(
                    codes.shape == (n, size),
                    f"for inputs of shape {other} and latent_dim {size} the codes have shape "
                    f"{codes.shape} for {n} input(s), expected ({n}, {size}): build "
                    "the Input from the input_shape argument, not a fixed (28, 28, 1).",
                )

    def has_the_hidden_layers():
        for model, build in zip(state["models"], builds, strict=True):
            size, sizes = int(np.prod(build["shape"])), tuple(build["widths"])
            expected = _dense_params([size, *sizes, build["latent"]])
            got = model.count_params()
            for wrong in ((256, 128), ()):
                if got == _dense_params([size, *wrong, build["latent"]]) and wrong != sizes:
                    raise CheckFailed(
                        f"with hidden={sizes} your encoder has the parameters of hidden "
                        f"layers {wrong}: make one Dense layer per entry of the hidden argument."
                    )
            expect(
                got == expected,
                f"expected {expected:,} parameters for Dense layers "
                f"{' -> '.join(str(n) for n in (size, *sizes, build['latent']))}, got "
                f"{got:,}: one Dense layer per entry of hidden, in order, then "
                "Dense(latent_dim); no other weights.",
            )

    def is_not_a_linear_map():
        model = state["model"]
        rng = np.random.default_rng(7)
        a = rng.random((4, *shape)).astype(np.float32)
        b = rng.random((4, *shape)).astype(np.float32)
        zero = np.zeros((4, *shape), np.float32)
        gap = _apply(model, a + b) - _apply(model, a) - _apply(model, b) + _apply(model, zero)
        scale = np.abs(_apply(model, a + b)).max() + 1e-6
        expect(
            np.abs(gap).max() > 1e-3 * scale,
            "your encoder is an affine map (f(a + b) = f(a) + f(b) - f(0) for every pair of "
            "images): the hidden layers have no activation, so the stack is one linear layer "
            "in disguise. Give every hidden Dense layer activation='relu'.",
        )

    def code_is_linear():
        codes = _apply(state["model"], 40.0 * _images(shape, 64, seed=1) - 20.0)
        expect(
            np.abs(codes).max() > 1.0,
            "every code value stays within [-1, 1] even for large inputs: the code layer is "
            "squashed (tanh or sigmoid?). Leave the last Dense layer linear.",
        )
        expect(
            (codes < 0).any(),
            "no code value is ever negative: there is a ReLU on the code layer. Leave the "
            "last Dense layer linear (no activation) so that no code unit can die.",
        )

    def gradients_reach_every_layer():
        from keras import ops

        from tutorial_lib.gradients import value_and_gradients

        model = state["model"]
        x = ops.convert_to_tensor(_images(shape, 8, seed=2))
        variables = list(model.trainable_variables)

        def loss_fn():
            return ops.sum(ops.square(model(x, training=True))), None

        _, grads = value_and_gradients(loss_fn, variables)
        for variable, grad in zip(variables, grads, strict=True):
            expect(
                grad is not None and float(np.abs(_to_numpy(grad)).max(initial=0.0)) > 0,
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


def check_mask_noise(mask_noise, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``mask_noise(x, drop_rate, seed)``: every value of every image independently set to
    0 with probability ``drop_rate``, the rest unchanged; float32, reproducible with
    ``seed``, the input left alone. ``hidden``: ``{"shape": [...], "rate": r, "flat": [d]}``."""
    cases_ = hidden_cases(hidden, "check_mask_noise")
    shape, rate = tuple(cases_.get("shape", (28, 28, 1))), float(cases_.get("rate", 0.25))
    x = 0.5 + 0.5 * _images(shape, 64, seed=3)  # in [0.5, 1]: a dropped value is the only 0
    flat_shape = tuple(cases_.get("flat", (50,)))  # a batch of vectors: another rank
    others = [0.5 + 0.5 * _images(flat_shape, 9, seed=13), x[:1]]  # (and a batch of one)

    def call(images, drop_rate, seed):
        return np.asarray(mask_noise(images.copy(), drop_rate, seed))

    def keeps_shape_and_dtype():
        for images in (x, *others):
            out = call(images, rate, 0)
            expect(
                out.shape == images.shape and out.dtype == np.float32,
                f"expected float32 images of shape {images.shape}, got {out.dtype} of shape "
                f"{out.shape}: return an array like the input, as float32.",
            )

    def leaves_the_input_alone():
        report = run_probe(mask_noise, "call_keeps_input", args=[x, rate, 0])
        expect(
            np.array_equal(np.asarray(report["args_after"][0]), x),
            "mask_noise changed the images it was given: build a new array, do not zero "
            "values in place.",
        )

    def keeps_or_zeroes_each_value():
        for images in (x, *others):
            out = call(images, rate, 1)
            kept = out != 0
            if kept.any() and np.allclose(out[kept], images[kept] / (1 - rate), rtol=1e-5):
                raise CheckFailed(
                    f"the kept values are divided by 1 - drop_rate = {1 - rate}: that is the "
                    "rescaling of dropout layers; a corrupted *image* keeps its pixel values."
                )
            expect(
                np.allclose(out[kept], images[kept], rtol=1e-6),
                "some values are neither kept as they were nor set to 0: multiply by a 0/1 "
                "mask (or use np.where), not by random numbers or added noise.",
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
        for images in (x, others[0]):
            one_mask_per_image(call(images, 0.5, 4) == 0)

    def one_mask_per_image(dropped):
        if all(np.array_equal(dropped[0], dropped[i]) for i in range(1, len(dropped))):
            raise CheckFailed(
                "every image has the same values dropped: the mask was drawn once (for one "
                "image) and broadcast to the batch. Draw it for the full shape of x, so each "
                "image gets its own pattern."
            )
        per_image = dropped.reshape(len(dropped), -1).mean(axis=1)
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


def check_pca_autoencoder(PCAAutoencoder, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``PCAAutoencoder(latent_dim)`` with ``fit(x)`` (returns itself), ``encode(x)`` ->
    codes (N, latent_dim) and ``decode(codes)`` -> images shaped like the training images:
    the best linear autoencoder, through the top principal directions of centred data. The
    class is fitted where the learner's code lives (a probe); its codes and reconstructions
    come here. ``hidden``: ``{"shape": [...], "seeds": [train, test], "flat": [d]}``."""
    cases_ = hidden_cases(hidden, "check_pca_autoencoder")
    k = 3
    setups = []
    for index, image_shape in enumerate(
        (tuple(cases_.get("shape", (7, 7, 1))), tuple(cases_.get("flat", (20,))))
    ):
        seed_train, seed_test = (s + 100 * index for s in cases_.get("seeds", (5, 6)))
        train = _low_rank_images(image_shape, 300, seed=seed_train)
        test = _low_rank_images(image_shape, 51, seed=seed_test)  # (an odd count)
        setups.append({"shape": image_shape, "train": train, "test": test})

    def fits_and_returns_itself():
        for setup in setups:
            setup["report"] = run_probe(
                PCAAutoencoder,
                "pca_report",
                k=k,
                train=setup["train"],
                test=setup["test"],
                full=int(np.prod(setup["shape"])),
                extra={"one": setup["test"][:1], "mean": setup["train"].mean(0, keepdims=True)},
            )
            report = setup["report"]
            expect(
                report["returns_itself"],
                "fit should end with `return self` (so that PCAAutoencoder(k).fit(x) is the "
                f"fitted model), got {report['returned']}.",
            )

    def has_the_right_shapes():
        for setup in setups:
            report, test = setup["report"], setup["test"]
            for codes, images in (
                (report["codes"], test),
                (report["extra"]["one"]["codes"], test[:1]),
            ):
                codes = np.asarray(codes)
                expect(
                    codes.shape == (len(images), k),
                    f"encode of {len(images)} image(s) of shape {images.shape[1:]} with "
                    f"latent_dim={k} should give codes of shape ({len(images)}, {k}), got "
                    f"{codes.shape}.",
                )
            for decoded, images in (
                (report["decoded"], test),
                (report["extra"]["one"]["decoded"], test[:1]),
            ):
                decoded = np.asarray(decoded)
                expect(
                    decoded.shape == images.shape,
                    f"decode should give images of the training images' shape {images.shape}, "
                    f"got {decoded.shape}: reshape the flat vectors back (store the image "
                    "shape in fit).",
                )

    def reconstructs_as_well_as_pca():
        mistakes = {
            "no_centring": "the data was not centred: subtract the mean image before finding "
            "the directions (and add it back when decoding)",
            "scalar_mean": "you subtracted one number (the mean of all pixels): subtract the "
            "mean *image*, one mean per pixel (axis=0)",
            "smallest": "you kept the directions of *smallest* variance: np.linalg.eigh sorts "
            "eigenvalues in ascending order (np.linalg.svd in descending order); keep the "
            "latent_dim directions of largest variance",
        }
        for setup in setups:
            test = setup["test"]
            got = float(np.mean((test - np.asarray(setup["report"]["decoded"], np.float64)) ** 2))
            errors = _pca_errors(setup["train"], test, k)
            if np.isclose(got, errors["right"], rtol=1e-3, atol=1e-7):
                continue
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
        for setup in setups:
            codes = np.asarray(setup["report"]["extra"]["mean"]["codes"], dtype=np.float64)
            expect(
                np.allclose(codes, 0.0, atol=1e-3 * np.abs(setup["train"]).max()),
                "the mean training image should have the code 0 (encode centres the data "
                f"with the mean of fit), got {np.round(codes.ravel()[:3], 3)}.",
            )

    def first_code_has_the_most_variance():
        for setup in setups:
            codes = np.asarray(setup["report"]["train_codes"], dtype=np.float64)
            variances = np.var(codes, axis=0)
            expect(
                np.all(np.diff(variances) <= 1e-6 * variances.max()),
                f"the codes' variances are {np.round(variances, 2)}: the first code should "
                "carry the most variance, then the next (keep the directions in SVD's order).",
            )

    def full_rank_is_lossless():
        for setup in setups:
            back = np.asarray(setup["report"]["round_trip"], dtype=np.float64)
            expect(
                back.shape == setup["test"].shape and np.allclose(back, setup["test"], atol=1e-3),
                f"with latent_dim = {int(np.prod(setup['shape']))} (every direction) "
                "decode(encode(x)) should give x back exactly.",
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


CURVE_RTOL = 1e-3  # correct runs agree to 1e-6 (float32 or float64, SVD or eigh); the
# nearest mistake (the training images' curve) is 15% away at the answer


def check_code_size(experiment, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``experiment()`` returns ``{"latent_dims": the sizes tried, "test_mse": the test MSE
    measured for each, "answer": the smallest latent_dim with a test MSE <= 0.02}``, for a
    PCA autoencoder fitted on the first 1,000 MNIST training images and tested on the first
    500 test images. Each point of the curve is checked against the check's own run (within
    0.1%), the answer against the curve (it holds the answer, below the target, and the size
    one smaller, above it), then against the truth (every correct run gives the same)."""
    target = CODE_SIZE_EXPERIMENT["target_mse"]
    state: dict = {}

    def returns_its_evidence():
        dims, mse, answer = read_evidence(
            experiment,
            {
                "latent_dims": "the sizes you tried",
                "test_mse": "the test MSE you measured for each",
            },
            min_points=2,
        )
        expect(
            np.isfinite(answer) and answer == round(answer) and 1 <= answer <= 784,
            f"your answer {answer} is not a latent_dim: a whole number from 1 to 784.",
        )
        expect(
            bool(np.all(dims == np.round(dims))) and dims.min() >= 1 and dims.max() <= 784,
            "every entry of 'latent_dims' should be a whole number from 1 to 784.",
        )
        state.update(dims=dims.astype(int), mse=mse, answer=int(answer))

    def the_curve_is_a_measurement():
        dims, mse = state["dims"], state["mse"]
        curves = _mnist_pca_curves()
        truth = curves["test"][dims - 1]
        if np.allclose(mse, truth, rtol=CURVE_RTOL):
            return
        mistakes = {
            "these are the errors on the *training* images; the question is about the test "
            "images (fit on train, measure on test)": curves["train"][dims - 1],
            "you summed the squared errors over the pixels of each image: the MSE is the mean "
            "over every value": 784 * truth,
            "you took the square root (an RMSE): the question asks for the mean squared "
            "error": np.sqrt(np.abs(truth)),
        }
        for message, wrong in mistakes.items():
            expect(not np.allclose(mse, wrong, rtol=CURVE_RTOL), f"your curve: {message}.")
        bad = int(np.argmax(~np.isclose(mse, truth, rtol=CURVE_RTOL)))
        raise CheckFailed(
            f"at latent_dim {dims[bad]} your test MSE is {mse[bad]:.5g}; a rerun of that fit "
            "disagrees (it is not within 0.1%): fit on the first 1,000 training images, "
            "measure the mean squared error of the first 500 test images' reconstructions."
        )

    def the_answer_is_read_from_the_curve():
        dims, mse, answer = state["dims"], state["mse"], state["answer"]
        measured = dict(zip(dims.tolist(), mse.tolist(), strict=True))
        expect(
            answer in measured and measured[answer] <= target,
            f"your answer {answer} is not a size your curve shows at or below {target}: "
            "read the answer off your measurements.",
        )
        expect(
            answer - 1 in measured and measured[answer - 1] > target,
            f"your curve does not show that {answer} is the *smallest* size that reaches "
            f"{target}: it should hold latent_dim {answer - 1} too, above the target.",
        )

    def the_answer_is_the_truth():
        # (the curve is verified above, so this fails only for an answer not of this curve)
        right = _smallest_dim(_mnist_pca_curves()["test"])
        expect(
            state["answer"] == right,
            f"your answer {state['answer']} is not the smallest latent_dim that reaches a "
            f"test MSE of {target}: rerun your experiment and check each step against the task.",
        )

    cases = [
        returns_its_evidence,
        the_curve_is_a_measurement,
        the_answer_is_read_from_the_curve,
        the_answer_is_the_truth,
    ]
    return run_check("check_code_size", experiment, cases, quiet=quiet, task="code_size")
