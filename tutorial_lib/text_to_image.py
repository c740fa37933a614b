r"""Text to image: the two pieces through which a prompt steers an image model.

A caption ("a thick seven leaning right", :mod:`tutorial_lib.captions`) becomes token
ids (:mod:`tutorial_lib.bpe`), and then:

* :class:`TextEncoder` turns the ids into one vector per token. It is notebook 04's GPT
  without its output head: token and position embeddings, then decoder blocks. Like the
  text encoder of CLIP (Radford et al., 2021), which text-to-image models such as Stable
  Diffusion read their prompts with, it is causal: a token's vector depends on the
  tokens before it only. So the padding that fills every caption up to a common length
  (id :data:`PAD` = 0, at the end) never changes the vectors of the real tokens.
* :class:`CrossAttention` lets the image model read those vectors. The queries come
  from the image model's features, the keys and values from the text:

  .. math::

      \mathrm{CrossAttention}(h, c) = \mathrm{softmax}\!\left(
      \frac{(h W_Q)(c W_K)^\top}{\sqrt{d}} + M\right) (c W_V)\, W_O

  with :math:`M = -\infty` on the padding, so no weight falls on it. Self-attention
  (notebook 04) is the case :math:`c = h`. Here every feature vector of the image model
  picks the words it needs, with heads of their own.

**The model** (:class:`TextToImageDiffusion`) is notebook 05b's latent diffusion recipe
(a velocity-predicting MLP over the 16-number codes of a VAE) with the label replaced by
a caption: :func:`build_text_denoiser` reads the caption through a :class:`TextEncoder`
and a :class:`CrossAttention` in every residual block. For classifier-free guidance a
fraction of the training captions is replaced by the empty caption, so the same network
also learns :math:`v_\theta(x_t, t, \varnothing)`; sampling mixes the two predictions,
:math:`(1 + w)\, v_\theta(x_t, t, c) - w\, v_\theta(x_t, t, \varnothing)`, exactly
as for labels (:func:`tutorial_lib.denoisers.guided`). The tokenizer travels inside the
model, so a saved model reads prompts as it was trained to.
"""

from __future__ import annotations

import dataclasses
import functools

import keras
import numpy as np
from keras import ops

from tutorial_lib import bpe, captions, data, denoisers, diffusion, lora, metrics, vae
from tutorial_lib.profiles import Profile
from tutorial_lib.training import Timer, Trained, examples_seen
from tutorial_lib.transformer import (
    DecoderBlock,
    MultiHeadSelfAttention,
    TokenAndPositionEmbedding,
    check_activation,
    scaled_dot_product_attention,
)

PAD = 0  # the token id that fills a caption up to the common length; real ids start at 1

_SERIALIZABLE = keras.saving.register_keras_serializable(package="tutorial_lib")


def pad_tokens(sequences, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Token id sequences (ids from 0, as :meth:`tutorial_lib.bpe.BPE.encode` gives them)
    as one batch: ``(ids, mask)`` of shape (N, ``length``).

    Every id moves up by one, so that 0 (:data:`PAD`) is free for the padding after the
    last token; ``mask`` is True on the real tokens. A longer sequence is an error: a
    caption cut short would ask for something else.
    """
    ids = np.full((len(sequences), length), PAD, np.int32)
    for row, sequence in enumerate(sequences):
        sequence = np.asarray(sequence, np.int64).reshape(-1)
        if len(sequence) > length:
            raise ValueError(
                f"Sequence {row} has {len(sequence)} tokens, more than length={length}: "
                "pad to a length that holds the longest caption."
            )
        if len(sequence) and sequence.min() < 0:
            raise ValueError(f"Sequence {row} holds a negative token id.")
        ids[row, : len(sequence)] = sequence + 1
    return ids, ids != PAD


@_SERIALIZABLE
class TextEncoder(keras.layers.Layer):
    """Token ids (B, T), 0 for padding -> one vector per token (B, T, ``width``).

    ``vocab_size`` counts the padding id too (the tokenizer's size + 1). The decoder
    blocks are causal: padding at the end leaves the real tokens' vectors as they are.
    """

    def __init__(
        self, vocab_size, context, width=64, layers=2, heads=4, activation="gelu", **kwargs
    ):
        super().__init__(**kwargs)
        self.vocab_size, self.context, self.width = vocab_size, context, width
        self.layers_count, self.heads = layers, heads
        self.activation = check_activation(activation)
        self.embed = TokenAndPositionEmbedding(vocab_size, context, width, name="embed")
        self.blocks = [
            DecoderBlock(width, heads, activation=activation, name=f"block_{i}")
            for i in range(layers)
        ]
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")

    def build(self, input_shape):
        self.embed.build(input_shape)
        for block in self.blocks:
            block.build((*input_shape, self.width))
        self.norm.build((*input_shape, self.width))
        self.built = True

    def call(self, ids, training=False):
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x, training=training)
        return self.norm(x)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "context": self.context,
            "width": self.width,
            "layers": self.layers_count,
            "heads": self.heads,
            "activation": self.activation,
        }


@_SERIALIZABLE
class CrossAttention(keras.layers.Layer):
    """Features (B, T_q, D_x) attend over text vectors (B, T_k, D_c) -> (B, T_q,
    ``output_width``), by ``heads`` heads that share ``width`` numbers (default output
    width: ``width``).

    ``call(x, context, context_mask)``: ``context_mask`` (B, T_k) is True on real tokens
    (None: all of them). With ``return_weights=True`` it also returns the attention
    weights (B, heads, T_q, T_k), each row summing to 1 over the real tokens. A caption
    with no real token (the empty prompt) is attended evenly over its padding: what the
    model learns to find there is its answer to "no prompt".
    """

    def __init__(self, width, heads=4, output_width=None, **kwargs):
        super().__init__(**kwargs)
        if width % heads:
            raise ValueError(f"width {width} must be a multiple of heads {heads}.")
        self.width, self.heads = width, heads
        self.output_width = width if output_width is None else output_width
        self.head_width = width // heads
        self.query = keras.layers.Dense(width, name="query")
        self.key = keras.layers.Dense(width, name="key")
        self.value = keras.layers.Dense(width, name="value")
        self.out = keras.layers.Dense(self.output_width, name="out")

    def build(self, x_shape, context_shape=None, context_mask_shape=None):
        context_shape = x_shape if context_shape is None else context_shape
        self.query.build(x_shape)
        self.key.build(context_shape)
        self.value.build(context_shape)
        self.out.build((*x_shape[:-1], self.width))
        self.built = True

    # The heads are split and merged as in self-attention (notebook 04).
    split_heads = MultiHeadSelfAttention.split_heads
    merge_heads = MultiHeadSelfAttention.merge_heads

    def call(self, x, context, context_mask=None, return_weights=False):
        q = self.split_heads(self.query(x))
        k, v = self.split_heads(self.key(context)), self.split_heads(self.value(context))
        mask = None
        if context_mask is not None:  # (B, T_k) -> (B, 1, 1, T_k): every head, every query
            mask = ops.expand_dims(ops.expand_dims(ops.cast(context_mask, "bool"), 1), 1)
        heads, weights = scaled_dot_product_attention(q, k, v, mask)
        output = self.out(self.merge_heads(heads))
        return (output, weights) if return_weights else output

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "heads": self.heads,
            "output_width": self.output_width,
        }


# --------------------------------------------------------------------------
# The denoiser that reads a caption
# --------------------------------------------------------------------------


def build_text_denoiser(
    data_dim: int,
    *,
    vocab_size: int,
    context: int,
    width: int = 256,
    blocks: int = 3,
    text_width: int = 64,
    text_layers: int = 2,
    heads: int = 4,
    name: str = "text_denoiser",
) -> keras.Model:
    r"""``[x_t, time, caption]`` -> ``data_dim`` numbers: the latent MLP of notebook 05
    (:func:`tutorial_lib.denoisers.build_mlp_denoiser`) reading a caption.

    ``caption`` is (B, ``context``) token ids from :func:`pad_tokens` (``vocab_size``
    counts the padding id). A :class:`TextEncoder` turns them into vectors; each residual
    block adds the time embedding, as before, and then what its features read from the
    caption: the block's hidden vector, as one query, attends over the caption's tokens
    (:class:`CrossAttention` in ``text_width`` numbers, padding masked). The output layer
    starts at zero.
    """
    x_in = keras.Input((data_dim,), name="x_t")
    (time_in,), embedding = denoisers.conditioning(width, conditional=False)
    caption_in = keras.Input((context,), dtype="int32", name="caption")
    text = TextEncoder(vocab_size, context, text_width, text_layers, heads, name="text_encoder")(
        caption_in
    )
    real_tokens = ops.not_equal(caption_in, PAD)
    h = keras.layers.Dense(width)(x_in)
    for i in range(blocks):
        r = keras.layers.Activation("swish")(keras.layers.LayerNormalization()(h))
        r = keras.layers.Dense(width)(r)
        r = r + keras.layers.Dense(width)(keras.layers.Activation("swish")(embedding))
        query = keras.layers.Reshape((1, width))(keras.layers.LayerNormalization()(r))
        read = CrossAttention(text_width, heads, width, name=f"cross_attention_{i}")(
            query, text, real_tokens
        )
        r = r + keras.layers.Reshape((width,))(read)
        r = keras.layers.Dense(width)(keras.layers.Activation("swish")(r))
        h = h + r
    h = keras.layers.Activation("swish")(keras.layers.LayerNormalization()(h))
    out = keras.layers.Dense(data_dim, kernel_initializer="zeros", dtype="float32")(h)
    return keras.Model([x_in, time_in, caption_in], out, name=name)


# --------------------------------------------------------------------------
# The model: latent diffusion with captions for labels
# --------------------------------------------------------------------------


@_SERIALIZABLE
class TextToImageDiffusion(diffusion.VPredictionDiffusion):
    """Velocity-predicting latent diffusion conditioned on a caption.

    Trains on ``(codes, caption ids)`` batches; ``label_dropout`` of the captions become
    the empty caption (all :data:`PAD`), the "no prompt" of classifier-free guidance.
    ``sample(num, prompts=...)`` takes English prompts (one, or one per sample), which
    the model's own tokenizer (:attr:`tokenizer`, saved with the model) turns into ids.

    Args:
        network: from :func:`build_text_denoiser`.
        alphabet, merges: the BPE tokenizer the captions were encoded with
            (:class:`tutorial_lib.bpe.BPE`).
        Other arguments: see :class:`tutorial_lib.diffusion.Diffusion`.
    """

    def __init__(self, network, alphabet=(), merges=(), **kwargs):
        super().__init__(network, **kwargs)
        self.tokenizer = bpe.BPE(tuple(alphabet), tuple(tuple(pair) for pair in merges))
        self.context = int(network.inputs[2].shape[1])

    def drop_labels(self, labels):
        """The caption ids with a fraction ``label_dropout`` of rows replaced by padding."""
        ids = ops.cast(labels, "int32")
        drop = keras.random.uniform((ops.shape(ids)[0], 1), seed=self.seed_generator)
        return ops.where(drop < self.label_dropout, PAD, ids)

    def null_condition(self, num: int) -> np.ndarray:
        """The empty caption, ``num`` times: padding only."""
        return np.full((num, self.context), PAD, np.int32)

    def encode_prompts(self, prompts) -> np.ndarray:
        """English prompts -> caption ids (N, ``context``), padded as in training."""
        unknown = sorted(set("".join(prompts)) - set(self.tokenizer.alphabet))
        if unknown:
            raise ValueError(
                f"The characters {unknown} never occur in the captions this model was trained "
                f"on, so it has no token for them: write prompts with "
                f"{''.join(self.tokenizer.alphabet)!r} only, e.g. 'a thick seven leaning right'."
            )
        return pad_tokens([self.tokenizer.encode(p) for p in prompts], self.context)[0]

    def condition_for(self, labels, num: int) -> np.ndarray | None:
        """Prompts (one string, or one per sample; None: the empty prompt) as ids."""
        if labels is None:
            return None
        prompts = [labels] * num if isinstance(labels, str) else list(labels)
        if len(prompts) != num or not all(isinstance(p, str) for p in prompts):
            raise ValueError(
                f"Give one prompt, or a list of {num} prompts (strings), for {num} samples."
            )
        return self.encode_prompts(prompts)

    def sample(self, num: int, *, prompts=None, guidance: float | None = None, **options):
        """``num`` images in [0, 1], shape (num, 28, 28, 1), for ``prompts`` (one, or one
        per sample; None: the empty prompt, unguided), with the model's guidance scale
        unless given ``guidance``."""
        if prompts is not None and guidance is None:
            guidance = self.guidance
        codes = self.sample_codes(num, labels=prompts, guidance=guidance, **options)
        return self.to_images(codes)

    def get_config(self):
        return {
            **super().get_config(),
            "alphabet": list(self.tokenizer.alphabet),
            "merges": [list(pair) for pair in self.tokenizer.merges],
        }


# --------------------------------------------------------------------------
# Configuration, per profile
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TextToImageConfig(diffusion.DiffusionConfig):
    """A :class:`tutorial_lib.diffusion.DiffusionConfig` (latent space, velocity
    prediction) plus the caption's side.

    Attributes:
        text_width, text_layers, text_heads: the text encoder's size (heads are also
            the cross-attention's).
        merges: BPE merges learned from the training captions.
        context: caption length in tokens, padding included.
        held_out: ``(digit, attribute, level)`` whose training images are left out
            (``(0, "slant", -1)``: no zero leaning left), to test composition; None:
            train on every image.
    """

    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    merges: int = 60
    context: int = 8
    held_out: tuple | None = (0, "slant", -1)


# Notebook 05b's recipe (velocity prediction, 25 DDIM steps) with captions, on the codes
# of notebook 05's VAE (denoisers.LATENT_STAGE), which lesson 09 reuses.
_RECIPE = diffusion.CONFIGS["latent_diffusion_v"]


def _config(profile: str, **changes) -> TextToImageConfig:
    base = _RECIPE[profile]
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    stage = denoisers.LATENT_STAGE[profile]
    return TextToImageConfig(**{**fields, "conditional": True, "autoencoder": stage, **changes})


CONFIGS = {
    "text_to_image": {
        "fast": _config("fast", text_width=16, text_layers=1, text_heads=2),
        "cpu": _config("cpu", guidance=1.0, epochs=12),
        "gpu": _config("gpu", guidance=1.0, text_width=128),
    }
}


def build_model(
    config: TextToImageConfig,
    *,
    decoder: keras.Model | None = None,
    tokenizer: bpe.BPE | None = None,
    seed: int | None = None,
) -> TextToImageDiffusion:
    """A compiled model for ``config``, around the ``decoder`` of its VAE
    (:func:`tutorial_lib.vae.latent_codec`) and the ``tokenizer`` of its captions; Adam
    with notebook 05's warm-up and clipping (build it under ``setup.strategy.scope()``)."""
    if decoder is None or tokenizer is None:
        raise ValueError(
            "A text-to-image model needs its VAE's decoder and its captions' tokenizer: "
            "build_model(config, decoder=..., tokenizer=...) (train_model makes both)."
        )
    network = build_text_denoiser(
        int(decoder.inputs[0].shape[-1]),
        vocab_size=tokenizer.size + 1,
        context=config.context,
        width=config.mlp_width,
        blocks=config.mlp_blocks,
        text_width=config.text_width,
        text_layers=config.text_layers,
        heads=config.text_heads,
    )
    model = TextToImageDiffusion(
        network,
        alphabet=tokenizer.alphabet,
        merges=tokenizer.merges,
        decoder=decoder,
        name="text_to_image",
        **diffusion.model_options(config, seed),
    )
    return diffusion.compile_model(model, config)


# --------------------------------------------------------------------------
# Captions as training data
# --------------------------------------------------------------------------


def held_out_mask(labels, measured: dict, held_out: tuple | None) -> np.ndarray:
    """True for the images ``held_out = (digit, attribute, level)`` leaves out of
    training (their digit, with that attribute at that level of
    :func:`tutorial_lib.captions.levels`)."""
    labels = np.asarray(labels)
    if held_out is None:
        return np.zeros(len(labels), bool)
    digit, attribute, level = held_out
    return (labels == digit) & (captions.levels(labels, measured)[attribute] == level)


def caption_ids(texts, tokenizer: bpe.BPE, context: int) -> np.ndarray:
    """Captions -> padded ids (N, ``context``), each distinct caption encoded once."""
    encoded = {text: tokenizer.encode(text) for text in set(texts)}
    return pad_tokens([encoded[text] for text in texts], context)[0]


@functools.cache
def test_prompts(dataset: str = "mnist") -> tuple[list[str], np.ndarray]:
    """The captions of the test split and its labels, in a fixed shuffled order: prompts
    whose mix of digits and words is that of real data (for the Fréchet distance)."""
    images, labels = data.load_images(dataset, "test")
    order = np.random.default_rng(0).permutation(len(labels))
    written = captions.captions(images[order], labels[order], dataset)
    return written, labels[order]


def train_model(
    config: TextToImageConfig,
    *,
    dataset: str = "mnist",
    profile: Profile,
    seed: int = 0,
    run_dir=None,
    callbacks: list | None = None,
    autoencoder=None,
) -> Trained:
    """Caption the training digits, learn the tokenizer from the captions, train (or
    take) the VAE, then train the text-conditioned denoiser on the codes of every image
    except those ``config.held_out`` leaves out."""
    if dataset != "mnist":
        raise ValueError("Captions are written for MNIST digits: train on dataset='mnist'.")
    x_train, y_train = data.load_images(dataset, "train", limit=config.train_examples)
    if autoencoder is None:
        autoencoder = denoisers.trained_autoencoder(
            x_train, config.autoencoder, profile, seed=seed, run_dir=run_dir, callbacks=callbacks
        )
    measured = captions.measure(x_train)
    found = captions.levels(y_train, measured)
    written = [
        captions.caption_words(int(d), *(int(found[a][i]) for a in captions.ATTRIBUTES))
        for i, d in enumerate(y_train)
    ]
    keep = ~held_out_mask(y_train, measured, config.held_out)
    kept = [text for text, k in zip(written, keep, strict=True) if k]
    tokenizer = bpe.train_bpe("\n".join(kept), config.merges)
    codes, decoder = denoisers.training_data(config, x_train, autoencoder)
    model = build_model(config, decoder=decoder, tokenizer=tokenizer, seed=seed)
    history = denoisers.fit_model(
        model,
        codes[keep],
        caption_ids(kept, tokenizer, config.context),
        config=config,
        profile=profile,
        seed=seed,
        callbacks=callbacks,
        run_dir=run_dir,
    )
    seen = examples_seen(int(keep.sum()), config.epochs, config.batch_size, profile)
    return Trained(model, history.history, seen, {denoisers.AUTOENCODER_DIR: autoencoder})


# --------------------------------------------------------------------------
# Sampling and measuring
# --------------------------------------------------------------------------


def sample(
    model: TextToImageDiffusion, num: int, *, seed: int = 0, prompts=None, **options
) -> np.ndarray:
    """``num`` images in [0, 1] for ``prompts`` (default: the captions of ``num`` test
    digits, so the samples mix digits and words as real data does); ``options`` as
    :meth:`TextToImageDiffusion.sample` (``guidance``, ``sampler``, ``steps``)."""
    if prompts is None:
        written, _ = test_prompts()
        prompts = [written[i % len(written)] for i in range(num)]
    return model.sample(num, prompts=prompts, seed=seed, **options)


def prompt_agreement(images, digits, dataset: str = "mnist") -> float:
    """The fraction of ``images`` the evaluation classifier reads as the digit asked for."""
    _, probabilities = metrics.classifier_outputs(images, dataset)
    return float(np.mean(np.argmax(probabilities, axis=1) == np.asarray(digits)))


def asked_attribute_means(model: TextToImageDiffusion, per_prompt: int, *, seed: int = 11) -> dict:
    """For each attribute of the captions, the mean measure of samples whose prompt asks for
    its low word (key -1) and of samples asking for its high word (key 1): ``per_prompt``
    samples of each digit's prompt ("a thin zero" ... "a thin nine"), averaged over the ten
    digits, measured as :func:`tutorial_lib.captions.measure` measures the training digits."""
    means = {}
    for name in captions.WORDS:
        means[name] = {}
        for level in (-1, 1):
            values = []
            for digit in range(10):
                prompt = captions.caption_words(digit, **{name: level})
                samples = model.sample(per_prompt, prompts=prompt, seed=seed)
                values.append(np.nanmean(captions.measure(samples)[name]))
            means[name][level] = float(np.mean(values))
    return means


def evaluate(model, config, *, dataset: str, profile: Profile) -> dict:
    """Digit agreement: samples for ``profile.eval_samples`` test captions, at the model's
    guidance, read by the evaluation classifier; and for each attribute how far its high
    word moves the samples' measure from its low word (``slant_move``: positive when
    "leaning right" leans further right than "leaning left"), as notebook 09 measures it."""
    num = profile.eval_samples
    written, labels = test_prompts(dataset)
    images = sample(model, num, seed=0, prompts=written[:num])
    found = {"digit_agreement": prompt_agreement(images, labels[:num], dataset)}
    per_prompt = 5 if profile.name == "fast" else 50
    for name, mean in asked_attribute_means(model, per_prompt).items():
        found[f"{name}_move"] = mean[1] - mean[-1]
    return found


# --------------------------------------------------------------------------
# Adapting a trained model to a new word with a few examples
# --------------------------------------------------------------------------

ADAPTATIONS = ("lora", "full", "scratch")


def codes_of(model: TextToImageDiffusion, autoencoder, images) -> np.ndarray:
    """Images in [0, 1] -> the standardised codes ``model`` was trained on: the VAE's
    codes, shifted and scaled as its decoder's :class:`tutorial_lib.vae.Unstandardise`
    undoes."""
    unstandardise = model.decoder.get_layer("unstandardise")
    z = vae.encode(autoencoder, images)
    return ((z - np.asarray(unstandardise.shift)) / unstandardise.scale).astype(np.float32)


def adapted_copy(
    model: TextToImageDiffusion,
    how: str,
    *,
    rank: int = 4,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> TextToImageDiffusion:
    """A copy of ``model`` ready to fine-tune, compiled with Adam:

    * ``"full"``: every weight trains, from the model's (averaged) weights;
    * ``"lora"``: those weights frozen, a rank-``rank`` adapter beside every dense layer
      (:func:`tutorial_lib.lora.add_lora`) trains;
    * ``"scratch"``: the same network with fresh weights (only the tokenizer and the
      decoder are shared): what the few examples teach on their own.
    """
    if how not in ADAPTATIONS:
        raise ValueError(f"Unknown adaptation {how!r}; choose one of {ADAPTATIONS}.")
    keras.utils.set_random_seed(seed)
    network = keras.models.clone_model(model.network)
    if how != "scratch":
        network.set_weights(model.ema_network.get_weights())
    copy = TextToImageDiffusion(
        network,
        alphabet=model.tokenizer.alphabet,
        merges=model.tokenizer.merges,
        decoder=model.decoder,
        schedule=model.schedule_kind,
        timesteps=model.timesteps,
        ema_decay=model.ema_decay,
        label_dropout=model.label_dropout,
        seed=seed,
        sample_steps=model.sample_steps,
        guidance=model.guidance,
        name=f"{model.name}_{how}",
    )
    if how == "lora":
        lora.add_lora(copy.network, rank)
        lora.add_lora(copy.ema_network, rank)
        copy.ema_network.set_weights(copy.network.get_weights())
    copy.compile(optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=1.0))
    copy.optimizer.build(copy.network.trainable_variables)
    return copy


def new_word_examples(
    word: str,
    *,
    attribute: str = "lean",
    side: str = "low",
    fraction: float = 0.1,
    num: int = 100,
    seed: int = 0,
    dataset: str = "mnist",
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """A few examples of a word the captions never use: ``num`` training digits among the
    ``fraction`` of their digit's training images with the lowest (``side="low"``) or
    highest ``attribute``, captioned ``"a {word} seven"`` and so on (drawn with
    ``seed``). ``attribute`` is one of :func:`tutorial_lib.captions.measure`'s, or
    ``"lean"``: the size of the slant either way, the absolute slant (a "straight" digit
    has little).

    Returns ``(images, prompts, labels, cuts)``: ``cuts[d]`` is the value that bounds
    that fraction for digit ``d`` (to score samples of the new word against)."""
    if side not in ("low", "high"):
        raise ValueError(f"side must be 'low' or 'high'; got {side!r}.")
    images, labels = data.load_images(dataset, "train")
    values = _attribute_of(captions.measured_split(dataset, "train"), attribute)
    quantile = fraction if side == "low" else 1.0 - fraction
    cuts = np.array([np.nanquantile(values[labels == d], quantile) for d in range(10)])
    inside = values < cuts[labels] if side == "low" else values > cuts[labels]
    chosen = np.sort(np.random.default_rng(seed).choice(np.flatnonzero(inside), num, replace=False))
    article = "an" if word[0] in "aeiou" else "a"
    prompts = [f"{article} {word} {captions.DIGITS[int(d)]}" for d in labels[chosen]]
    return images[chosen], prompts, labels[chosen], cuts


def attribute_values(images, attribute: str) -> np.ndarray:
    """One attribute of :func:`tutorial_lib.captions.measure` per image, or ``"lean"``:
    the absolute slant."""
    return _attribute_of(captions.measure(images), attribute)


def _attribute_of(measured: dict, attribute: str) -> np.ndarray:
    """One attribute of :func:`tutorial_lib.captions.measure`'s result, or the absolute
    slant for ``"lean"``."""
    if attribute == "lean":
        return np.abs(measured["slant"])
    if attribute not in captions.ATTRIBUTES:
        raise ValueError(
            f"attribute must be 'lean' or one of {captions.ATTRIBUTES}; got {attribute!r}."
        )
    return measured[attribute]


def fine_tune(
    model: TextToImageDiffusion,
    codes: np.ndarray,
    ids: np.ndarray,
    *,
    steps: int,
    profile: Profile,
    batch_size: int = 25,
    seed: int = 0,
) -> float:
    """Train ``model`` (an :func:`adapted_copy`) for about ``steps`` steps of ``batch_size``
    on a few examples (``codes`` from :func:`codes_of`, ``ids`` from
    :meth:`TextToImageDiffusion.encode_prompts`), reshuffled every pass. Returns the
    seconds it took."""
    per_pass = max(len(codes) // batch_size, 1)
    config = dataclasses.replace(
        CONFIGS["text_to_image"][profile.name],
        batch_size=min(batch_size, len(codes)),
        epochs=max(round(steps / per_pass), 1),
    )
    with Timer() as timer:
        denoisers.fit_model(model, codes, ids, config=config, profile=profile, seed=seed)
    return timer.seconds
