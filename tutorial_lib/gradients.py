r"""Gradients on any of Keras's three backends, for models with their own training step.

A generative model's training step is "compute a loss, move some weights down its
gradient". The model code (layers, losses, ``keras.ops``) is the same on every backend;
only *how the gradient is taken* differs:

* **TensorFlow** records the computation on a ``tf.GradientTape`` and asks the tape for
  :math:`\partial L / \partial \theta`.
* **PyTorch** builds the graph as it computes; ``torch.autograd.grad(L, θ)`` walks it back.
* **JAX** differentiates a *function*: ``jax.value_and_grad`` of the loss as a function
  of the weights' values. ``keras.StatelessScope`` lets the model read those values
  instead of its variables, so the same model code is that function.

This module holds the three ways side by side and nothing else:

* :func:`value_and_gradients` -- the loss and its gradient with respect to some variables;
* :func:`input_gradient` -- the gradient of a network's outputs with respect to its
  *input*, itself differentiable (the R1 and WGAN-GP penalties of ``gan.py``);
* :func:`jacobian` -- every output's derivative with respect to every input, for small
  examples (a coupling layer's triangular Jacobian, PixelCNN's causal mask);
* :class:`GradientStepModel` -- a ``keras.Model`` whose ``train_step`` calls
  :meth:`GradientStepModel.descend` (one optimizer step down a loss) and runs under
  ``model.fit`` on every backend. Keras's JAX trainer calls a *pure* step,
  ``(state, batch) -> (logs, new state)``; this class runs the model's ordinary
  ``train_step`` inside a ``keras.StatelessScope`` to make it one.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from tutorial_lib.backend import backend

# --------------------------------------------------------------------------
# The gradient of a loss with respect to variables
# --------------------------------------------------------------------------


def value_and_gradients(loss_fn: Callable, variables: list):
    """``(loss, aux), gradients`` of ``loss, aux = loss_fn()`` with respect to ``variables``.

    ``loss_fn`` takes no argument and computes a scalar loss from the model's current
    weights (and anything else it needs); ``aux`` is whatever else it wants to return
    (logits, terms of the loss). One gradient per variable, in order; a variable the loss
    does not depend on gets zeros.
    """
    return _VALUE_AND_GRADIENTS[backend()](loss_fn, list(variables))


def _tensorflow_value_and_gradients(loss_fn, variables):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss, aux = loss_fn()
    grads = tape.gradient(loss, variables)
    grads = [ops.zeros_like(v) if g is None else g for v, g in zip(variables, grads, strict=True)]
    return (loss, aux), grads


def _torch_value_and_gradients(loss_fn, variables):
    import torch

    loss, aux = loss_fn()
    grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
    grads = [ops.zeros_like(v) if g is None else g for v, g in zip(variables, grads, strict=True)]
    return (loss, aux), grads


class _ScopeKeepingVariables(keras.StatelessScope):
    """A ``keras.StatelessScope`` that also keeps the variables assigned in it (the scope
    itself knows them only by ``id``), so that their new values can be written back."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.assigned = {}

    def add_update(self, update):
        variable, _ = update
        self.assigned[id(variable)] = variable
        super().add_update(update)


def _jax_value_and_gradients(loss_fn, variables):
    import jax
    from keras.src.backend.common.stateless_scope import get_stateless_scope

    # Inside a training step every variable's value comes from the step's scope; outside
    # one (a measurement in a notebook, a step called by hand), from the variable itself.
    outer = get_stateless_scope()
    outside = dict(outer.state_mapping) if outer is not None else {}
    assigned = {}

    def current(variable):
        value = outside.get(id(variable))
        return variable.value if value is None else value

    def loss_of(values):
        scope = _ScopeKeepingVariables()
        scope.state_mapping.update(outside)  # every other variable as the step sees it
        scope.state_mapping.update({id(v): x for v, x in zip(variables, values, strict=True)})
        with scope:
            loss, aux = loss_fn()
        assigned.update(scope.assigned)
        # What the computation itself changed (random seeds, metrics, moving averages).
        changed = {k: x for k, x in scope.state_mapping.items() if x is not outside.get(k)}
        return loss, (aux, changed)

    (loss, (aux, changed)), grads = jax.value_and_grad(loss_of, has_aux=True)(
        [current(v) for v in variables]
    )
    differentiated = {id(v) for v in variables}
    changed = {k: x for k, x in changed.items() if k not in differentiated}
    if outer is not None:  # carry those changes out to the step (not the weights' own values)
        outer.state_mapping.update(changed)
    else:  # no step around: they go to the variables, as they would eagerly
        for key, value in changed.items():
            if key in assigned:
                assigned[key].assign(value)
    return (loss, aux), grads


_VALUE_AND_GRADIENTS = {
    "tensorflow": _tensorflow_value_and_gradients,
    "torch": _torch_value_and_gradients,
    "jax": _jax_value_and_gradients,
}


# --------------------------------------------------------------------------
# The gradient with respect to an input (for gradient penalties)
# --------------------------------------------------------------------------


def input_gradient(fn: Callable, x):
    r""":math:`\nabla_x \sum_i f(x)_i`: the gradient of the sum of ``fn(x)`` with respect to
    its input ``x``, shaped like ``x``.

    The result is itself differentiable with respect to the weights ``fn`` uses, so a
    penalty built from it (R1, WGAN-GP) can be part of a loss that is differentiated
    again. When each output depends only on its own example (a discriminator's score), the
    gradient of the sum holds every example's own input gradient.
    """
    x = ops.cast(x, "float32")
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = ops.cast(fn(x), "float32")
        return tape.gradient(outputs, x)
    if name == "torch":
        import torch

        x = x.detach().requires_grad_(True)
        outputs = ops.sum(ops.cast(fn(x), "float32"))
        return torch.autograd.grad(outputs, x, create_graph=True)[0]
    import jax

    return jax.grad(lambda inputs: ops.sum(ops.cast(fn(inputs), "float32")))(x)


def jacobian(fn: Callable, x) -> np.ndarray:
    r"""The Jacobian :math:`J_{ij} = \partial f(x)_i / \partial x_j` of ``fn`` at ``x``, with
    the outputs and the inputs each flattened: a NumPy array of shape
    (``fn(x).size``, ``x.size``). For small examples (a layer's structure, made visible).
    """
    x = np.asarray(ops.convert_to_numpy(x), np.float32)
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        inputs = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = fn(inputs)
        matrix = tape.jacobian(outputs, inputs)
    elif name == "torch":
        import torch

        matrix = torch.autograd.functional.jacobian(fn, ops.convert_to_tensor(x))
    else:
        import jax

        matrix = jax.jacobian(fn)(ops.convert_to_tensor(x))
    matrix = ops.convert_to_numpy(matrix)
    return matrix.reshape(matrix.size // x.size, x.size)


# --------------------------------------------------------------------------
# A model with its own training step, on every backend
# --------------------------------------------------------------------------


class GradientStepModel(keras.Model):
    """A ``keras.Model`` whose ``train_step(batch)`` is written once for every backend.

    A subclass writes its step with :meth:`descend`, which makes one optimizer step down
    a loss, and returns its logs; ``fit``, ``evaluate`` and callbacks work as usual. A
    model with more optimizers than ``self.optimizer`` (a GAN's two) lists them in
    :meth:`step_optimizers`.
    """

    def step_optimizers(self) -> list:
        """Every optimizer the training step uses."""
        return [] if self.optimizer is None else [self.optimizer]

    def descend(self, optimizer, variables: list, loss_fn: Callable):
        """One step of ``optimizer`` on ``variables`` down ``loss, aux = loss_fn()``.

        The loss is divided by the number of replicas that each compute a part of the
        batch (their gradients are summed) and, under mixed precision, scaled by the
        optimizer's loss scale (which it undoes before the step). Returns
        ``(loss, aux, gradients)``, the loss unscaled.
        """
        from tutorial_lib import device

        variables = list(variables)
        replicas = device.replicas_in_sync()

        def scaled_loss():
            loss, aux = loss_fn()
            return optimizer.scale_loss(loss / replicas), (loss, aux)

        (_, (loss, aux)), grads = value_and_gradients(scaled_loss, variables)
        if backend() == "torch":
            import torch

            with torch.no_grad():
                optimizer.apply(grads, variables)
        else:
            optimizer.apply(grads, variables)
        return loss, aux, grads

    # -- JAX: run the stateful step as a pure function of Keras's state ------------

    def make_train_function(self, force=False):
        if backend() != "jax":
            return super().make_train_function(force)
        if self.train_function is None or force:
            self.train_function = self._pure_step_function(self.train_step, training=True)
        return self.train_function

    def make_test_function(self, force=False):
        if backend() != "jax":
            return super().make_test_function(force)
        if self.test_function is None or force:
            self.test_function = self._pure_step_function(self.test_step, training=False)
        return self.test_function

    def _get_jax_state(self, *args, optimizer_variables=False, **kwargs):
        # Keras's JAX trainer carries ``self.optimizer``'s variables in its state; a
        # model whose optimizers are others (a GAN's two) has none there: its steps
        # carry them as extra state (below).
        if self.optimizer is not None or not optimizer_variables:
            return super()._get_jax_state(*args, optimizer_variables=optimizer_variables, **kwargs)
        state = list(super()._get_jax_state(*args, **kwargs))
        before = ("trainable_variables", "non_trainable_variables")
        state.insert(sum(bool(kwargs.get(name)) for name in before), [])
        return tuple(state)

    def _pure_step_function(self, step: Callable, *, training: bool):
        """Keras's JAX trainer's ``(state, iterator) -> (logs, state)`` for ``step``.

        The state holds the values of the model's trainable, non-trainable, optimizer
        (training only) and metric variables, in that order; the variables of the other
        optimizers in :meth:`step_optimizers` travel beside it and are written back to
        their variables after each step.
        """
        import jax

        groups = [self.trainable_variables, self.non_trainable_variables]
        if training:
            groups.append([] if self.optimizer is None else self.optimizer.variables)
        groups.append(self.metrics_variables)
        extra = [
            v
            for optimizer in (self.step_optimizers() if training else [])
            if optimizer is not self.optimizer
            for v in optimizer.variables
        ]

        def pure_step(state, extra_values, data):
            pairs = list(zip(extra, extra_values, strict=True))
            for group, values in zip(groups, state, strict=True):
                pairs.extend(zip(group, values, strict=True))
            with keras.StatelessScope(state_mapping=pairs) as scope:
                logs = step(data)

            def new(variables, values):
                return [
                    value if (x := scope.get_current_value(v)) is None else x
                    for v, value in zip(variables, values, strict=True)
                ]

            new_state = tuple(new(g, s) for g, s in zip(groups, state, strict=True))
            return logs, new_state, new(extra, extra_values)

        if self.jit_compile and not self.run_eagerly:
            pure_step = jax.jit(pure_step)

        def function(state, iterator):
            extra_values = [v.value for v in extra]
            for i in range(self.steps_per_execution):
                try:
                    data = next(iterator)
                except StopIteration:
                    if i == 0:
                        raise
                    break
                logs, state, extra_values = pure_step(state, extra_values, data)
            for variable, value in zip(extra, extra_values, strict=True):
                variable.assign(value)
            return logs, state

        return function
