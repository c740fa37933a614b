"""Test-wide settings: the fast profile, offline data, no network, no display.

Notebook kernels started by nbval inherit these environment variables.
"""

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("TUTORIAL_PROFILE", "fast")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
if "TUTORIAL_DATA_DIR" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["TUTORIAL_DATA_DIR"] = str(_SHARED_DATA)

_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}
_real_connect = socket.socket.connect


def _local_only_connect(self, address):
    """Tests must never reach the internet: refuse any non-loopback connection."""
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL_HOSTS:
        raise OSError(f"tests may not use the network (tried to connect to {address[0]})")
    return _real_connect(self, address)


socket.socket.connect = _local_only_connect


@pytest.fixture
def no_data_dir(monkeypatch, tmp_path):
    """A TUTORIAL_DATA_DIR that exists but holds nothing; clears the loaders' caches."""
    from tutorial_lib import data

    monkeypatch.setenv("TUTORIAL_DATA_DIR", str(tmp_path))
    data.load_raw.cache_clear()
    data.load_shakespeare_text.cache_clear()
    yield tmp_path
    data.load_raw.cache_clear()
    data.load_shakespeare_text.cache_clear()


def pytest_ignore_collect(collection_path, config):
    """nbval runs exercise *solutions*; the learners' copies stop at their stubs."""
    if collection_path.suffix == ".ipynb" and collection_path.parent.name == "exercises":
        return not collection_path.name.endswith("_solution.ipynb")
    return None


def pytest_addoption(parser):
    parser.addoption(
        "--run-browser",
        action="store_true",
        help="also run the real-browser tests (JupyterLab and slides in headless Chromium)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-browser"):
        return
    skip = pytest.mark.skip(reason="real-browser test: run with --run-browser (make test does)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
