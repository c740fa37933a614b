"""The samplers' table: each sampler one class, found by name by the families' ``sample``
and the command line; a new sampler is one class more, and both take it."""

import numpy as np
import pytest

from tutorial_lib import checkpoints, cli, flow_matching, samplers


class MidpointSampler(samplers.Sampler):
    r"""A sampler the course does not ship: the midpoint method,
    :math:`x_{t+h} = x_t + h\, v\big(x_t + \tfrac h2 v(x_t, t),\, t + \tfrac h2\big)`."""

    name = "midpoint"
    process = "flow"
    evaluations_per_step = 2

    def __init__(self, steps: int):
        self.grid = samplers.time_grid(steps)

    @classmethod
    def from_model(cls, model, steps=None):
        return cls(steps or model.sample_steps)

    def times(self):
        return list(zip(self.grid[:-1], self.grid[1:], strict=True))

    def step(self, predict, x, t, t_next, rng=None):
        h = t_next - t
        half = x + 0.5 * h * predict(x, t)
        return (x + h * predict(half, t + 0.5 * h)).astype(np.float32)


@pytest.fixture
def midpoint(monkeypatch):
    """The table with the midpoint sampler registered, for this test only."""
    monkeypatch.setattr(samplers, "SAMPLERS", dict(samplers.SAMPLERS))
    return samplers.register(MidpointSampler)


SHIPPED_RUN = checkpoints.STORE / "fast" / "06b_flow_matching" / "flow_matching"


@pytest.fixture(scope="module")
def shipped_run():
    """The fast profile's flow-matching run, as the course ships it."""
    from tutorial_lib import runs

    return runs.load(SHIPPED_RUN, load_model=checkpoints.load_model)


def test_the_table_names_each_process_samplers():
    assert samplers.names("diffusion") == ("ddpm", "ddim")
    assert samplers.names("flow") == ("euler", "heun")
    for name, kind in samplers.SAMPLERS.items():
        assert kind.name == name and kind.process in samplers.PROCESSES
    with pytest.raises(ValueError, match="process must be one of"):

        @samplers.register
        class Nowhere(MidpointSampler):
            process = "teleport"


def test_make_gives_the_models_default_and_refuses_what_the_sampler_cannot_take(shipped_run):
    model = shipped_run.model
    assert type(samplers.make(model)).name == model.sampler
    assert isinstance(samplers.make(model, "heun", 3), samplers.HeunSampler)
    with pytest.raises(ValueError, match=r"choose one of \('euler', 'heun'\)"):
        samplers.make(model, "ddim")
    with pytest.raises(ValueError, match="no option eta .it takes no options"):
        samplers.make(model, "euler", eta=1.0)


def test_a_new_sampler_is_second_order_where_euler_is_first(midpoint):
    """dx/dt = x from x(0) = 1: halving h quarters the midpoint method's error."""

    def error(steps):
        end, _ = midpoint(steps).run(lambda x, t: x, np.ones((1, 1)), None)
        return abs(float(end[0, 0]) - np.e)

    assert error(10) / error(20) == pytest.approx(4.0, rel=0.1)


def test_a_new_sampler_samples_from_the_lessons_function(midpoint, shipped_run):
    model = shipped_run.model
    codes = flow_matching.sample_codes(model, 3, sampler="midpoint", steps=2)
    euler = flow_matching.sample_codes(model, 3, sampler="euler", steps=2)
    assert codes.shape == euler.shape == (3, *model.data_shape)
    assert np.all(np.isfinite(codes)) and not np.allclose(codes, euler)
    images = flow_matching.sample(model, 2, sampler="midpoint", steps=2)
    assert images.shape == (2, 28, 28, 1) and images.min() >= 0 and images.max() <= 1


# The shipped run keeps its weights, not its optimizer's state: Keras says so on loading.
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_a_new_sampler_is_a_choice_of_the_command_line(midpoint, tmp_path, capsys):
    argv = ["sample", "flow_matching", "--run", str(SHIPPED_RUN), "--num", "2"]
    out = tmp_path / "midpoint.npy"
    assert cli.main([*argv, "--sampler", "midpoint", "--steps", "2", "--out", str(out)]) == 0
    assert np.load(out).shape == (2, 28, 28, 1)
    with pytest.raises(SystemExit):  # not a sampler of this model's process
        cli.main([*argv, "--sampler", "ddim", "--out", str(out)])
    assert "invalid choice: 'ddim'" in capsys.readouterr().err
