import keras
import numpy as np
import pytest

from tutorial_lib import lora
from tutorial_lib.backend import to_numpy
from tutorial_lib.text_to_image import CrossAttention


def _network():
    keras.utils.set_random_seed(0)
    x = keras.Input((6,))
    text = keras.Input((3, 4))
    h = keras.layers.Dense(8, name="first")(x)
    read = CrossAttention(8, heads=2, name="cross")(keras.layers.Reshape((1, 8))(h), text)
    out = keras.layers.Dense(2, name="last")(keras.layers.Flatten()(read) + h)
    return keras.Model([x, text], out)


def test_an_adapter_starts_at_zero_and_trains_only_its_low_rank_matrices():
    network = _network()
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((5, 6)), rng.standard_normal((5, 3, 4))]
    inputs = [i.astype(np.float32) for i in inputs]
    before = to_numpy(network(inputs))
    frozen = [to_numpy(w).copy() for w in network.weights]
    dense = lora.dense_layers(network)
    assert len(dense) == 6  # first, the four projections inside the attention, last
    count = lora.add_lora(network, rank=2)
    # r (d_in + d_out) per layer: 6x8; in the attention query and out 8x8, key and
    # value 4x8 (they read the 4-wide text); 8x2
    assert count == 2 * (6 + 8) + 2 * 2 * (8 + 8) + 2 * 2 * (4 + 8) + 2 * (8 + 2)
    assert count == lora.trainable_count(network)
    np.testing.assert_allclose(to_numpy(network(inputs)), before, atol=1e-6)  # B = 0
    optimizer = keras.optimizers.SGD(0.1)
    network.compile(optimizer=optimizer, loss="mse")
    network.fit(inputs, np.ones((5, 2), np.float32), epochs=3, verbose=0)
    assert not np.allclose(to_numpy(network(inputs)), before)
    old = {w.path: w for w in network.weights if "lora" not in w.path}
    assert len(old) == len(frozen)
    for weight, value in zip(old.values(), frozen, strict=True):
        np.testing.assert_array_equal(to_numpy(weight), value)  # biases too
    with pytest.raises(ValueError, match="once per network"):
        lora.add_lora(network, rank=2)
    with pytest.raises(ValueError, match="at least 1"):
        lora.add_lora(_network(), rank=0)
