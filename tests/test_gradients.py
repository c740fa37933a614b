"""tutorial_lib.gradients on the backend in use (TensorFlow here; JAX and PyTorch run the
same functions in tests/backend_parity.py through every family's training step)."""

import keras
import numpy as np
from keras import ops

from tutorial_lib import gradients


def test_value_and_gradients_gives_the_loss_its_gradient_and_zeros_where_unused():
    used, unused = keras.Variable([1.0, -2.0]), keras.Variable([[3.0]])

    def loss_fn():
        return ops.sum(used**2), "aux"

    (loss, aux), grads = gradients.value_and_gradients(loss_fn, [used, unused])
    assert float(loss) == 5.0 and aux == "aux"
    np.testing.assert_allclose(ops.convert_to_numpy(grads[0]), [2.0, -4.0])
    np.testing.assert_array_equal(ops.convert_to_numpy(grads[1]), [[0.0]])


def test_the_input_gradient_is_each_examples_own():
    x = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
    grad = gradients.input_gradient(lambda t: ops.sum(t**2, axis=1), x)
    np.testing.assert_allclose(ops.convert_to_numpy(grad), 2 * x)


def test_a_descent_step_moves_only_the_variables_it_is_given():
    moved, kept = keras.Variable([1.0]), keras.Variable([1.0])

    class Step(gradients.GradientStepModel):
        def train_step(self, batch):
            return self.descend(self.optimizer, [moved], lambda: (ops.sum((moved + kept) ** 2), ()))

    model = Step()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.optimizer.build([moved])
    loss, _, grads = model.train_step(None)
    assert float(loss) == 4.0
    np.testing.assert_allclose(ops.convert_to_numpy(grads[0]), [4.0])
    assert float(ops.convert_to_numpy(moved)[0]) == np.float32(1.0 - 0.1 * 4.0)
    assert float(ops.convert_to_numpy(kept)[0]) == 1.0


def test_noise_drawn_inside_the_loss_is_new_at_every_call():
    """The seed generator advances, also on JAX outside a training step (there the loss
    is differentiated as a pure function, and its new state is written back after)."""
    seed, weight = keras.random.SeedGenerator(0), keras.Variable([1.0])

    def loss_fn():
        noise = keras.random.normal((1,), seed=seed)
        return ops.sum(weight * noise), noise

    draws = [gradients.value_and_gradients(loss_fn, [weight])[0][1] for _ in range(3)]
    assert len({float(ops.convert_to_numpy(d)[0]) for d in draws}) == 3
