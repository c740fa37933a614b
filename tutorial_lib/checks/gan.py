"""Checks for ``exercises/03_gan.ipynb``: the hinge loss, WGAN-GP's gradient penalty
for data of any rank, a hinge GAN's train_step with two optimizers, and where the
saturating generator loss stops learning.

Each check runs the learner's code on hidden cases and compares it with float64
references. When the value is wrong, it also computes what the usual mistakes
would give (signs swapped, no ReLU, a one-sided penalty, the penalty at the
wrong points, ...) and names the one that matches.
"""

from __future__ import annotations

import keras
import numpy as np

from tutorial_lib.backend import float32_tensor
from tutorial_lib.checks import (
    CheckFailed,
    CheckResult,
    Hints,
    expect,
    hidden_cases,
    read_evidence,
    run_check,
)
from tutorial_lib.grading.probe_tools import flat
from tutorial_lib.grading.probes import LinearCritic, QuadraticCritic, gan_weights
from tutorial_lib.grading.remote import in_graph, run_probe

RTOL, ATOL = 1e-4, 1e-5


def _logits(n: int, seed: int, scale: float = 2.0) -> np.ndarray:
    """Fixed random logits of shape (n, 1), as a discriminator outputs them."""
    return (scale * np.random.default_rng(seed).standard_normal((n, 1))).astype(np.float32)


def _number(value, function_name: str) -> float:
    """The learner's result as a float, or a failure that says what it was instead."""
    try:
        array = np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)
    except Exception as error:
        raise CheckFailed(
            f"{function_name} returned {type(value).__name__}, which is not a number "
            f"({type(error).__name__}: {error})."
        ) from None
    expect(
        array.ndim == 0 or array.size == 1 and array.ndim == 1,
        f"{function_name} should return a single number (the mean over the batch), got an "
        f"array of shape {array.shape}: average with keras.ops.mean.",
    )
    return float(array.reshape(()))


def _close(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=RTOL, atol=ATOL))


def _expect_value(got: float, expected: float, mistakes: dict, advice: str) -> None:
    """Fail naming the first of ``mistakes`` (message -> the value that mistake gives)
    that ``got`` matches; otherwise fail with ``advice`` unless ``got`` is ``expected``."""
    for mistake, wrong in mistakes.items():
        expect(not _close(got, wrong), f"got {got:.4f}, expected {expected:.4f}: {mistake}.")
    expect(_close(got, expected), advice)


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)), exactly, in float64."""
    x = np.asarray(x, dtype=np.float64)
    return np.logaddexp(0.0, x)


def _bce(label: float, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of logits against one label (float64 reference)."""
    return float(np.mean(label * _softplus(-logits) + (1.0 - label) * _softplus(logits)))


def _bce_on_probabilities(label: float, values: np.ndarray) -> float:
    """What Keras's BCE gives when the logits are wrongly passed as probabilities."""
    one, eps = np.float32(1.0), np.float32(1e-7)  # Keras clips in float32
    p = np.clip(np.asarray(values, dtype=np.float32), eps, one - eps)
    terms = label * np.log(p) + (1.0 - label) * np.log(one - p)
    return float(np.mean(-terms.astype(np.float64)))


def _in_graph(function, *args):
    """Run ``function`` as a compiled train_step runs it (inside a ``tf.function`` on
    TensorFlow, ``jax.jit`` on JAX; PyTorch's steps run eagerly), in the learner's own
    process while grading."""
    return in_graph(function, *args)


def _graph_case(function, function_name: str, *args):
    try:
        _in_graph(function, *args)
    except Exception as error:  # NotImplementedError too: NumPy on a symbolic tensor raises it
        kind = getattr(error, "learner_type", type(error).__name__)  # (its own process)
        raise CheckFailed(
            f"{function_name} fails inside a compiled step (tf.function or jax.jit), as in "
            f"a train_step: {kind}: {str(error)[:200]}. Compute with "
            "keras.ops on the tensors; no NumPy, no .numpy(), no float(...)."
        ) from None


hint = Hints(
    {
        "hinge": (
            "The hinge loss only punishes the discriminator inside a margin: a real image "
            "costs nothing once its score is above +1, a fake once its score is below -1; "
            "inside the margin the cost grows linearly. Average each kind over its batch and "
            "add the two.",
            "keras.ops.relu (the max with 0), keras.ops.mean, the two score tensors; no "
            "sigmoid and no cross-entropy: the scores are not logits of a probability.",
        ),
        "penalty": (
            "Take the critic's gradient with respect to its *input* at points between real "
            "and fake examples, one norm per example over all its axes, and penalise that "
            "norm for being away from 1 on either side.",
            "input_gradient (tutorial_lib.gradients) of the critic at the interpolates, "
            "keras.ops.sum over the axes range(1, ndim) (or a reshape to (N, -1)), "
            "keras.ops.sqrt and keras.ops.mean.",
        ),
        "hinge_gan": (
            "Two steps in one: first the discriminator (fresh fakes from fresh noise, its "
            "hinge loss, an update of the discriminator's weights only), then the generator "
            "(fresh noise, a loss that is low when the discriminator scores its fakes high, "
            "an update of the generator's weights only). Return both losses.",
            "keras.random.normal((batch, self.latent_dim), seed=self.seed_generator) for "
            "each step, one self.descend(optimizer, variables, loss_fn) per "
            "step with a loss function of no arguments that returns (loss, aux), a network's "
            "trainable_variables, your hinge_d_loss, keras.ops.mean, and a dict "
            "{'d_loss': ..., 'g_loss': ...}.",
        ),
        "saturation": (
            "Both generator losses are functions of the fake's logit: differentiate each "
            "with respect to the logit over a range of logits, compare the sizes of the two "
            "gradients, and find where their ratio is 1%; report D's probability there.",
            "input_gradient (tutorial_lib.gradients) of each loss with respect to a tensor "
            "of logits, or the derivatives by hand, gan.generator_loss(logits, "
            "kind='saturating' or 'non_saturating'), keras.ops.sigmoid, and a search over the "
            "logit (np.linspace or a bisection).",
        ),
    }
)


# --------------------------------------------------------------------------
# Task 1: the hinge loss of the discriminator
# --------------------------------------------------------------------------


def _hinge(real, fake) -> float:
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    return float(np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake)))


def check_hinge_d_loss(hinge_d_loss, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``hinge_d_loss(real_scores, fake_scores)``: mean(relu(1 - real)) + mean(relu(1 + fake)),
    one number, from the discriminator's raw scores (any shape (N, ...)). ``hidden``:
    ``{"n": ..., "seeds": [s1, s2]}``, other cases."""
    name = getattr(hinge_d_loss, "__name__", "hinge_d_loss")
    cases = hidden_cases(hidden, "check_hinge_d_loss")
    n, (seed_real, seed_fake) = cases.get("n", 32), cases.get("seeds", (0, 1))
    # real scores mostly above the margin, so that a ReLU of the means differs from no ReLU
    real, fake = _logits(n, seed_real) + 1.6, _logits(n, seed_fake) - 0.3

    def value(r, f) -> float:
        return _number(hinge_d_loss(float32_tensor(r), float32_tensor(f)), name)

    def one_number():
        value(real, fake)

    def matches_the_hinge():
        got, expected = value(real, fake), _hinge(real, fake)
        r, f = real.astype(np.float64), fake.astype(np.float64)
        mistakes = {
            "the ReLU is missing: without it this is the WGAN critic's loss plus 2, which "
            "keeps pushing scores that are already far on the right side": float(
                np.mean(1 - r) + np.mean(1 + f)
            ),
            "the ReLU is missing on the real scores' term: relu(1 - real), averaged": float(
                np.mean(1 - r) + np.mean(np.maximum(0, 1 + f))
            ),
            "the ReLU is missing on the fake scores' term: relu(1 + fake), averaged": float(
                np.mean(np.maximum(0, 1 - r)) + np.mean(1 + f)
            ),
            "the signs are swapped: real scores should be pushed *above* +1 (relu(1 - real)) "
            "and fake scores *below* -1 (relu(1 + fake))": _hinge(-r, -f),
            "the margin is missing: the hinge is relu(1 - real) and relu(1 + fake), not "
            "relu(-real) and relu(fake)": float(
                np.mean(np.maximum(0, -r)) + np.mean(np.maximum(0, f))
            ),
            "you averaged the two terms: add them": expected / 2,
            "you summed over the batch: take the mean over the examples": n * expected,
            "you took the ReLU of the batch means: apply it to each score, then average": float(
                max(0, 1 - r.mean()) + max(0, 1 + f.mean())
            ),
            "this is the cross-entropy of the lesson: the task is the hinge loss": _bce(1.0, r)
            + _bce(0.0, f),
        }
        _expect_value(
            got,
            expected,
            mistakes,
            f"got {got:.4f}, expected {expected:.4f}: work the task's formula by hand for "
            "one real and one fake score (a real score of 0.5 costs 0.5, a fake score of -2 "
            "costs nothing) and compare with what your function returns for them.",
        )

    def sure_and_right_costs_nothing():
        got = value(np.full((8, 1), 3.0, np.float32), np.full((8, 1), -3.0, np.float32))
        expect(
            abs(got) < 1e-6,
            f"real scores of +3 and fake scores of -3 are outside the margin: the loss should "
            f"be 0, got {got:.4g}.",
        )

    def extreme_scores_and_other_shapes():
        big = np.full((6, 1), 200.0, np.float32)
        got = value(-big, big)
        expect(
            np.isfinite(got) and abs(got - 402.0) < 1e-2,
            f"for scores of -200 (real) and +200 (fake) the loss should be 402, got {got:.4g}.",
        )
        flat_real, flat_fake = real.reshape(-1), fake.reshape(-1)
        got = value(flat_real, flat_fake)
        expect(
            _close(got, _hinge(flat_real, flat_fake)),
            "for scores of shape (N,) instead of (N, 1) the loss changes: average over all "
            "the scores, whatever their shape.",
        )
        one_real, one_fake = real[:1] * 0 + 0.25, fake[:1] * 0 - 0.5  # a batch of 1
        got = value(one_real, one_fake)
        expect(
            _close(got, _hinge(one_real, one_fake)),
            f"for a batch of one real score 0.25 and one fake score -0.5 the loss is 1.25, "
            f"got {got:.4g}: does your function assume more than one example?",
        )

    def works_in_a_train_step():
        _graph_case(hinge_d_loss, name, float32_tensor(real), float32_tensor(fake))

    cases = [
        one_number,
        matches_the_hinge,
        sure_and_right_costs_nothing,
        extreme_scores_and_other_shapes,
        works_in_a_train_step,
    ]
    return run_check("check_hinge_d_loss", hinge_d_loss, cases, quiet=quiet, task="hinge")


# --------------------------------------------------------------------------
# Task 2: WGAN-GP's gradient penalty, for data of any rank
# --------------------------------------------------------------------------


def _QuadraticCritic(shape, seed: int = 0, scale: float = 0.1) -> QuadraticCritic:
    """f(x) = sum(w * x^2) per example: its gradient 2 w x depends on where it is taken."""
    return QuadraticCritic(np.random.default_rng(seed).uniform(0.0, scale, (1, *shape)))


def _examples(shape, n: int, seed: int) -> np.ndarray:
    """Examples of different sizes, so that gradient norms fall on both sides of 1."""
    rng = np.random.default_rng(seed)
    sizes = rng.uniform(0.3, 1.6, (n,) + (1,) * len(shape))
    return (sizes * rng.uniform(-1.0, 1.0, (n, *shape))).astype(np.float32)


def _penalties(critic: QuadraticCritic, real, fake, epsilon) -> dict[str, float]:
    """The penalty at the right points and at the points of common mistakes (float64)."""
    axes = tuple(range(1, real.ndim))

    def grads_at(x):
        return 2.0 * critic.w.astype(np.float64) * x.astype(np.float64)

    def penalty(grads, *, per_example=True, root=True, minus_one=True, one_sided=False, axes=axes):
        squares = np.sum(np.square(grads), axis=axes if per_example else None)
        norms = np.sqrt(squares) if root else squares
        gaps = norms - (1.0 if minus_one else 0.0)
        return float(np.mean(np.square(np.maximum(gaps, 0.0) if one_sided else gaps)))

    e = epsilon.astype(np.float64)
    at_interpolates = grads_at(e * real + (1 - e) * fake)
    values = {
        "right": penalty(at_interpolates),
        "mirrored": penalty(grads_at(e * fake + (1 - e) * real)),
        "real": penalty(grads_at(real)),
        "fake": penalty(grads_at(fake)),
        "midpoint": penalty(grads_at(0.5 * real + 0.5 * fake)),
        "no_minus_one": penalty(at_interpolates, minus_one=False),
        "no_root": penalty(at_interpolates, root=False),
        "batch_norm": penalty(at_interpolates, per_example=False),
        "one_sided": penalty(at_interpolates, one_sided=True),
    }
    if real.ndim > 2:  # the lesson's images: norms over axes (1, 2, 3) only
        values["first_axes"] = penalty(at_interpolates, axes=(1,))
    return values


def check_gradient_penalty(gradient_penalty, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``gradient_penalty(critic, real, fake, epsilon)``: the mean over examples of
    (||grad f(x_hat)||_2 - 1)^2 at x_hat = epsilon * real + (1 - epsilon) * fake, one norm
    per example over all its axes; examples of any rank, ``epsilon`` of shape (N, 1, ...).
    ``hidden``: ``{"shapes": [...], "seed": s}``, other example shapes (three or more)."""
    name = getattr(gradient_penalty, "__name__", "gradient_penalty")
    cases = hidden_cases(hidden, "check_gradient_penalty")
    shapes = [tuple(s) for s in cases.get("shapes", [(28, 28, 1), (16,), (4, 6)])]
    first_seed = cases.get("seed", 0)

    def setup(shape, n=8, seed=None):
        seed = first_seed if seed is None else seed
        real, fake = _examples(shape, n, seed), _examples(shape, n, seed + 1)
        rng = np.random.default_rng(seed + 2)
        epsilon = rng.uniform(0.0, 1.0, (n,) + (1,) * len(shape)).astype(np.float32)
        scale = 0.06 * np.sqrt(784 / np.prod(shape))  # gradient norms on both sides of 1
        return _QuadraticCritic(shape, seed, scale), real, fake, epsilon

    def value(c, r, f, e) -> float:
        return _number(
            gradient_penalty(c, float32_tensor(r), float32_tensor(f), float32_tensor(e)), name
        )

    watch_hint = (
        "is there a gradient at all? input_gradient(fn, x) differentiates what fn computes "
        "from the x it is handed: fn must be the critic (or call it on its own argument), "
        "and x the interpolates"
    )

    def one_number():
        critic, real, fake, epsilon = setup(shapes[0])
        try:
            got = value(critic, real, fake, epsilon)
        except (CheckFailed, NotImplementedError):
            raise
        except Exception as error:
            # no gradient: TensorFlow's is None, PyTorch refuses to differentiate
            signs = ("None", "not have been used", "does not require grad")
            if not any(sign in str(error) for sign in signs):
                raise
            kind = getattr(error, "learner_type", type(error).__name__)  # (its own process)
            raise CheckFailed(f"{name} raised {kind}: {str(error)[:120]}: {watch_hint}.") from None
        expect(np.isfinite(got), f"{name} returned {got}: {watch_hint}.")
        expect(  # a gradient of zeros (JAX's when the critic does not see its input)
            not _close(got, 1.0) or _close(_penalties(critic, real, fake, epsilon)["right"], 1.0),
            f"{name} returned {got:.5f}, the penalty of a gradient that is zero everywhere: "
            f"{watch_hint}.",
        )
        expect(
            _close(got, value(critic, real, fake, epsilon)),
            "two calls with the same epsilon gave different penalties: use the epsilon "
            "argument instead of drawing your own random numbers.",
        )

    def penalises_the_gradient_at_interpolates():
        for shape, n in [*((s, 8) for s in shapes), (shapes[1], 1)]:  # and a batch of 1
            critic, real, fake, epsilon = setup(shape, n)
            got = value(critic, real, fake, epsilon)
            p = _penalties(critic, real, fake, epsilon)
            if _close(got, p["right"]) or _close(got, p["mirrored"]):
                continue  # epsilon * fake + (1 - epsilon) * real: as good, epsilon is uniform
            mistakes = {
                "one_sided": "you penalised only norms above 1 (a one-sided penalty): WGAN-GP's "
                "penalty is two-sided, (||grad|| - 1)^2 for norms below 1 too",
                "real": "you took the gradient at the real examples: take it at the "
                "interpolates x_hat = epsilon * real + (1 - epsilon) * fake",
                "fake": "you took the gradient at the fakes: take it at the interpolates "
                "x_hat = epsilon * real + (1 - epsilon) * fake",
                "midpoint": "you took the midpoints (real + fake) / 2: use the epsilon given",
                "no_minus_one": "you penalised the squared norm ||grad||^2: the penalty pulls "
                "the norm towards 1, not 0",
                "no_root": "you used the squared norm: take the square root of the sum of "
                "squares before subtracting 1",
                "batch_norm": "you took one norm over the whole batch: one norm per example, "
                "then the mean of the penalties",
                "first_axes": "you summed the squares over axis 1 only: sum over every axis "
                "of an example",
            }
            for key, mistake in mistakes.items():
                if key in p:
                    expect(
                        not _close(got, p[key]),
                        f"for examples of shape {shape}: got {got:.5f}, expected "
                        f"{p['right']:.5f}: {mistake}.",
                    )
            raise CheckFailed(
                f"for examples of shape {shape} (epsilon of shape {epsilon.shape}): got "
                f"{got:.5f} on a toy critic, expected {p['right']:.5f}: the norm of each "
                "example's gradient must run over all its axes (not a fixed (1, 2, 3)), "
                "then the mean of (norm - 1)^2."
            )

    def uses_the_given_epsilon():
        critic, real, fake, epsilon = setup(shapes[1])
        for other in (np.zeros_like(epsilon), np.ones_like(epsilon)):
            got = value(critic, real, fake, other)
            p = _penalties(critic, real, fake, other)
            expect(
                _close(got, p["right"]) or _close(got, p["mirrored"]),
                "with epsilon = 0 (or 1) for every example the penalty should be the one at "
                f"the fakes (or the real examples), {p['right']:.5f}; got {got:.5f}: use the "
                "epsilon argument instead of drawing your own.",
            )

    def a_linear_critic_with_unit_slope_costs_nothing():
        shape = shapes[2]
        _, real, fake, epsilon = setup(shape)
        w = np.random.default_rng(3).standard_normal((1, *shape)).astype(np.float32)
        got = value(LinearCritic(w / np.linalg.norm(w)), real, fake, epsilon)
        expect(
            abs(got) < 1e-4,
            f"a linear critic whose gradient has norm exactly 1 everywhere should get a "
            f"penalty of 0, got {got:.4g}.",
        )

    def penalty_trains_the_critic():
        _, real, fake, epsilon = setup(shapes[0])
        probe = run_probe(
            gradient_penalty, "penalty_trains_critic", real=real, fake=fake, epsilon=epsilon
        )
        error = f" ({probe['error']})" if probe.get("error") else ""
        expect(
            probe["has_gradients"] is True,
            f"the penalty has no gradient w.r.t. the critic's weights{error}, so it cannot "
            "train the critic: keep the whole computation in keras.ops (no NumPy) and do not "
            "stop the gradient.",
        )

    def works_in_a_train_step():
        critic, real, fake, epsilon = setup(shapes[1])
        _graph_case(
            gradient_penalty,
            name,
            critic,
            float32_tensor(real),
            float32_tensor(fake),
            float32_tensor(epsilon),
        )

    cases = [
        one_number,
        penalises_the_gradient_at_interpolates,
        uses_the_given_epsilon,
        a_linear_critic_with_unit_slope_costs_nothing,
        penalty_trains_the_critic,
        works_in_a_train_step,
    ]
    return run_check("check_gradient_penalty", gradient_penalty, cases, quiet=quiet, task="penalty")


# --------------------------------------------------------------------------
# Task 3: a hinge GAN's train_step, two optimizers
# --------------------------------------------------------------------------

LATENT, DATA = 2, 3


def _linear_d_grads(w, b, x_real, x_fake, *, kind: str) -> np.ndarray:
    """d loss / d (w, b) for a linear D = x w + b, in float64, flattened like _flat."""
    s_real, s_fake = x_real @ w + b, x_fake @ w + b
    below = lambda s, limit: (s < limit).astype(np.float64)  # noqa: E731
    if kind == "hinge":
        c_real, c_fake = -below(s_real, 1) / len(x_real), below(-s_fake, 1) / len(x_fake)
    elif kind == "swapped":
        c_real, c_fake = below(-s_real, 1) / len(x_real), -below(s_fake, 1) / len(x_fake)
    elif kind == "bce":
        sig = lambda s: 1 / (1 + np.exp(-s))  # noqa: E731
        c_real, c_fake = (sig(s_real) - 1) / len(x_real), sig(s_fake) / len(x_fake)
    else:  # "wgan": mean(fake) - mean(real)
        c_real, c_fake = -np.ones_like(s_real) / len(x_real), np.ones_like(s_fake) / len(x_fake)
    gw = x_real.T @ c_real + x_fake.T @ c_fake
    return np.concatenate([gw.ravel(), [c_real.sum() + c_fake.sum()]])


def _linear_g_grads(kernel, w, b, z, *, kind: str) -> np.ndarray:
    """d loss / d kernel for G = z kernel, D = x w + b, flattened."""
    scores = z @ kernel @ w + b
    if kind == "hinge_g":  # -mean(D(G(z)))
        c = -np.ones_like(scores) / len(z)
    elif kind == "relu_g":  # mean(relu(1 - D(G(z)))), the D-side hinge reused
        c = -(scores < 1).astype(np.float64) / len(z)
    else:  # "plus": +mean(D(G(z))), the wrong sign
        c = np.ones_like(scores) / len(z)
    return (z.T @ (c @ w.T)).ravel()


_REFERENCE_HINGE = """
def hinge_d_loss(real_scores, fake_scores):
    return ops.mean(ops.relu(1.0 - real_scores)) + ops.mean(ops.relu(1.0 + fake_scores))
"""


def check_hinge_gan(HingeGAN, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``HingeGAN(generator, discriminator, latent_dim)`` whose ``train_step(real)`` updates
    D with the hinge loss on fresh fakes (d_optimizer, D's weights only), then G with
    -mean(D(G(z))) on fresh noise (g_optimizer, G's weights only), and returns
    ``{"d_loss": ..., "g_loss": ...}``. Every sub-step is inspected: which optimizer
    moved which network's weights, by how much, with which noise. ``hidden``:
    ``{"seed": s, "batch": n}``."""
    cases = hidden_cases(hidden, "check_hinge_gan")
    seed, batch = cases.get("seed", 20), cases.get("batch", 16)
    d_lr, g_lr = 0.05, 0.03  # two rates: an update tells which optimizer made it
    real = np.random.default_rng(seed).normal(0.5, 1.0, (batch, DATA)).astype(np.float32)
    start = gan_weights(seed, LATENT, DATA)
    d0 = np.concatenate([start["w"].ravel(), start["b"]]).astype(np.float64)
    g0 = start["kernel"].astype(np.float64).ravel()
    state = {}

    def one_step_updates_both():
        report = run_probe(
            HingeGAN,
            "gan_step",
            seed=seed,
            real=real,
            latent=LATENT,
            d_lr=d_lr,
            g_lr=g_lr,
            references={"hinge_d_loss": _REFERENCE_HINGE},
        )
        state.update(report)
        logs = report["logs"]
        expect(
            isinstance(logs, dict) and {"d_loss", "g_loss"} <= set(logs),
            f"train_step should return a dict with 'd_loss' and 'g_loss', got {sorted(logs)}.",
        )
        d1, g1 = flat(report["after"]["discriminator"]), flat(report["after"]["generator"])
        expect(
            not np.allclose(d0, d1),
            "the discriminator's weights did not change: apply d_optimizer to the gradients "
            "of the hinge loss w.r.t. the discriminator's trainable variables.",
        )
        expect(
            not np.allclose(g0, g1),
            "the generator's weights did not change: apply g_optimizer to the gradients of "
            "the generator's loss w.r.t. the generator's trainable variables.",
        )

    def each_optimizer_moves_its_own_network():
        applies = state["applies"]
        used = [(a["optimizer"], tuple(a["owners"])) for a in applies]
        for optimizer, owners in used:
            expect(
                optimizer != "d_optimizer" or owners == ("discriminator",),
                f"d_optimizer updated {' and '.join(owners)}'s variables: give it the "
                "discriminator's trainable variables only (self.discriminator."
                "trainable_variables), not self.trainable_variables or the generator's.",
            )
            expect(
                optimizer != "g_optimizer" or owners == ("generator",),
                f"g_optimizer updated {' and '.join(owners)}'s variables: give it the "
                "generator's trainable variables only (the optimizers are swapped, or the "
                "discriminator is not kept out of the generator's step).",
            )
        expect(
            [u[0] for u in used] == ["d_optimizer", "g_optimizer"],
            f"one train_step should apply d_optimizer once, then g_optimizer once; yours "
            f"applied {[u[0] for u in used] or 'none'}.",
        )
        for sub_step, network, other in (
            (applies[0], "discriminator", "generator"),
            (applies[1], "generator", "discriminator"),
        ):
            expect(
                np.allclose(sub_step["before"][other], sub_step["after"][other]),
                f"the {network}'s step also moved the {other}'s weights.",
            )
        second = state["second_step"]
        keras2 = (
            "does your train_step set trainable = False (Keras 2's recipe)? In Keras 3 that "
            "takes the network's variables out of every later step: give each optimizer its "
            "own network's trainable variables instead"
        )
        expect(
            "error" not in second, f"a second train_step failed ({second.get('error')}): {keras2}."
        )
        owners = [(a["optimizer"], tuple(a["owners"])) for a in second["applies"]]
        expect(
            owners == [("d_optimizer", ("discriminator",)), ("g_optimizer", ("generator",))]
            and all(
                not np.allclose(a["before"][net], a["after"][net])
                for a, net in zip(second["applies"], ("discriminator", "generator"), strict=False)
            ),
            f"in a second train_step the optimizers updated {owners}, not each its own "
            f"network: {keras2}.",
        )

    def draws_fresh_noise_per_example():
        zs = state["noise"]
        expect(
            len(zs) >= 2 and all(np.shape(z) == (batch, LATENT) for z in zs),
            f"the generator should get noise of shape (batch, latent_dim) = ({batch}, "
            f"{LATENT}) once per sub-step, got {[np.shape(z) for z in zs]}.",
        )
        expect(
            batch == 1 or not np.allclose(zs[0], zs[0][:1]),
            "every example got the same noise vector: the noise was drawn once and broadcast "
            "to the batch. Draw it of shape (batch, latent_dim).",
        )
        expect(
            not np.allclose(zs[0], zs[-1]),
            "the generator's step reused the noise of the discriminator's step: draw fresh "
            "noise for each sub-step (two calls of keras.random.normal).",
        )
        second = state["second_step"].get("noise")
        expect(
            second is None or not np.allclose(zs[0], second),
            "two train steps used the same noise: draw new noise inside train_step with "
            "keras.random.normal(..., seed=self.seed_generator), not a fixed tensor.",
        )

    def discriminator_step_is_the_hinge():
        step = state["applies"][0]
        w, b = d0[:DATA].reshape(DATA, 1), d0[DATA:]
        fake = state["noise"][0] @ g0.reshape(LATENT, DATA)
        delta = step["after"]["discriminator"] - step["before"]["discriminator"]

        def matches(kind, lr=d_lr):
            return np.allclose(delta, -lr * _linear_d_grads(w, b, real, fake, kind=kind), atol=1e-5)

        if matches("hinge"):
            return
        expect(
            not matches("hinge", g_lr),
            "the discriminator's step moved by the generator's learning rate: the two "
            "optimizers are swapped.",
        )
        mistakes = {
            "swapped": "the discriminator's update pushes real scores down and fake scores "
            "up: the real examples and the fakes are swapped in the hinge loss",
            "bce": "the discriminator was trained with the cross-entropy: use your hinge_d_loss",
            "wgan": "the discriminator was trained with mean(fake) - mean(real) (no ReLU): "
            "use your hinge_d_loss",
        }
        for kind, message in mistakes.items():
            expect(not matches(kind), message + ".")
        raise CheckFailed(
            "the discriminator's weights changed by something other than one d_optimizer "
            "step on the hinge loss of the real batch and the fakes of its own noise."
        )

    def generator_step_raises_the_scores():
        step = state["applies"][1]
        kernel = g0.reshape(LATENT, DATA)
        delta = step["after"]["generator"] - step["before"]["generator"]
        d_now = step["before"]["discriminator"]  # D after its own step
        z = state["noise"][-1]

        def matches(kind, lr=g_lr):  # D after its step (alternating), or before (simultaneous)
            return any(
                np.allclose(
                    delta,
                    -lr
                    * _linear_g_grads(kernel, d[:DATA].reshape(DATA, 1), d[DATA:], z, kind=kind),
                    atol=1e-5,
                )
                for d in (d_now, d0)
            )

        if matches("hinge_g"):
            return
        expect(
            not matches("hinge_g", d_lr),
            "the generator's step moved by the discriminator's learning rate: the two "
            "optimizers are swapped.",
        )
        expect(
            not matches("relu_g"),
            "the generator's loss is the discriminator's hinge mean(relu(1 - D(G(z)))): for "
            "the generator the hinge GAN uses -mean(D(G(z))), no ReLU, so it keeps pushing.",
        )
        expect(
            not matches("plus"),
            "the generator's update lowers D's scores of its fakes: its loss is "
            "-mean(D(G(z))), with a minus sign.",
        )
        raise CheckFailed(
            "the generator's weights changed by something other than one g_optimizer step on "
            "-mean(D(G(z))) for its own noise, scored by the discriminator after its step."
        )

    def reports_the_losses():
        logs = state["logs"]
        fake = state["noise"][0] @ g0.reshape(LATENT, DATA)
        score = lambda x: x @ d0[:DATA].reshape(DATA, 1) + d0[DATA:]  # noqa: E731
        expected = _hinge(score(real), score(fake))
        got = float(np.asarray(keras.ops.convert_to_numpy(logs["d_loss"]), np.float64).ravel()[0])
        expect(
            np.isclose(got, expected, rtol=1e-4),
            f"logs['d_loss'] is {got:.4f}, expected the hinge loss of the discriminator's "
            f"step, {expected:.4f}.",
        )

    def trains_with_fit():
        fit = state["fit"]
        expect(
            "error" not in fit,
            f"model.fit failed ({fit.get('error')}): train_step must return the dict of "
            "losses and use keras.ops on tensors, no NumPy.",
        )
        expect(
            {"d_loss", "g_loss"} <= set(fit["logged"]),
            f"model.fit should log d_loss, g_loss, got {fit['logged']}.",
        )
        expect(
            fit["generator_moved"] is True,
            "in model.fit (a compiled step: tf.function or jax.jit) the generator did not "
            "train: use keras.ops inside train_step, no NumPy.",
        )

    cases = [
        one_step_updates_both,
        each_optimizer_moves_its_own_network,
        draws_fresh_noise_per_example,
        discriminator_step_is_the_hinge,
        generator_step_raises_the_scores,
        reports_the_losses,
        trains_with_fit,
    ]
    # A mistake in Task 1's hinge_d_loss is Task 1's: train_step runs with the reference.
    return run_check("check_hinge_gan", HingeGAN, cases, quiet=quiet, task="hinge_gan")


# --------------------------------------------------------------------------
# Task 4 (investigate): where the saturating loss stops learning
# --------------------------------------------------------------------------


def saturation_truth(probability):
    """The ratio |d/dl log(1 - sigma(l))| / |d/dl -log sigma(l)| = sigma / (1 - sigma) at
    D = sigma(l): the check's own run of the experiment at the learner's points."""
    p = np.asarray(probability, np.float64)
    return p / (1.0 - p)


def check_saturation(experiment, *, quiet: bool = False, hidden=None) -> CheckResult:
    """``experiment()`` returns ``{"D": probabilities, "ratio": the gradient ratio measured
    at each, "answer": D where the ratio is 1%}``: the curve is checked against the
    ratio's true value at the learner's own points (2%), the answer against the curve (where
    it crosses 1%) and against the truth, 1/101 (5%)."""

    def returns_its_evidence():
        d, ratio, answer = read_evidence(
            experiment,
            {
                "D": "the probabilities you tried",
                "ratio": "the gradient ratio you measured at each",
            },
            min_points=20,
            to_numpy=keras.ops.convert_to_numpy,
        )
        state.update(d=d, ratio=ratio, answer=answer)

    def the_answer_is_a_probability():
        answer = state["answer"]
        expect(np.isfinite(answer), f"your answer is {answer}: expected D's probability.")
        expect(
            abs(answer - np.log(0.01)) > 0.05 * 4.6 and 0.0 < answer < 1.0,
            f"your answer {answer:.4g} is not a probability: "
            + (
                "you answered the logit; the question asks for D's probability sigma(logit)."
                if answer < 0
                else "D = sigma(logit) lies between 0 and 1."
            ),
        )

    def the_curve_is_a_measurement():
        d, ratio = state["d"], state["ratio"]
        expect(
            bool(np.all((d > 0) & (d < 1))),
            "every value of 'D' should be a probability sigma(logit), between 0 and 1.",
        )
        expect(
            d.min() < 0.005 and d.max() > 0.02,
            "your curve should cover the ratio's 1% crossing: try probabilities from below "
            "0.005 to above 0.02 at least.",
        )
        truth = saturation_truth(d)
        if np.allclose(ratio, 1.0 / truth, rtol=0.02):
            raise CheckFailed(
                "your ratios are the non-saturating gradient over the saturating one: the "
                "question is the other way round."
            )
        wrong = ~np.isclose(ratio, truth, rtol=0.02)
        expect(
            not wrong.any(),
            f"at D = {d[wrong][:1].round(5).tolist()[0] if wrong.any() else 0} your ratio is "
            f"{ratio[wrong][:1].tolist()[0] if wrong.any() else 0:.4g}, not what the two "
            "gradients give there (a rerun of your experiment at your own points disagrees): "
            "compare |d/dlogit| of each loss, per example.",
        )

    def the_answer_is_read_from_the_curve():
        d, ratio, answer = state["d"], state["ratio"], state["answer"]
        order = np.argsort(d)
        crossing = float(np.interp(0.01, ratio[order], d[order]))
        expect(
            abs(answer - crossing) <= 0.05 * crossing,
            f"your answer {answer:.4g} is not where your own curve crosses a ratio of 1% "
            f"({crossing:.4g}): read the answer off your measurement.",
        )
        truth = 1.0 / 101.0
        expect(
            abs(answer - truth) <= 0.05 * truth,
            "that is where the *non-saturating* gradient is 1% of the saturating one; the "
            "question is the other way round."
            if abs(answer - 100 / 101) < 0.05
            else f"your answer {answer:.4g} is not D's probability at a ratio of 1% (accepted "
            "within 5%): sample your curve more finely around its 1% crossing.",
        )

    state: dict = {}
    cases = [
        returns_its_evidence,
        the_answer_is_a_probability,
        the_curve_is_a_measurement,
        the_answer_is_read_from_the_curve,
    ]
    return run_check("check_saturation", experiment, cases, quiet=quiet, task="saturation")
