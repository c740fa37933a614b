r"""Transformers: a character-level GPT, from scaled dot-product attention up.

**Attention** is a soft lookup. Each position asks a *query* :math:`q_i`, every
position offers a *key* :math:`k_j` and a *value* :math:`v_j` (all learned
linear maps of the input), and position :math:`i` receives the average of the
values weighted by how well its query matches each key:

.. math::  \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\Big(\frac{Q K^\top}{\sqrt{d}}
           + M\Big) V

where :math:`d` is the width of a query and :math:`M` is the **causal mask**:
:math:`M_{ij} = 0` if :math:`j \le i` and :math:`-\infty` otherwise, so no
position can look at the future. Dividing by :math:`\sqrt d` keeps the scores
at unit scale (a dot product of :math:`d` unit-variance numbers has variance
:math:`d`), so the softmax does not saturate. **Multi-head** attention runs
:math:`h` such lookups side by side on slices of width :math:`d = D / h` and
mixes their outputs with one more linear map.

A **pre-norm decoder block** adds attention and a two-layer MLP to a residual
stream, each applied to a layer-normalised copy of it:

.. math::  x \leftarrow x + \mathrm{MHA}(\mathrm{LN}(x)), \qquad
           x \leftarrow x + \mathrm{MLP}(\mathrm{LN}(x))

with :math:`\mathrm{MLP}(x) = W_2\, \sigma(W_1 x + b_1) + b_2`, four times wider
inside, :math:`\sigma` a GELU or a ReLU.

A **GPT** is token and position embeddings, a stack of such blocks, a final
layer norm and a linear map to one logit per character of the vocabulary. It is
trained to predict every next character at once, minimising the cross-entropy

.. math::  \mathcal{L} = -\frac{1}{T} \sum_{t=1}^{T} \log p_\theta(x_{t+1} \mid x_{\le t})

in nats per character (divide by :math:`\ln 2` for bits per character). The
model is **autoregressive**: the likelihood of a text is exact, the product of
these conditionals, but sampling is sequential, one character per forward pass.
A **key/value cache** keeps the keys and values of the characters seen so far,
so each new character costs one single-position forward pass
(:func:`generate` with ``use_cache=True``) instead of a pass over the whole
context.

Sampling (:func:`next_token_probabilities`) divides the logits by a
**temperature** :math:`\tau` (below 1: safer, above 1: wilder), then may keep
only the :math:`k` most likely characters (**top-k**) or the smallest set whose
probabilities add up to at least :math:`p` (**top-p**, nucleus sampling).
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from pathlib import Path

import keras
import numpy as np
from keras import ops

from tutorial_lib import backend, data
from tutorial_lib.profiles import Profile
from tutorial_lib.training import Trained, fit_resumable, progress_verbosity, steps_per_call

DATASET = "tinyshakespeare"
EVAL_BATCH = 128  # windows per batch when measuring the validation loss
_NEG_INF = -1e9  # a masked score: exp(-1e9 - max) is exactly 0 in float32
# The MLP's nonlinearity, by name. GELU, x * Phi(x), bends smoothly near 0;
# ReLU, max(x, 0), is a kink. GELU's normal CDF Phi and its gradient cost about
# a fifth of a cpu-profile training step; ReLU's cost almost nothing.
MLP_ACTIVATIONS = ("gelu", "relu")


def check_activation(name: str) -> str:
    """``name`` if it is one of :data:`MLP_ACTIVATIONS`, else a ValueError saying which are."""
    if name not in MLP_ACTIVATIONS:
        raise ValueError(f"Unknown MLP activation {name!r}; choose one of {MLP_ACTIVATIONS}.")
    return name


# --------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    """Sizes of a GPT and of its training run.

    Attributes:
        context: characters the model sees at once (the block size).
        width: size of every position's vector (the residual stream), ``D``.
        layers: decoder blocks.
        heads: attention heads per block (``width`` must divide by it).
        mlp_ratio: hidden width of each block's MLP, as a multiple of ``width``.
        activation: the MLP's nonlinearity, one of :data:`MLP_ACTIVATIONS`:
            ``"gelu"`` (GPT-2, nanoGPT) or ``"relu"`` (the original
            Transformer; about a fifth cheaper per training step on a CPU).
        dropout: dropout rate on attention weights and residual branches.
        batch_size: windows per gradient step.
        steps: gradient steps in all.
        steps_per_epoch: steps between two validation passes (a Keras "epoch").
        learning_rate: peak learning rate, reached after the warm-up.
        warmup_steps: steps of linear warm-up from 0 to ``learning_rate``.
        min_lr_fraction: the cosine decay ends at this fraction of the peak.
        weight_decay: AdamW's decoupled weight decay (not applied to biases,
            layer norms and embeddings).
        clip_norm: gradients are rescaled so their global norm is at most this.
        val_batches: ``None``: the loss logged after each epoch is over the whole
            validation text, the figure :func:`evaluate_nll` reports at the end; a
            number: over that many batches of windows spread along it (quicker).
        sample_chars: characters to generate per sample in the notebook.
        steps_per_execution: training steps Keras runs per call into the compiled
            graph (fewer trips through Python; the same training).
    """

    context: int = 64
    width: int = 128
    layers: int = 3
    heads: int = 4
    mlp_ratio: int = 4
    activation: str = "relu"
    dropout: float = 0.0
    batch_size: int = 32
    steps: int = 3000
    steps_per_epoch: int = 250
    learning_rate: float = 4e-3
    warmup_steps: int = 100
    min_lr_fraction: float = 0.1
    weight_decay: float = 0.1
    clip_norm: float = 1.0
    val_batches: int | None = None
    sample_chars: int = 400
    steps_per_execution: int = 1

    def __post_init__(self):
        check_activation(self.activation)
        if self.width % self.heads:
            raise ValueError(
                f"width ({self.width}) must be a multiple of heads ({self.heads}): each head "
                "gets width // heads numbers. Change one of them."
            )
        if self.steps_per_epoch % self.steps_per_execution:
            raise ValueError(
                f"steps_per_epoch ({self.steps_per_epoch}) must be a multiple of "
                f"steps_per_execution ({self.steps_per_execution})."
            )
        if self.steps % self.steps_per_epoch:
            raise ValueError(
                f"steps ({self.steps}) must be a multiple of steps_per_epoch "
                f"({self.steps_per_epoch})."
            )

    @property
    def epochs(self) -> int:
        return self.steps // self.steps_per_epoch

    def shortened(self, fraction: float) -> GPTConfig:
        """The same model and recipe for about ``fraction`` of the steps (whole epochs,
        at least one), e.g. for a quick run in an exercise."""
        epochs = max(1, round(self.epochs * fraction))
        steps = epochs * self.steps_per_epoch
        return dataclasses.replace(
            self, steps=steps, warmup_steps=min(self.warmup_steps, max(1, steps // 10))
        )


# Sizes per profile. "cpu" (the defaults): nanoGPT's CPU model (4 heads, width 128,
# context 64) with 3 layers instead of 4, a ReLU MLP, a larger batch, a higher
# learning rate and 3,000 steps, chosen by measuring seconds and validation loss on
# 2 cores: 3 layers matched 4 after 2,500 steps (1.600 nats/char against 1.599) in
# about 87% of the time; a ReLU step costs about 0.8 of a GELU step, and 3,000 ReLU
# steps reach 1.588 where 2,500 GELU steps reach 1.600; notebook 04 reports the
# figures. "gpu": nanoGPT's shakespeare-char recipe (10.7M parameters, GELU).
CONFIGS = {
    "transformer": {
        "fast": GPTConfig(
            context=32,
            width=32,
            layers=2,
            heads=2,
            batch_size=16,
            steps=8,
            steps_per_epoch=4,
            warmup_steps=2,
            learning_rate=3e-3,
            val_batches=2,
            sample_chars=60,
            steps_per_execution=2,
        ),
        "cpu": GPTConfig(steps_per_execution=25),
        "gpu": GPTConfig(
            context=256,
            width=384,
            layers=6,
            heads=6,
            activation="gelu",
            dropout=0.2,
            batch_size=64,
            steps=5000,
            steps_per_epoch=250,
            learning_rate=1e-3,
            warmup_steps=100,
            val_batches=None,
            steps_per_execution=25,
        ),
    },
}


# --------------------------------------------------------------------------
# Attention, written out
# --------------------------------------------------------------------------


def causal_mask(length: int, keys: int | None = None, offset=0):
    """Boolean (length, keys) matrix, True where query ``i`` may look at key ``j``.

    Query ``i`` sits at position ``offset + i`` and key ``j`` at position ``j``;
    a query may see every key at its own position or before: ``j <= offset + i``.
    With the defaults (``keys = length``, ``offset = 0``) it is the lower
    triangle, diagonal included.
    """
    keys = length if keys is None else keys
    query_positions = ops.expand_dims(ops.arange(length) + offset, 1)
    key_positions = ops.expand_dims(ops.arange(keys), 0)
    return key_positions <= query_positions


def scaled_dot_product_attention(query, key, value, mask=None):
    r"""softmax(Q K^T / sqrt(d) + M) V, with the softmax in float32.

    Args:
        query: (..., T_q, d).
        key: (..., T_k, d).
        value: (..., T_k, d_v).
        mask: boolean, broadcastable to (..., T_q, T_k); False entries get a
            score of -1e9, so a weight of 0. ``None``: every key is visible.

    Returns:
        ``(output, weights)``: output (..., T_q, d_v) in the dtype of ``value``,
        weights (..., T_q, T_k) in float32, each row summing to 1.
    """
    d = query.shape[-1]
    scores = ops.matmul(query, ops.swapaxes(key, -1, -2))
    # Scores and softmax in float32: bfloat16 keeps 8 bits of mantissa, too few
    # for exp() of large scores under mixed precision.
    scores = ops.cast(scores, "float32") / math.sqrt(d)
    if mask is not None:
        scores = ops.where(mask, scores, _NEG_INF)
    weights = ops.softmax(scores, axis=-1)  # over the keys: each query's row sums to 1
    output = ops.matmul(ops.cast(weights, value.dtype), value)
    return output, weights


_SERIALIZABLE = keras.saving.register_keras_serializable(package="tutorial_lib")


def _dense(units, std=0.02, name=None, **kwargs):
    """A Dense layer initialised like GPT-2: normal weights (std 0.02), zero bias."""
    return keras.layers.Dense(
        units, kernel_initializer=keras.initializers.RandomNormal(stddev=std), name=name, **kwargs
    )


@_SERIALIZABLE
class MultiHeadSelfAttention(keras.layers.Layer):
    """``heads`` scaled dot-product attentions over slices of the width, mixed by a linear map.

    Queries, keys and values are linear maps of the same input (self-attention).
    ``call(x, causal=True)`` masks the future. The layer also serves the
    key/value cache of generation (:meth:`call_cached`).
    """

    def __init__(self, width: int, heads: int, dropout: float = 0.0, out_std=0.02, **kwargs):
        super().__init__(**kwargs)
        if width % heads:
            raise ValueError(f"width {width} must be a multiple of heads {heads}.")
        self.width, self.heads, self.dropout = width, heads, dropout
        self.head_width = width // heads
        self.out_std = out_std
        self.query = _dense(width, name="query")
        self.key = _dense(width, name="key")
        self.value = _dense(width, name="value")
        self.out = _dense(width, std=out_std, name="out")
        self.attention_dropout = keras.layers.Dropout(dropout)

    def build(self, input_shape):
        for layer in (self.query, self.key, self.value):
            layer.build(input_shape)
        self.out.build((*input_shape[:-1], self.width))
        self.built = True

    def split_heads(self, x):
        """(B, T, D) -> (B, heads, T, D / heads)."""
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, length, self.heads, self.head_width))
        return ops.transpose(x, (0, 2, 1, 3))

    def merge_heads(self, x):
        """(B, heads, T, D / heads) -> (B, T, D)."""
        batch, length = ops.shape(x)[0], ops.shape(x)[2]
        return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (batch, length, self.width))

    def project(self, x):
        """Queries, keys and values, each (B, heads, T, D / heads)."""
        return (
            self.split_heads(self.query(x)),
            self.split_heads(self.key(x)),
            self.split_heads(self.value(x)),
        )

    def call(self, x, causal=True, training=False, return_weights=False):
        q, k, v = self.project(x)
        length = ops.shape(x)[1]
        mask = causal_mask(length) if causal else None
        heads, weights = scaled_dot_product_attention(q, k, v, mask)
        if self.dropout:
            heads = self.attention_dropout(heads, training=training)
        output = self.out(self.merge_heads(heads))
        return (output, weights) if return_weights else output

    def call_cached(self, x, start, k_cache, v_cache):
        """Attend from ``x`` (positions ``start ... start + T - 1``) over the cache.

        Writes this input's keys and values into the caches (B, heads, C, d) at
        those positions and masks cache slots after each query's position.
        Returns ``(output, k_cache, v_cache)``.
        """
        q, k, v = self.project(x)
        zero = ops.zeros((), "int32")
        k_cache = ops.slice_update(k_cache, (zero, zero, start, zero), ops.cast(k, k_cache.dtype))
        v_cache = ops.slice_update(v_cache, (zero, zero, start, zero), ops.cast(v, v_cache.dtype))
        mask = causal_mask(ops.shape(x)[1], ops.shape(k_cache)[2], offset=start)
        heads, _ = scaled_dot_product_attention(q, k_cache, v_cache, mask)
        return self.out(self.merge_heads(heads)), k_cache, v_cache

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "heads": self.heads,
            "dropout": self.dropout,
            "out_std": self.out_std,
        }


@_SERIALIZABLE
class DecoderBlock(keras.layers.Layer):
    """Pre-norm block: ``x + MHA(LN(x))``, then ``x + MLP(LN(x))``.

    MLP: D -> ``mlp_ratio`` * D, ``activation`` (GELU or ReLU), -> D.
    """

    def __init__(
        self, width, heads, mlp_ratio=4, dropout=0.0, out_std=0.02, activation="gelu", **kwargs
    ):
        super().__init__(**kwargs)
        self.width, self.heads, self.mlp_ratio = width, heads, mlp_ratio
        self.dropout, self.out_std = dropout, out_std
        self.activation = check_activation(activation)
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-5, name="norm1")
        self.attention = MultiHeadSelfAttention(width, heads, dropout, out_std, name="attention")
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-5, name="norm2")
        self.mlp_in = _dense(mlp_ratio * width, activation=activation, name="mlp_in")
        self.mlp_out = _dense(width, std=out_std, name="mlp_out")
        self.drop = keras.layers.Dropout(dropout)

    def build(self, input_shape):
        self.norm1.build(input_shape)
        self.attention.build(input_shape)
        self.norm2.build(input_shape)
        self.mlp_in.build(input_shape)
        self.mlp_out.build((*input_shape[:-1], self.mlp_ratio * self.width))
        self.built = True

    def mlp(self, x, training=False):
        return self.drop(self.mlp_out(self.mlp_in(x)), training=training)

    def call(self, x, training=False, return_weights=False):
        attended, weights = self.attention(self.norm1(x), training=training, return_weights=True)
        x = x + self.drop(attended, training=training)
        x = x + self.mlp(self.norm2(x), training=training)
        return (x, weights) if return_weights else x

    def call_cached(self, x, start, k_cache, v_cache):
        attended, k_cache, v_cache = self.attention.call_cached(
            self.norm1(x), start, k_cache, v_cache
        )
        x = x + attended
        return x + self.mlp(self.norm2(x)), k_cache, v_cache

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "heads": self.heads,
            "mlp_ratio": self.mlp_ratio,
            "dropout": self.dropout,
            "out_std": self.out_std,
            "activation": self.activation,
        }


@_SERIALIZABLE
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token ids -> token vector + position vector (both learned), shape (B, T, D).

    Attention itself ignores order (permute the keys and values together and
    the output is the same), so each position adds a learned vector of its own.
    """

    def __init__(self, vocab_size, context, width, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.context, self.width = vocab_size, context, width
        init = keras.initializers.RandomNormal(stddev=0.02)
        self.token = keras.layers.Embedding(vocab_size, width, embeddings_initializer=init)
        self.position = keras.layers.Embedding(context, width, embeddings_initializer=init)

    def build(self, input_shape):
        self.token.build(input_shape)
        self.position.build(input_shape)
        self.built = True

    def call(self, tokens, start=0):
        positions = ops.arange(ops.shape(tokens)[1]) + start
        return self.token(tokens) + ops.expand_dims(self.position(positions), 0)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "context": self.context,
            "width": self.width,
        }


@_SERIALIZABLE
class GPT(keras.Model):
    """A decoder-only transformer: token ids (B, T) -> next-token logits (B, T, V), float32.

    Embeddings, ``layers`` pre-norm decoder blocks, a final layer norm and a
    linear head. Position ``t``'s logits depend only on tokens ``0 ... t``.
    """

    def __init__(
        self,
        vocab_size: int,
        context: int,
        width: int,
        layers: int,
        heads: int,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        activation: str = "gelu",  # models saved before this setting existed are GELU
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size, self.context, self.width = vocab_size, context, width
        self.num_layers, self.heads, self.mlp_ratio, self.dropout = (
            layers,
            heads,
            mlp_ratio,
            dropout,
        )
        self.activation = check_activation(activation)
        # Residual branches add up over 2 * layers terms: scale their last
        # layers' initial weights down so the stream keeps its size (GPT-2).
        out_std = 0.02 / math.sqrt(2 * layers)
        self.embed = TokenAndPositionEmbedding(vocab_size, context, width, name="embed")
        self.embed_dropout = keras.layers.Dropout(dropout)
        self.blocks = [
            DecoderBlock(width, heads, mlp_ratio, dropout, out_std, activation, name=f"block_{i}")
            for i in range(layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")
        # Logits in float32 under mixed precision, so the loss is computed in float32.
        self.head = _dense(vocab_size, name="head", dtype="float32")

    def build(self, input_shape):
        self.embed.build(input_shape)
        hidden = (*input_shape, self.width)
        for block in self.blocks:
            block.build(hidden)
        self.final_norm.build(hidden)
        self.head.build(hidden)
        self.built = True

    def _check_length(self, tokens):
        length = tokens.shape[1]
        if length is not None and length > self.context:
            raise ValueError(
                f"The model sees at most {self.context} characters at once (its context); "
                f"got a sequence of {length}. Keep only the last {self.context}."
            )

    def call(self, tokens, training=False):
        self._check_length(tokens)
        x = self.embed_dropout(self.embed(tokens), training=training)
        for block in self.blocks:
            x = block(x, training=training)
        return self.head(self.final_norm(x))

    def attention_weights(self, tokens) -> list:
        """Attention weights of every block, each (B, heads, T, T), for inspection."""
        self._check_length(tokens)
        x = self.embed(ops.convert_to_tensor(tokens, "int32"))
        weights = []
        for block in self.blocks:
            x, w = block(x, return_weights=True)
            weights.append(w)
        return weights

    def empty_cache(self, batch_size: int = 1) -> list:
        """Zero key/value caches, one ``(keys, values)`` pair per block, each
        (batch, heads, context, width / heads)."""
        shape = (batch_size, self.heads, self.context, self.width // self.heads)
        dtype = self.compute_dtype
        return [(ops.zeros(shape, dtype), ops.zeros(shape, dtype)) for _ in self.blocks]

    def call_cached(self, tokens, start, cache):
        """Logits of ``tokens`` (B, T) at positions ``start ... start + T - 1`` given the
        keys and values of earlier positions in ``cache``; returns ``(logits, cache)``.

        ``start = 0`` with an empty cache encodes a prompt (prefill); then one
        token at a time with ``start`` = its position (decode steps).
        """
        x = self.embed(tokens, start=start)
        new_cache = []
        for block, (k_cache, v_cache) in zip(self.blocks, cache, strict=True):
            x, k_cache, v_cache = block.call_cached(x, start, k_cache, v_cache)
            new_cache.append((k_cache, v_cache))
        return self.head(self.final_norm(x)), new_cache

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "context": self.context,
            "width": self.width,
            "layers": self.num_layers,
            "heads": self.heads,
            "mlp_ratio": self.mlp_ratio,
            "dropout": self.dropout,
            "activation": self.activation,
        }


def build_gpt(config: GPTConfig, vocab_size: int = 65) -> GPT:
    """A built (not compiled) :class:`GPT` with the sizes of ``config`` (see
    :func:`build_model` for one that is ready to train)."""
    model = GPT(
        vocab_size=vocab_size,
        context=config.context,
        width=config.width,
        layers=config.layers,
        heads=config.heads,
        mlp_ratio=config.mlp_ratio,
        dropout=config.dropout,
        activation=config.activation,
        name="gpt",
    )
    model.build((None, config.context))
    return model


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def learning_rate_schedule(config: GPTConfig):
    """Linear warm-up from 0 to ``learning_rate`` over ``warmup_steps``, then a cosine
    decay to ``min_lr_fraction * learning_rate`` at step ``steps``."""
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, config.steps - config.warmup_steps),
        alpha=config.min_lr_fraction,
        warmup_target=config.learning_rate,
        warmup_steps=config.warmup_steps,
    )


def compile_gpt(model: GPT, config: GPTConfig, *, jit_compile="auto") -> GPT:
    """AdamW (beta2 0.99, decay off for biases, norms and embeddings) with warm-up and
    cosine decay, global-norm gradient clipping, cross-entropy on the logits in nats."""
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate_schedule(config),
        weight_decay=config.weight_decay,
        beta_2=0.99,
        global_clipnorm=config.clip_norm,
    )
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta", "embeddings"])
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_call(config.steps_per_execution),
    )
    return model


def build_model(config: GPTConfig, *, vocab_size: int = 65, seed: int | None = None) -> GPT:
    """A :class:`GPT` with the sizes of ``config``, compiled for training (:func:`compile_gpt`).
    (``seed`` is unused: the weights are drawn from the global seed.)"""
    return compile_gpt(build_gpt(config, vocab_size), config)


def random_windows(ids: np.ndarray, *, seq_len: int, batch_size: int, seed: int = 0):
    """An endless ``tf.data`` stream of training pairs at random offsets.

    Each element is a batch ``(x, y)`` of shape (batch_size, seq_len) with
    ``x = ids[i : i + seq_len]`` and ``y = ids[i + 1 : i + seq_len + 1]`` for a
    random start ``i`` per row (the same seed gives the same stream). Unlike
    :func:`tutorial_lib.data.text_windows`, windows overlap and start anywhere,
    so every step sees new contexts.
    """
    if len(ids) < seq_len + 2:
        raise ValueError(f"Need at least seq_len + 2 = {seq_len + 2} tokens; got {len(ids)}.")
    if keras.backend.backend() != "tensorflow":
        return RandomWindows(ids, seq_len=seq_len, batch_size=batch_size, seed=seed)
    import tensorflow as tf

    tokens = tf.constant(ids, tf.int32)
    starts = len(ids) - seq_len - 1  # i in [0, starts]
    offsets = tf.range(seq_len + 1)

    def windows(randoms):
        begin = tf.cast(randoms % (starts + 1), tf.int32)
        chunk = tf.gather(tokens, begin[:, None] + offsets[None, :])
        return chunk[:, :-1], chunk[:, 1:]

    return (
        tf.data.Dataset.random(seed=seed)
        .batch(batch_size, drop_remainder=True)
        .map(windows, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


class RandomWindows(keras.utils.PyDataset):
    """:func:`random_windows` from NumPy alone (the JAX and PyTorch backends): batch
    ``i`` takes its starts from a generator seeded with ``(seed, i)``."""

    def __init__(self, ids: np.ndarray, *, seq_len: int, batch_size: int, seed: int = 0):
        super().__init__()
        self.ids = np.asarray(ids, dtype=np.int32)
        self.seq_len, self.batch_size, self.seed = seq_len, batch_size, seed

    @property
    def num_batches(self):
        return None  # endless

    def __getitem__(self, index):
        starts = len(self.ids) - self.seq_len - 1  # i in [0, starts]
        begin = np.random.default_rng([self.seed, index]).integers(0, starts + 1, self.batch_size)
        chunk = self.ids[begin[:, None] + np.arange(self.seq_len + 1)[None, :]]
        return chunk[:, :-1], chunk[:, 1:]


def validation_windows(ids: np.ndarray, config: GPTConfig) -> tuple[np.ndarray, np.ndarray]:
    """The windows of the validation loss logged after each epoch: the whole validation
    text tiled as :func:`evaluate_nll` tiles it (``config.val_batches`` ``None``), so the
    curve's last point is the figure reported at the end; or, quicker and rougher,
    ``val_batches`` batches of those windows taken evenly along the whole text."""
    x, y = tiled_windows(ids, config.context)
    if config.val_batches is not None:
        wanted = min(len(x), config.val_batches * config.batch_size)
        keep = np.linspace(0, len(x) - 1, wanted).round().astype(int)
        x, y = x[keep], y[keep]
    return x, y


def tiled_windows(ids: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of shape (N, context) tiling ``ids`` end to end: window ``n`` holds
    ``ids[n*context : (n+1)*context]`` and its targets, the same shifted by one,
    so every character but the first is predicted exactly once."""
    n = (len(ids) - 1) // context
    if n < 1:
        raise ValueError(f"Need at least context + 1 = {context + 1} tokens; got {len(ids)}.")
    x = np.asarray(ids[: n * context], dtype=np.int32).reshape(n, context)
    y = np.asarray(ids[1 : n * context + 1], dtype=np.int32).reshape(n, context)
    return x, y


def fit_model(
    model: GPT,
    text: data.TextData,
    config: GPTConfig,
    *,
    seed: int = 0,
    run_dir: str | Path | None = None,
    callbacks: list | None = None,
    verbose=None,
) -> keras.callbacks.History:
    """Train ``model`` on random windows of ``text.train`` for ``config.steps`` steps,
    validating on ``text.val`` every ``steps_per_epoch`` steps.

    With ``run_dir`` the run backs itself up and resumes after an interruption
    (:func:`tutorial_lib.training.fit_resumable`).
    """
    from tutorial_lib import hosts

    train_ds = random_windows(
        text.train, seq_len=config.context, batch_size=config.batch_size, seed=seed
    )
    fit_kwargs = dict(
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        # Across processes (tutorial_lib.hosts) each feeds its own part of every batch.
        validation_data=hosts.shard_batches(
            validation_windows(text.val, config), batch_size=EVAL_BATCH
        ),
        validation_batch_size=EVAL_BATCH,
        callbacks=callbacks,
        verbose=progress_verbosity() if verbose is None else verbose,
        shuffle=False,  # the stream is random already
    )
    train_ds = hosts.shard_batches(train_ds)
    if run_dir is not None:
        return fit_resumable(model, train_ds, run_dir=run_dir, **fit_kwargs)
    return model.fit(train_ds, **fit_kwargs)


def evaluate_nll(model: GPT, ids: np.ndarray, config: GPTConfig) -> dict:
    """Mean negative log-likelihood of the next character over all of ``ids``
    (windows of ``config.context`` tiled end to end, :func:`tiled_windows`).

    Returns ``{"nats_per_char": ..., "bits_per_char": ...}``
    (bits = nats / ln 2, :func:`tutorial_lib.metrics.bits_per_character`).
    """
    from tutorial_lib.metrics import bits_per_character

    x, y = tiled_windows(ids, config.context)
    result = model.evaluate(x, y, batch_size=EVAL_BATCH, verbose=0, return_dict=True)
    nats = float(result["loss"])
    return {"nats_per_char": nats, "bits_per_char": bits_per_character(nats)}


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------


def top_k_filter(logits, k: int) -> np.ndarray:
    """Keep the ``k`` largest logits, set the others to -inf (exactly ``k`` survive,
    ties broken by position)."""
    logits = np.asarray(ops.convert_to_numpy(logits), dtype=np.float64)
    if not k >= 1:
        raise ValueError(f"top_k must be at least 1; got {k}.")
    if k >= logits.shape[-1]:
        return logits.copy()
    keep = np.argsort(-logits, axis=-1, kind="stable")[..., :k]
    filtered = np.full_like(logits, -np.inf)
    np.put_along_axis(filtered, keep, np.take_along_axis(logits, keep, axis=-1), axis=-1)
    return filtered


def top_p_filter(logits, p: float) -> np.ndarray:
    """Keep the nucleus: the fewest most-likely tokens whose probabilities add up to
    at least ``p`` (the most likely token always stays); the others get -inf."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must lie in (0, 1]; got {p}.")
    logits = np.asarray(ops.convert_to_numpy(logits), dtype=np.float64)
    order = np.argsort(-logits, axis=-1, kind="stable")
    sorted_probs = _softmax(np.take_along_axis(logits, order, axis=-1))
    before = np.cumsum(sorted_probs, axis=-1) - sorted_probs  # mass of the tokens ahead
    keep_sorted = before < p  # the first always stays (0 < p)
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    return np.where(keep, logits, -np.inf)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=-1, keepdims=True)


def next_token_probabilities(
    logits, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> np.ndarray:
    """Sampling distribution over the vocabulary from one position's logits (float64).

    Logits are divided by ``temperature`` (0: always the most likely token),
    then filtered by ``top_k`` and ``top_p`` if given, then normalised.
    """
    logits = np.asarray(ops.convert_to_numpy(logits), dtype=np.float64)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0; got {temperature}.")
    if temperature == 0:
        probs = np.zeros_like(logits)
        np.put_along_axis(probs, np.argmax(logits, axis=-1)[..., None], 1.0, axis=-1)
        return probs
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return _softmax(logits)


def _draw(probs: np.ndarray, u: float) -> int:
    """The token whose cumulative-probability interval holds ``u`` in [0, 1)."""
    cdf = np.cumsum(probs)
    return int(min(np.searchsorted(cdf, u * cdf[-1], side="right"), len(probs) - 1))


# --------------------------------------------------------------------------
# Generation, with and without the key/value cache
# --------------------------------------------------------------------------

_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(model: GPT) -> dict:
    """Per-model generation functions, compiled once (XLA with TensorFlow and JAX) and reused.

    All take a window padded to the full context, so every call has the same
    shapes: ``last_logits(tokens, index)`` (a full pass, no cache),
    ``prefill(tokens, index)`` (a full pass that also fills a cache) and
    ``step(token, position, cache)`` (one position against the cache). Padding
    after ``index`` changes nothing before it: the model is causal, and a step
    overwrites a cache slot before any query can see it.
    """
    if model in _COMPILED:
        return _COMPILED[model]

    # ops.take, not logits[:, index]: XLA would compile a slice for every index value.
    def last_logits(tokens, index):
        return ops.take(model(tokens, training=False), index, axis=1)

    def prefill(tokens, index):
        logits, cache = model.call_cached(tokens, ops.zeros((), "int32"), model.empty_cache(1))
        return ops.take(logits, index, axis=1), cache

    def step(token, position, cache):
        logits, cache = model.call_cached(token, position, cache)
        return logits[:, -1, :], cache

    functions = {"last_logits": last_logits, "prefill": prefill, "step": step}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        functions = {k: tf.function(f, jit_compile=True) for k, f in functions.items()}
    else:
        functions = {k: backend.compiled(f, model) for k, f in functions.items()}
    _COMPILED[model] = functions
    return functions


def _next_window_start(start: int, length: int, context: int) -> int:
    """Where the model's view of a text of ``length`` tokens begins.

    The view is ``ids[start:]``. When it would exceed the context, it jumps
    forward to keep the last ``context // 2`` tokens (cached generation then
    re-encodes those in one pass and carries on one token at a time).
    """
    if length - start > context:
        return length - max(1, context // 2)
    return start


def generate(
    model: GPT,
    prompt_ids,
    num_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    use_cache: bool = True,
) -> np.ndarray:
    """Sample ``num_tokens`` token ids after ``prompt_ids`` (at least one id).

    Both paths see the same context at every step (the last ``context``
    tokens at most, see :func:`_next_window_start`) and draw with the same
    random numbers, so for one ``seed`` they return the same tokens:

    * ``use_cache=False``: a full forward pass over the context per token,
      O(context) positions each;
    * ``use_cache=True``: the keys and values of earlier positions are kept,
      so each new token is one single-position pass (O(1) positions).
    """
    prompt = np.asarray(prompt_ids, dtype=np.int32).reshape(-1)
    if prompt.size == 0:
        raise ValueError("The prompt needs at least one token, e.g. a newline.")
    if num_tokens < 0:
        raise ValueError(f"num_tokens must be >= 0; got {num_tokens}.")
    fns = _compiled(model)
    rng = np.random.default_rng(seed)
    ids = list(prompt)
    context = model.context
    start = max(0, len(ids) - context)
    cache = None

    def window():  # the tokens in view, padded to the context, and the last one's index
        view = ids[start:]
        padded = np.zeros((1, context), dtype=np.int32)
        padded[0, : len(view)] = view
        return padded, np.int32(len(view) - 1)

    for _ in range(num_tokens):
        new_start = _next_window_start(start, len(ids), context)
        if not use_cache:
            start = new_start
            logits = fns["last_logits"](*window())
        elif cache is None or new_start != start:
            start = new_start
            logits, cache = fns["prefill"](*window())
        else:
            position = np.int32(len(ids) - 1 - start)
            logits, cache = fns["step"](np.array([[ids[-1]]], dtype=np.int32), position, cache)
        probs = next_token_probabilities(ops.convert_to_numpy(logits)[0], temperature, top_k, top_p)
        ids.append(_draw(probs, rng.random()))
    return np.array(ids[len(prompt) :], dtype=np.int32)


def sample(
    model: GPT,
    num: int,
    *,
    seed: int = 0,
    prompt: str = "\n",
    vocab: data.CharVocab | None = None,
    **options,
) -> str:
    """The ``num`` characters the model writes after ``prompt`` (default: a newline).

    ``vocab`` defaults to Tiny Shakespeare's; ``options`` (``temperature``,
    ``top_k``, ``top_p``, ``use_cache``) go to :func:`generate`.
    """
    if not prompt:
        raise ValueError("The prompt needs at least one character, e.g. '\\n'.")
    vocab = vocab or data.load_shakespeare().vocab
    return vocab.decode(generate(model, vocab.encode(prompt), num, seed=seed, **options))


# --------------------------------------------------------------------------
# The family contract (tutorial_lib.families): train, sample, evaluate
# --------------------------------------------------------------------------


def train_model(
    config: GPTConfig,
    *,
    dataset: str = DATASET,
    profile: Profile,
    seed: int = 0,
    run_dir: str | Path | None = None,
    callbacks: list | None = None,
) -> Trained:
    """Load Tiny Shakespeare, build the GPT of ``config``, train it for ``config.steps``.

    Returns the model, its per-epoch logs and how many tokens it trained on.
    The GPT always trains on Tiny Shakespeare's characters.
    """
    if dataset != DATASET:
        raise ValueError(f"The GPT trains on {DATASET!r} only; got dataset={dataset!r}.")
    text = data.load_shakespeare()
    model = build_model(config, vocab_size=text.vocab.size, seed=seed)
    history = fit_model(model, text, config, seed=seed, run_dir=run_dir, callbacks=callbacks)
    return Trained(model, history.history, config.steps * config.batch_size * config.context)


def evaluate(model: GPT, config: GPTConfig, *, dataset: str, profile: Profile) -> dict:
    """The exact negative log-likelihood of the whole validation text, nats per character."""
    text = data.load_shakespeare()
    return {"nll": evaluate_nll(model, text.val, config)["nats_per_char"]}
