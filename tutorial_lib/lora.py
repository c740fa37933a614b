r"""Low-rank adaptation (LoRA): teach a trained network something new by training a few
numbers beside its frozen weights.

Hu et al. (2021) observed that fine-tuning a large model changes its weight matrices by
something of low rank. So instead of training a dense layer's kernel
:math:`W \in \mathbb R^{d_\text{in} \times d_\text{out}}`, LoRA freezes it and trains two
thin matrices beside it:

.. math::

    W' = W + \frac{\alpha}{r}\, A B, \qquad
    A \in \mathbb R^{d_\text{in} \times r},\; B \in \mathbb R^{r \times d_\text{out}}

with a small rank :math:`r`. :math:`B` starts at zero, so the adapted network starts
exactly where the trained one was. A layer then trains
:math:`r (d_\text{in} + d_\text{out})` numbers instead of :math:`d_\text{in} d_\text{out}`:
for a 256x256 kernel at rank 4, 2,048 instead of 65,536. The adapter can be kept apart
(one small file per new skill) or added into :math:`W` once training is done.

Keras's dense layers carry such an adapter themselves (``Dense.enable_lora``): their
``kernel`` is :math:`W + (\alpha / r) A B` once it is enabled. :func:`add_lora` enables it
on every dense layer of a network (those nested in attention layers too) and freezes
every other weight, biases and normalisations included, so only :math:`A` and :math:`B`
train.
"""

from __future__ import annotations

import keras


def dense_layers(network: keras.Model) -> list[keras.layers.Dense]:
    """Every dense layer of ``network``, nested ones (a cross-attention's projections)
    included, in a fixed order."""
    return [layer for layer in network._flatten_layers() if isinstance(layer, keras.layers.Dense)]


def add_lora(network: keras.Model, rank: int, alpha: float | None = None) -> int:
    r"""Freeze ``network`` and give each of its dense layers a rank-``rank`` adapter
    (:math:`\alpha` = ``alpha``, default ``rank``: a scale of 1). Returns how many numbers
    now train. The network changes in place; its outputs do not change until training
    moves :math:`B` away from zero."""
    if rank < 1:
        raise ValueError(f"The rank must be at least 1; got {rank}.")
    for weight in network.weights:
        weight.trainable = False
    for layer in dense_layers(network):
        if layer.lora_enabled:
            raise ValueError(f"{layer.name} already has an adapter: add_lora once per network.")
        layer.enable_lora(rank, lora_alpha=alpha)
    return trainable_count(network)


def trainable_count(network: keras.Model) -> int:
    """How many numbers of ``network`` a training step changes."""
    return sum(int(keras.ops.size(weight)) for weight in network.trainable_weights)
