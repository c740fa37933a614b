import pytest

from tutorial_lib import profiles


def test_environment_variable_picks_the_profile(monkeypatch):
    monkeypatch.setenv("TUTORIAL_PROFILE", "cpu")
    assert profiles.get_profile().name == "cpu"
    monkeypatch.setenv("TUTORIAL_PROFILE", " GPU ")
    assert profiles.get_profile().name == "gpu"


def test_argument_wins_over_environment(monkeypatch):
    monkeypatch.setenv("TUTORIAL_PROFILE", "gpu")
    assert profiles.get_profile("fast").name == "fast"


def test_default_without_gpu_is_cpu(monkeypatch):
    monkeypatch.delenv("TUTORIAL_PROFILE", raising=False)
    monkeypatch.setattr("tutorial_lib.device.gpu_names", lambda: [])
    assert profiles.get_profile().name == "cpu"
    monkeypatch.setattr("tutorial_lib.device.gpu_names", lambda: ["/physical_device:GPU:0"])
    assert profiles.get_profile().name == "gpu"


def test_unknown_profile_lists_the_choices(monkeypatch):
    monkeypatch.setenv("TUTORIAL_PROFILE", "turbo")
    with pytest.raises(profiles.UnknownProfileError, match="fast, cpu, gpu") as info:
        profiles.get_profile()
    assert "TUTORIAL_PROFILE" in str(info.value)


def test_profiles_grow_from_fast_to_gpu():
    fast, cpu, gpu = (profiles.PROFILES[n] for n in ("fast", "cpu", "gpu"))
    assert fast.train_examples < cpu.train_examples and gpu.train_examples is None
    assert fast.epochs <= cpu.epochs <= gpu.epochs
    assert fast.width <= cpu.width <= gpu.width
    assert fast.steps_per_epoch is not None  # the fast profile is capped in steps


def test_scaled_width_has_a_floor():
    fast = profiles.PROFILES["fast"]
    assert fast.scaled(256) == 64
    assert fast.scaled(8, minimum=4) == 4
