"""Text to image: the two pieces through which a prompt steers an image model.

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

      \\mathrm{CrossAttention}(h, c) = \\mathrm{softmax}\\!\\left(
      \\frac{(h W_Q)(c W_K)^\\top}{\\sqrt{d}} + M\\right) (c W_V)\\, W_O

  with :math:`M = -\\infty` on the padding, so no weight falls on it. Self-attention
  (notebook 04) is the case :math:`c = h`. Here every feature vector of the image model
  picks the words it needs, with heads of their own.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

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
    """Features (B, T_q, D_x) attend over text vectors (B, T_k, D_c) -> (B, T_q, ``width``).

    ``call(x, context, context_mask)``: ``context_mask`` (B, T_k) is True on real tokens
    (None: all of them). With ``return_weights=True`` it also returns the attention
    weights (B, heads, T_q, T_k), each row summing to 1 over the real tokens. A caption
    with no real token (the empty prompt) is attended evenly over its padding: what the
    model learns to find there is its answer to "no prompt".
    """

    def __init__(self, width, heads=4, **kwargs):
        super().__init__(**kwargs)
        if width % heads:
            raise ValueError(f"width {width} must be a multiple of heads {heads}.")
        self.width, self.heads = width, heads
        self.head_width = width // heads
        self.query = keras.layers.Dense(width, name="query")
        self.key = keras.layers.Dense(width, name="key")
        self.value = keras.layers.Dense(width, name="value")
        self.out = keras.layers.Dense(width, name="out")

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
        return {**super().get_config(), "width": self.width, "heads": self.heads}
