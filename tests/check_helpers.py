"""Pieces shared by the tests of the exercise checks (tests/test_checks_*.py)."""

from tutorial_lib.checks import FAILED


def stub(*args, **kwargs):
    """A learner's function before they write it, as the exercise notebooks hand it out."""
    raise NotImplementedError("Task: write this function.")


def expect_failure(result, *fragments):
    """The check failed, and its message holds every one of ``fragments``."""
    assert result.status == FAILED, result
    for fragment in fragments:
        assert fragment in result.message, result.message
