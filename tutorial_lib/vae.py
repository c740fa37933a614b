r"""Variational autoencoders: an autoencoder that can generate.

The encoder outputs a *distribution* over codes, :math:`q_\phi(z \mid x) =
\mathcal N(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))`, parameterised by the
mean and the log-variance :math:`\log \sigma^2` (a log, so any real output is a
valid variance). The decoder gives a Bernoulli probability per pixel,
:math:`p_\theta(x \mid z) = \prod_i \operatorname{Bern}(x_i; \operatorname{sigmoid}(\ell_i(z)))`,
on binarised images. Training maximises the evidence lower bound (ELBO):

.. math::

    \log p(x) \ge \mathbb E_{q_\phi(z \mid x)} [\log p_\theta(x \mid z)]
    - \beta\, \mathrm{KL}\big(q_\phi(z \mid x) \,\|\, \mathcal N(0, I)\big)

with :math:`\beta = 1` for the plain VAE. Both terms are in nats and per
image: the log-likelihood is **summed over the 784 pixels**, the KL is **summed
over the latent dimensions**, and only then averaged over the batch. (Seed 002
averages both over everything, which silently weights the KL 784/d times
wrong.) The KL to the standard normal has a closed form:

.. math::

    \mathrm{KL} = -\tfrac12 \sum_{j=1}^{d} \big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)

Sampling :math:`z = \mu + \sigma \odot \epsilon`, :math:`\epsilon \sim \mathcal N(0, I)`
(the reparameterisation trick) makes :math:`z` a differentiable function of
:math:`\mu` and :math:`\sigma`, so gradients reach the encoder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np
from keras import ops

from tutorial_lib import data
from tutorial_lib.data import IMAGE_SHAPE
from tutorial_lib.gradients import GradientStepModel
from tutorial_lib.profiles import Profile
from tutorial_lib.training import Trained, examples_seen, fit_for_profile

KINDS = ("dense", "conv")


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Sizes and training settings of a VAE.

    Attributes:
        kind: ``"dense"`` or ``"conv"`` encoder/decoder.
        latent_dim: dimensions of ``z``.
        hidden_units: widths of the dense variant's hidden layers (decoder mirrors them).
        filters: channels of the conv variant's two stride-2 convolutions.
        beta: weight of the KL term (1 is the VAE; other values make a beta-VAE).
        learning_rate: Adam's step size.
        epochs: passes over the training images.
        train_examples: how many training images (``None``: all 60,000).
        batch_size: images per gradient step.
        binarization: how grey pixels become the {0, 1} of the Bernoulli likelihood:
            ``"threshold"`` at 0.5, or ``"stochastic"`` (each pixel 1 with probability
            its grey value: a fresh draw for every training batch, one fixed draw of
            the test images; :func:`tutorial_lib.data.load_images`), the literature's
            data model (notebook 07).
    """

    kind: str = "conv"
    latent_dim: int = 16
    hidden_units: tuple[int, int] = (512, 256)
    filters: tuple[int, int] = (32, 64)
    beta: float = 1.0
    learning_rate: float = 1e-3
    epochs: int = 10
    train_examples: int | None = None
    batch_size: int = 128
    binarization: str = "threshold"

    def make_model(self, encoder, decoder, *, seed: int | None = None) -> VAE:
        """The uncompiled model these sizes describe, around its two networks."""
        return VAE(encoder, decoder, beta=self.beta, seed=seed)


@dataclasses.dataclass(frozen=True)
class MixturePriorConfig(VAEConfig):
    """A VAE whose prior is fitted to its codes after training (:class:`MixturePriorVAE`).

    Attributes (beyond :class:`VAEConfig`'s):
        prior_components: Gaussians in the mixture prior.
        prior_examples: how many training images' codes the mixture is fitted to
            (``None``: all the training images).
        prior_iterations: the most EM iterations of the fit.
    """

    prior_components: int = 50
    prior_examples: int | None = 20_000
    prior_iterations: int = 100

    def make_model(self, encoder, decoder, *, seed: int | None = None) -> MixturePriorVAE:
        return MixturePriorVAE(
            encoder, decoder, prior_components=self.prior_components, beta=self.beta, seed=seed
        )


# Sizes by model name, then profile. The VAE trains on all 60,000 images even in the
# cpu profile: it is cheap per step, and the likelihood targets need the data.
CONFIGS = {
    "vae": {
        "fast": VAEConfig(
            kind="conv",
            latent_dim=8,
            hidden_units=(64, 32),
            filters=(8, 16),
            epochs=2,
            train_examples=512,
            batch_size=64,
        ),
        "cpu": VAEConfig(kind="conv", latent_dim=16, epochs=8, train_examples=None),
        "gpu": VAEConfig(kind="conv", latent_dim=32, filters=(64, 128), epochs=60, batch_size=256),
    },
}

# The recommended recipe of notebook 02 ("What helps, measured"): the same networks as the
# VAE of each profile, then a mixture prior fitted to their codes in seconds. The cpu
# profile spends the budget the textbook VAE leaves (8 epochs) on 14 epochs: about 150
# CPU-seconds with the fit, on the 2-core machine it was measured on.
_VAE = {profile: dataclasses.asdict(config) for profile, config in CONFIGS["vae"].items()}
CONFIGS["vae_mixture_prior"] = {
    "fast": MixturePriorConfig(**_VAE["fast"], prior_components=4, prior_examples=None),
    "cpu": MixturePriorConfig(**{**_VAE["cpu"], "epochs": 14}),
    "gpu": MixturePriorConfig(**_VAE["gpu"], prior_components=100, prior_examples=None),
}


# --------------------------------------------------------------------------
# The two terms of the loss, per example
# --------------------------------------------------------------------------


def kl_divergence(z_mean, z_log_var):
    r"""Closed-form :math:`\mathrm{KL}(\mathcal N(\mu, \sigma^2) \| \mathcal N(0, I))`
    per example, summed over the latent dimensions (nats), shape (batch,)."""
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def bernoulli_log_likelihood(x, logits):
    r""":math:`\log p(x \mid z) = \sum_i x_i \log s_i + (1 - x_i) \log(1 - s_i)`,
    :math:`s = \operatorname{sigmoid}(\ell)`, per example, summed over pixels (nats).

    Written with logits, :math:`\sum_i x_i \ell_i - \operatorname{softplus}(\ell_i)`,
    which never takes the log of 0.
    """
    axes = tuple(range(1, len(x.shape)))
    return ops.sum(x * logits - ops.softplus(logits), axis=axes)


# --------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tutorial_lib")
class Sampling(keras.layers.Layer):
    r"""The reparameterisation trick: :math:`z = \mu + e^{\frac12 \log\sigma^2} \odot \epsilon`."""

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(
            ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator
        )
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _gaussian_head(h, latent_dim: int):
    """Two linear layers on ``h``: the mean and the log-variance, kept in float32."""
    z_mean = keras.layers.Dense(latent_dim, dtype="float32", name="z_mean")(h)
    z_log_var = keras.layers.Dense(latent_dim, dtype="float32", name="z_log_var")(h)
    return z_mean, z_log_var


def build_encoder(config: VAEConfig) -> keras.Model:
    """Image -> ``[z_mean, z_log_var]``, each of shape (batch, latent_dim)."""
    inputs = keras.Input(IMAGE_SHAPE, name="image")
    if config.kind == "dense":
        h = keras.layers.Flatten()(inputs)
        for units in config.hidden_units:
            h = keras.layers.Dense(units, activation="relu")(h)
    else:
        h = inputs
        for filters in config.filters:
            h = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(h)
        h = keras.layers.Flatten()(h)
        h = keras.layers.Dense(128, activation="relu")(h)
    return keras.Model(inputs, list(_gaussian_head(h, config.latent_dim)), name="encoder")


def build_decoder(config: VAEConfig) -> keras.Model:
    """Code ``z`` -> per-pixel Bernoulli *logits*, shape (batch, 28, 28, 1), float32."""
    inputs = keras.Input((config.latent_dim,), name="z")
    if config.kind == "dense":
        h = inputs
        for units in reversed(config.hidden_units):
            h = keras.layers.Dense(units, activation="relu")(h)
        h = keras.layers.Dense(int(np.prod(IMAGE_SHAPE)), dtype="float32")(h)
        logits = keras.layers.Reshape(IMAGE_SHAPE, dtype="float32")(h)
    else:
        last = config.filters[-1]
        h = keras.layers.Dense(128, activation="relu")(inputs)
        h = keras.layers.Dense(7 * 7 * last, activation="relu")(h)
        h = keras.layers.Reshape((7, 7, last))(h)
        h = keras.layers.Conv2DTranspose(
            config.filters[0], 3, strides=2, padding="same", activation="relu"
        )(h)
        logits = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", dtype="float32")(h)
    return keras.Model(inputs, logits, name="decoder")


@keras.saving.register_keras_serializable(package="tutorial_lib")
class VAE(GradientStepModel):
    """Encoder, sampling layer and decoder, trained on the negative ELBO.

    ``fit`` reports three metrics per epoch, all in nats per image:
    ``loss`` (the negative ELBO, with the KL weighted by ``beta``),
    ``reconstruction`` (:math:`-\\log p(x \\mid z)`) and ``kl``.
    """

    def __init__(self, encoder, decoder, beta: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.beta = encoder, decoder, beta
        self.sampling = Sampling(seed=seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def call(self, x, training=False):
        """Reconstruction *probabilities* of ``x`` (one sampled code per image)."""
        z_mean, z_log_var = self.encoder(x, training=training)
        return ops.sigmoid(self.decoder(self.sampling([z_mean, z_log_var]), training=training))

    def losses_per_example(self, x, training=False):
        """``(reconstruction, kl)``: -log p(x|z) with one sampled z, and the KL; shape (batch,)."""
        z_mean, z_log_var = self.encoder(x, training=training)
        logits = self.decoder(self.sampling([z_mean, z_log_var]), training=training)
        x = ops.cast(x, "float32")
        return -bernoulli_log_likelihood(x, logits), kl_divergence(z_mean, z_log_var)

    # Whether the prior is N(0, I), the prior of a GAN's z too (walks between its draws).
    standard_normal_prior = True

    def log_prior(self, z) -> np.ndarray:
        r""":math:`\log p(z)` under the prior :math:`\mathcal N(0, I)`, nats (NumPy, float64)."""
        z = np.asarray(z, np.float64)
        return -0.5 * np.sum(z**2 + np.log(2 * np.pi), axis=-1)

    def draw_codes(self, num: int, *, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        r"""``num`` codes from the prior :math:`\mathcal N(0, \tau^2 I)`, :math:`\tau` the
        ``temperature``."""
        latent_dim = self.decoder.input_shape[-1]
        return temperature * np.random.default_rng(seed).standard_normal((num, latent_dim))

    def finish_training(self, images: np.ndarray, config, *, seed: int = 0) -> None:
        """What follows the gradient steps: nothing for the VAE (its prior is fixed)."""

    def test_elbo(self, x: np.ndarray) -> dict:
        """The negative ELBO of test images ``x`` and its two terms (:func:`negative_elbo`)."""
        return negative_elbo(self, x)

    def _update(self, reconstruction, kl, loss):
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(ops.mean(reconstruction))
        self.kl_tracker.update_state(ops.mean(kl))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, batch):
        x = batch[0] if isinstance(batch, tuple | list) else batch

        def loss_fn():
            reconstruction, kl = self.losses_per_example(x, training=True)
            return ops.mean(reconstruction + self.beta * kl), (reconstruction, kl)

        loss, (reconstruction, kl), _ = self.descend(
            self.optimizer, self.trainable_weights, loss_fn
        )
        return self._update(reconstruction, kl, loss)

    def test_step(self, batch):
        x = batch[0] if isinstance(batch, tuple | list) else batch
        reconstruction, kl = self.losses_per_example(x)
        return self._update(reconstruction, kl, ops.mean(reconstruction + self.beta * kl))

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": self.beta,
        }

    @classmethod
    def from_config(cls, config):
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


@keras.saving.register_keras_serializable(package="tutorial_lib")
class GaussianMixturePrior(keras.layers.Layer):
    r"""A prior over codes fitted to the codes themselves: a mixture of ``components``
    full-covariance Gaussians,

    .. math::  p_\psi(z) = \sum_{k=1}^{K} \pi_k\, \mathcal N\big(z;\ \mu_k,\ L_k L_k^\top\big).

    :meth:`fit` runs expectation-maximisation (scikit-learn's ``GaussianMixture``)
    on codes of training images after the VAE has trained (:func:`fit_prior`): the
    *aggregate posterior* :math:`q(z) = \mathbb E_x\, q(z \mid x)`, where the decoder
    has learned to draw digits, is what :math:`\mathcal N(0, I)` only approximates
    (Ghosh et al., 2020, "ex-post density estimation"). The weights, means and
    Cholesky factors :math:`L_k` are non-trainable weights of the layer, so they are
    saved with the model. Before :meth:`fit` every component is :math:`\mathcal N(0, I)`.
    """

    def __init__(self, components: int, latent_dim: int, **kwargs):
        super().__init__(**kwargs)
        if components < 1:
            raise ValueError(f"A mixture needs at least one component; got {components}.")
        self.components, self.latent_dim = int(components), int(latent_dim)
        shape = (self.components, self.latent_dim)
        self.log_weights = self.add_weight(
            shape=(self.components,), initializer="zeros", trainable=False, name="log_weights"
        )
        self.means = self.add_weight(
            shape=shape, initializer="zeros", trainable=False, name="means"
        )
        self.scale_trils = self.add_weight(
            shape=(*shape, self.latent_dim),
            initializer="zeros",
            trainable=False,
            name="scale_trils",
        )
        self.scale_trils.assign(np.broadcast_to(np.eye(self.latent_dim), self.scale_trils.shape))
        self.built = True  # its weights exist; it is never called on tensors

    def fit(self, codes: np.ndarray, *, seed: int = 0, max_iter: int = 100):
        """Fit the mixture to ``codes`` (N, latent_dim) by EM; returns the layer."""
        from sklearn.mixture import GaussianMixture

        codes = np.asarray(codes, np.float64)
        if codes.ndim != 2 or codes.shape[1] != self.latent_dim:
            raise ValueError(f"codes must have shape (N, {self.latent_dim}); got {codes.shape}.")
        if len(codes) < self.components:
            raise ValueError(f"{self.components} components need as many codes; got {len(codes)}.")
        mixture = GaussianMixture(
            self.components, covariance_type="full", max_iter=max_iter, random_state=seed
        ).fit(codes)
        self.log_weights.assign(np.log(mixture.weights_))
        self.means.assign(mixture.means_)
        self.scale_trils.assign(np.linalg.cholesky(mixture.covariances_))
        return self

    def _mixture_parameters(self):
        weights = np.exp(ops.convert_to_numpy(self.log_weights).astype(np.float64))
        means = ops.convert_to_numpy(self.means).astype(np.float64)
        trils = ops.convert_to_numpy(self.scale_trils).astype(np.float64)
        return weights / weights.sum(), means, trils

    def sample(self, num: int, *, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        r"""``num`` codes: pick component :math:`k` with probability :math:`\pi_k`, then
        :math:`z = \mu_k + \tau L_k \epsilon`, :math:`\epsilon \sim \mathcal N(0, I)`, with
        temperature :math:`\tau` (1: the fitted mixture). Float32, (num, latent_dim)."""
        weights, means, trils = self._mixture_parameters()
        rng = np.random.default_rng(seed)
        k = rng.choice(self.components, size=num, p=weights)
        eps = rng.standard_normal((num, self.latent_dim))
        return (means[k] + temperature * np.einsum("nij,nj->ni", trils[k], eps)).astype(np.float32)

    def log_prob(self, z) -> np.ndarray:
        r""":math:`\log p_\psi(z)` of codes of shape (..., latent_dim), in nats (float64)."""
        from scipy.special import logsumexp

        weights, means, trils = self._mixture_parameters()
        z = np.asarray(z, np.float64)
        flat = z.reshape(-1, self.latent_dim)
        per_component = []
        for weight, mean, tril in zip(weights, means, trils, strict=True):
            # Mahalanobis distance with a triangular solve: |L^-1 (z - mu)|^2
            white = np.linalg.solve(tril, (flat - mean).T)
            log_det = 2.0 * np.sum(np.log(np.diag(tril)))
            log_normal = -0.5 * (
                np.sum(white**2, axis=0) + log_det + self.latent_dim * np.log(2 * np.pi)
            )
            per_component.append(np.log(weight) + log_normal)
        return logsumexp(np.stack(per_component), axis=0).reshape(z.shape[:-1])

    def get_config(self):
        return {
            **super().get_config(),
            "components": self.components,
            "latent_dim": self.latent_dim,
        }


@keras.saving.register_keras_serializable(package="tutorial_lib")
class MixturePriorVAE(VAE):
    r"""A VAE that samples from a :class:`GaussianMixturePrior` fitted to its codes.

    It trains exactly like :class:`VAE` (the KL to :math:`\mathcal N(0, I)` keeps the
    codes in one region); then :func:`fit_prior` fits the mixture, and :func:`sample`
    draws codes from it instead of from :math:`\mathcal N(0, I)`.
    """

    def __init__(self, encoder, decoder, prior_components: int = 50, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.prior = GaussianMixturePrior(
            prior_components, int(decoder.inputs[0].shape[-1]), name="prior"
        )

    standard_normal_prior = False

    def log_prior(self, z) -> np.ndarray:
        return self.prior.log_prob(z)

    def draw_codes(self, num: int, *, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        """``num`` codes from the fitted mixture, every component's spread times
        ``temperature``."""
        return self.prior.sample(num, seed=seed, temperature=temperature)

    def finish_training(self, images: np.ndarray, config, *, seed: int = 0) -> None:
        """Fit the mixture prior to the codes of the first ``config.prior_examples``
        training images (:func:`fit_prior`)."""
        fitted = images if config.prior_examples is None else images[: config.prior_examples]
        fit_prior(self, fitted, seed=seed, max_iter=config.prior_iterations)

    def test_elbo(self, x: np.ndarray) -> dict:
        """The negative ELBO under the mixture prior, its KL term estimated by Monte Carlo
        (:func:`monte_carlo_elbo`): the mixture has no closed-form KL."""
        return monte_carlo_elbo(self, x)

    def get_config(self):
        return {**super().get_config(), "prior_components": self.prior.components}


def posterior_samples(model: VAE, images: np.ndarray, *, seed: int = 0) -> np.ndarray:
    r"""One code :math:`z \sim q(z \mid x)` drawn from the posterior of each binarised
    image: samples of the aggregate posterior :math:`q(z) = \mathbb E_x\, q(z \mid x)`,
    float64 (N, latent_dim)."""
    z_mean, z_log_var = posterior(model, (np.asarray(images) > 0.5).astype(np.float32))
    eps = np.random.default_rng(seed).standard_normal(z_mean.shape)
    return z_mean + np.exp(0.5 * z_log_var) * eps


def fit_prior(
    model: MixturePriorVAE, images: np.ndarray, *, seed: int = 0, max_iter: int = 100
) -> GaussianMixturePrior:
    """Fit ``model``'s mixture prior to :func:`posterior_samples` of ``images``: the
    aggregate posterior, spread included (the posterior means alone would leave out
    the spread of the dimensions the decoder ignores)."""
    codes = posterior_samples(model, images, seed=seed)
    return model.prior.fit(codes, seed=seed, max_iter=max_iter)


def build_model(config: VAEConfig | None = None, *, seed: int | None = None) -> VAE:
    """A compiled VAE (Adam) for 28x28 binarised images, built so it can be saved at once;
    a :class:`MixturePriorVAE` for a :class:`MixturePriorConfig`."""
    config = config or VAEConfig()
    if config.kind not in KINDS:
        raise ValueError(f"Unknown VAE kind {config.kind!r}; choose one of {KINDS}.")
    model = config.make_model(build_encoder(config), build_decoder(config), seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    model(np.zeros((1, *IMAGE_SHAPE), np.float32))  # build the weights
    return model


def fit_model(
    model: VAE,
    x_train: np.ndarray,
    *,
    config: VAEConfig,
    profile: Profile,
    validation: np.ndarray | None = None,
    seed: int = 0,
    callbacks: list | None = None,
    run_dir: str | Path | None = None,
) -> keras.callbacks.History:
    """Train on binarised images for ``config.epochs`` in batches of ``config.batch_size``,
    each batch binarised as ``config.binarization`` says (grey images for ``"stochastic"``).

    With ``run_dir`` the run backs itself up every epoch and resumes after an
    interruption (:func:`tutorial_lib.training.fit_resumable`).
    """
    train_ds = data.image_dataset(
        x_train,
        batch_size=config.batch_size,
        targets="none",
        seed=seed,
        repeat=profile.steps_per_epoch is not None,
        binarize=config.binarization,
    )
    return fit_for_profile(
        model,
        train_ds,
        profile=profile,
        epochs=config.epochs,
        validation_data=None if validation is None else (validation,),
        callbacks=callbacks,
        run_dir=run_dir,
    )


# --------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------


def decode(model: VAE, z) -> np.ndarray:
    """Pixel probabilities (the Bernoulli means) for codes ``z``, float32 in [0, 1]."""
    from scipy.special import expit  # the logistic sigmoid, without overflow for large logits

    logits = model.decoder.predict(np.asarray(z, np.float32), verbose=0, batch_size=512)
    return expit(logits).astype(np.float32)


def posterior(model: VAE, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""The posterior :math:`q(z \mid x)` of each image: its mean and log-variance."""
    z_mean, z_log_var = model.encoder.predict(x, verbose=0, batch_size=512)
    return z_mean, z_log_var


def encode(model: VAE, images: np.ndarray) -> np.ndarray:
    """The code of each image in [0, 1]: the posterior mean of the binarised image (the
    data the VAE was trained on). :func:`decode` maps codes back to images."""
    z_mean, _ = posterior(model, (np.asarray(images) > 0.5).astype(np.float32))
    return z_mean


def sample(model: VAE, num: int, *, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
    r"""Generate: draw codes from the prior and decode, (num, 28, 28, 1).

    The prior is :math:`\mathcal N(0, \tau^2 I)`, or for a :class:`MixturePriorVAE` its
    fitted mixture with every component's spread times :math:`\tau`; the temperature
    :math:`\tau` below 1 draws codes nearer the centres.
    """
    return decode(model, model.draw_codes(num, seed=seed, temperature=temperature))


def interpolate(z_start, z_end, steps: int = 8, *, spherical: bool = False) -> np.ndarray:
    r"""Codes on the way from ``z_start`` to ``z_end``, ``steps`` of them, ends included.

    Linear: :math:`(1 - t) z_0 + t z_1`. Spherical (slerp):
    :math:`\frac{\sin((1-t)\Omega)}{\sin\Omega} z_0 + \frac{\sin(t\Omega)}{\sin\Omega} z_1`
    with :math:`\cos\Omega = \hat z_0 \cdot \hat z_1`, which keeps the norm typical
    of Gaussian samples instead of cutting through the low-norm middle.
    """
    z0, z1 = np.asarray(z_start, np.float64), np.asarray(z_end, np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if not spherical:
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    path = (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)
    return path.astype(np.float32)


def latent_grid(model: VAE, n: int = 15, limit: float = 2.5) -> np.ndarray:
    """Decode an ``n`` x ``n`` grid of codes over [-limit, limit]^2 (latent size 2 only)."""
    if model.decoder.input_shape[-1] != 2:
        raise ValueError(
            f"latent_grid needs a VAE with latent_dim=2; this one has "
            f"{model.decoder.input_shape[-1]}. Build one with VAEConfig(latent_dim=2)."
        )
    values = np.linspace(-limit, limit, n)
    z = np.array([[x, y] for y in values[::-1] for x in values], np.float32)
    return decode(model, z)


def attribute_vector(model: VAE, x: np.ndarray, labels, source: int, target: int) -> np.ndarray:
    """Mean code of class ``target`` minus mean code of class ``source``.

    Adding it to the code of a ``source`` image moves it towards ``target``.
    """
    labels = np.asarray(labels)
    for name, value in (("source", source), ("target", target)):
        if not np.any(labels == value):
            raise ValueError(f"No image of {name} class {value} among the {len(labels)} given.")
    z_mean, _ = posterior(model, x)
    return z_mean[labels == target].mean(axis=0) - z_mean[labels == source].mean(axis=0)


# --------------------------------------------------------------------------
# Evaluation: in nats
# --------------------------------------------------------------------------


def negative_elbo(model: VAE, x: np.ndarray, batch_size: int = 500) -> dict:
    """Test negative ELBO (nats per image) with its two terms, one sampled code per image."""
    reconstruction, kl = [], []
    for start in range(0, len(x), batch_size):
        r, k = model.losses_per_example(x[start : start + batch_size])
        reconstruction.append(ops.convert_to_numpy(r))
        kl.append(ops.convert_to_numpy(k))
    reconstruction, kl = np.concatenate(reconstruction), np.concatenate(kl)
    return {
        "negative_elbo": float(np.mean(reconstruction + kl)),
        "reconstruction": float(np.mean(reconstruction)),
        "kl": float(np.mean(kl)),
    }


def importance_log_weights(model: VAE, x: np.ndarray, k: int = 100, seed: int = 0) -> tuple:
    r"""For each image, ``k`` codes :math:`z_j \sim q(z \mid x)` and the three log-densities
    :math:`\log p(x \mid z_j)`, :math:`\log p(z_j)` (the model's prior,
    :meth:`VAE.log_prior`), :math:`\log q(z_j \mid x)`, shapes (N, k).

    Their combination :math:`\log \frac1k \sum_j \frac{p(x|z_j) p(z_j)}{q(z_j|x)}`
    is the importance-weighted bound on :math:`\log p(x)`, tight as k grows.
    """
    rng = np.random.default_rng(seed)
    z_mean, z_log_var = posterior(model, x)
    n, d = z_mean.shape
    eps = rng.standard_normal((n, k, d)).astype(np.float32)
    z = z_mean[:, None, :] + np.exp(0.5 * z_log_var)[:, None, :] * eps
    log_two_pi = np.log(2 * np.pi)
    log_q = -0.5 * np.sum(eps**2 + z_log_var[:, None, :] + log_two_pi, axis=-1)
    log_prior = model.log_prior(z)
    logits = model.decoder.predict(z.reshape(n * k, d), verbose=0, batch_size=2000)
    xs = np.repeat(x, k, axis=0).astype(np.float32)
    log_px = (xs * logits - np.logaddexp(0.0, logits)).reshape(n, k, -1).sum(axis=-1)
    return log_px, log_prior, log_q


def importance_weighted_nll(
    model: VAE, x: np.ndarray, k: int = 100, seed: int = 0, batch_size: int = 100
) -> float:
    """Importance-weighted estimate of the test negative log-likelihood, nats per image."""
    from tutorial_lib.metrics import importance_weighted_nll as iwae

    values = []
    for start in range(0, len(x), batch_size):
        chunk = x[start : start + batch_size]
        log_px, log_prior, log_q = importance_log_weights(model, chunk, k=k, seed=seed + start)
        values.append(iwae(log_px, log_prior, log_q) * len(chunk))
    return float(np.sum(values) / len(x))


def monte_carlo_elbo(
    model: VAE, x: np.ndarray, k: int = 10, seed: int = 0, batch_size: int = 200
) -> dict:
    r"""Test negative ELBO with the model's own prior, estimated with ``k`` codes per image:
    :math:`-\frac1k \sum_j \big[\log p(x \mid z_j) + \log p(z_j) - \log q(z_j \mid x)\big]`,
    and its two terms (reconstruction, and the KL as :math:`\log q - \log p`), nats per image.

    The form of :func:`negative_elbo` for a prior without a closed-form KL
    (:class:`MixturePriorVAE`).
    """
    reconstruction, kl = [], []
    for start in range(0, len(x), batch_size):
        chunk = x[start : start + batch_size]
        log_px, log_prior, log_q = importance_log_weights(model, chunk, k=k, seed=seed + start)
        reconstruction.append(-log_px.mean(axis=1))
        kl.append((log_q - log_prior).mean(axis=1))
    reconstruction, kl = np.concatenate(reconstruction), np.concatenate(kl)
    return {
        "negative_elbo": float(np.mean(reconstruction + kl)),
        "reconstruction": float(np.mean(reconstruction)),
        "kl": float(np.mean(kl)),
    }


# --------------------------------------------------------------------------
# A latent space for other models: standardised codes and their decoder
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tutorial_lib")
class Unstandardise(keras.layers.Layer):
    r"""Standardised codes back to the VAE's codes: :math:`z = s \cdot u + m`
    with the codes' per-dimension mean :math:`m` (``shift``) and one overall
    standard deviation :math:`s` (``scale``)."""

    def __init__(self, shift, scale: float, **kwargs):
        super().__init__(**kwargs)
        self.shift = [float(v) for v in np.asarray(shift).reshape(-1)]
        self.scale = float(scale)

    def call(self, codes):
        return ops.cast(codes, "float32") * self.scale + ops.convert_to_tensor(self.shift)

    def get_config(self):
        return {**super().get_config(), "shift": self.shift, "scale": self.scale}


def latent_codec(model: VAE, images: np.ndarray) -> tuple[np.ndarray, keras.Model]:
    r"""``(codes, decoder)``: the standardised codes of ``images`` and a model that
    maps such codes back to pixels.

    The codes are the posterior means of the binarised images, shifted by
    their per-dimension mean and divided by one overall standard deviation:
    data of about unit variance, which is what noise schedules and flows
    assume. (Stable Diffusion does the same with one constant, 0.18215.) The
    decoder undoes the standardisation, runs the VAE's decoder and a sigmoid:
    codes -> pixel probabilities in [0, 1], float32 (N, 28, 28, 1).
    """
    z_mean = encode(model, images)
    shift = z_mean.mean(axis=0)
    scale = float(np.std(z_mean - shift))
    codes = keras.Input((z_mean.shape[1],), name="codes")
    z = Unstandardise(shift, scale, name="unstandardise")(codes)
    pixels = keras.layers.Activation("sigmoid", dtype="float32")(model.decoder(z))
    decoder = keras.Model(codes, pixels, name="latent_decoder")
    return ((z_mean - shift) / scale).astype(np.float32), decoder


# --------------------------------------------------------------------------
# The family contract (tutorial_lib.families): train, sample, evaluate
# --------------------------------------------------------------------------


def train_model(
    config: VAEConfig,
    *,
    dataset: str = "mnist",
    profile: Profile,
    seed: int = 0,
    run_dir: str | Path | None = None,
    callbacks: list | None = None,
) -> Trained:
    """Load ``config.train_examples`` binarised training images, build the VAE, train it,
    with the profile's binarised test images as validation data; a
    :class:`MixturePriorConfig`'s model then fits its prior to the codes of the first
    ``prior_examples`` training images. Returns a :class:`~tutorial_lib.training.Trained`."""
    threshold = config.binarization == "threshold"  # else grey: every batch is drawn afresh
    x_train, _ = data.load_images(dataset, "train", limit=config.train_examples, binarize=threshold)
    x_test, _ = data.load_images(
        dataset, "test", limit=profile.test_examples, binarize=config.binarization
    )
    model = build_model(config, seed=seed)
    history = fit_model(
        model,
        x_train,
        config=config,
        profile=profile,
        validation=x_test,
        seed=seed,
        callbacks=callbacks,
        run_dir=run_dir,
    )
    model.finish_training(x_train, config, seed=seed)  # the mixture prior's fit
    seen = examples_seen(len(x_train), config.epochs, config.batch_size, profile)
    return Trained(model, history.history, seen)


def evaluate(model: VAE, config: VAEConfig, *, dataset: str, profile: Profile) -> dict:
    """The test negative ELBO (an upper bound on the negative log-likelihood), nats per
    image, and its two terms, on the profile's test images binarised as the config says;
    with the model's own prior (:func:`monte_carlo_elbo` for a :class:`MixturePriorVAE`)."""
    x_test, _ = data.load_images(
        dataset, "test", limit=profile.test_examples, binarize=config.binarization
    )
    terms = model.test_elbo(x_test)
    return {
        "nll": terms["negative_elbo"],
        "test_reconstruction_nats": terms["reconstruction"],
        "test_kl_nats": terms["kl"],
    }
