"""Train one small model on one device and on two logical CPUs; print both results.

Run as a separate process by tests/test_device.py: logical devices can only be
configured before TensorFlow initialises its runtime, which the test process
has long done.
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tutorial_lib.device import get_strategy  # noqa: E402


def train(strategy, initial_weights, x, y):
    with strategy.scope():
        model = keras.Sequential(
            [keras.Input((16,)), keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(1)]
        )
        model.set_weights(initial_weights)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    history = model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    return history.history["loss"], model.get_weights()


keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 16)).astype("float32")
y = np.sin(x[:, :1] + x[:, 1:2]).astype("float32")
template = keras.Sequential(
    [keras.Input((16,)), keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(1)]
)
weights = template.get_weights()

mirrored = get_strategy(devices=["/cpu:0", "/cpu:1"])
one_loss, one_weights = train(tf.distribute.get_strategy(), weights, x, y)
two_loss, two_weights = train(mirrored, weights, x, y)
json.dump(
    {
        "replicas": mirrored.num_replicas_in_sync,
        "one_device_loss": one_loss,
        "two_device_loss": two_loss,
        "max_weight_diff": max(
            float(np.abs(a - b).max()) for a, b in zip(one_weights, two_weights, strict=True)
        ),
    },
    sys.stdout,
)
