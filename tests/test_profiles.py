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
    monkeypatch.setattr(profiles, "sees_a_gpu", lambda: False)
    assert profiles.get_profile().name == "cpu"
    monkeypatch.setattr(profiles, "sees_a_gpu", lambda: True)
    assert profiles.get_profile().name == "gpu"


def test_unknown_profile_lists_the_choices(monkeypatch):
    monkeypatch.setenv("TUTORIAL_PROFILE", "turbo")
    with pytest.raises(profiles.UnknownProfileError, match="fast, cpu, gpu") as info:
        profiles.get_profile()
    assert "TUTORIAL_PROFILE" in str(info.value)


def test_profiles_grow_from_fast_to_gpu():
    fast, cpu, gpu = (profiles.PROFILES[n] for n in ("fast", "cpu", "gpu"))
    assert fast.test_examples < cpu.test_examples and gpu.test_examples is None
    assert fast.eval_samples < cpu.eval_samples < gpu.eval_samples
    assert fast.steps_per_epoch is not None  # the fast profile is capped in steps
    assert cpu.steps_per_epoch is None and gpu.steps_per_epoch is None


def test_a_profile_object_passes_through():
    assert profiles.get_profile(profiles.PROFILES["cpu"]) is profiles.PROFILES["cpu"]
