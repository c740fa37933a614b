"""Test-wide settings: the fast profile, offline data, no network, no display.

Notebook kernels started by nbval inherit these environment variables.
"""

import atexit
import copy
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TUTORIAL_PROFILE", "fast")
# The lessons load the fast profile's shipped runs and results, as a learner's switch on
# auto does (TUTORIAL_PRETRAINED=0 runs them training instead): every cell still runs;
# the training and the experiments were run by `pretrain --profile fast`, from the code
# as it is now (tests/test_shipped_stores.py), and each model's training is tested in
# its family's tests.
os.environ.setdefault("TUTORIAL_PRETRAINED", "auto")
# The inline backend: the lessons' kernels (which inherit this) put every plot into the
# cell's outputs, so a slide deck can be built from the very execution nbval checks.
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The test processes outnumber the cores (`make test`: three on two): one thread each for
# TensorFlow's and NumPy's arithmetic, so that no process's threads wait spinning for a
# core another process holds.
for _threads in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")
# The evaluation classifier's outputs for the test splits (tutorial_lib.stores.cache_dir):
# computed once per test session and shared by all its processes, never taken from an
# earlier session. The processes xdist starts inherit the folder named here.
if not os.environ.get("TUTORIAL_CACHE_DIR"):
    os.environ["TUTORIAL_CACHE_DIR"] = tempfile.mkdtemp(prefix="tutorial-test-cache-")
    atexit.register(shutil.rmtree, os.environ["TUTORIAL_CACHE_DIR"], ignore_errors=True)
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


@functools.cache
def _prepared(out: Path) -> bool:
    """The decks' folder with reveal.js in it, copied once per test process."""
    from tutorial_lib.course import slides

    return slides.prepare_folder(out)


class LessonDeck(pytest.Item):
    """A lesson's reveal.js deck, built from the outputs nbval just produced for its cells
    (one execution serves both): every slide its metadata promises, no errors or logs,
    and the plots in it."""

    def runtest(self):
        from tutorial_lib.course import slides

        cells = [i for i in self.session.items if i.parent is self.parent and i is not self]
        nb = copy.deepcopy(self.parent.nb)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        for cell, item in zip(code, cells, strict=True):
            cell.outputs = list(getattr(item, "test_outputs", None) or [])
        out = Path(self.config.rootpath) / "test-artifacts" / "decks"
        deck = slides.build_deck(nb, self.path.stem, out, offline=_prepared(out))
        html = deck.read_text(encoding="utf-8")
        assert slides.deck_slide_count(html) == slides.count_slides(self.parent.nb)
        assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html, "no errors, no logs"
        assert "Traceback (most recent call last)" not in html
        assert "<img" in html, "the executed plots are in the deck"
        assert "[pretrained]" not in html, "every shipped result loads (none trained again)"

    def reportinfo(self):
        return self.path, 0, f"{self.path.name}: slide deck"


def _with_lesson_decks(items):
    """Each lesson's cells, then its deck (an item of the same file: the same worker, the
    same kernel's outputs)."""
    result = []
    for index, item in enumerate(items):
        result.append(item)
        parent = item.parent
        last = index + 1 == len(items) or items[index + 1].parent is not parent
        if last and item.path.suffix == ".ipynb" and item.path.parent.name == "notebooks":
            result.append(LessonDeck.from_parent(parent, name="slide deck"))
    return result


# The test files that take longest, in the order they start (`make test` passes
# --no-loadscope-reorder, so the workers take files in this order, not xdist's own, which
# starts the files with most tests first and left the longest single test to the end):
# these, then the lessons and the solutions, then the many short files that fill the
# gaps, so that the workers finish together.
LONGEST_FIRST = (
    "tests/test_backends.py",
    "tests/test_nbgrader_roundtrip.py",
    "tests/test_diffusion.py",
    "tests/test_faults.py",
    "tests/test_browser.py",
    "tests/test_checkpoints.py",
    "tests/test_cli.py",
    "tests/test_transformer.py",
    "tests/test_flows.py",
    "tests/test_device.py",
    "tests/test_bench.py",
)


def _start_order(item) -> tuple:
    path = item.path.relative_to(item.config.rootpath).as_posix()
    if path in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(path))
    return ({"notebooks": 1, "exercises": 2}.get(item.path.parent.name, 3), 0)


FORKED_KERNEL = "tutorial-forked"
TEMPLATE_ENV = "TUTORIAL_KERNEL_TEMPLATE"  # where the template listens, for every worker
_FORKED_KERNELS_SCRIPT = str(Path(__file__).resolve().parent / "tests" / "forked_kernels.py")


def _may_run_notebooks(config) -> bool:
    """Whether this run's paths name a notebook or a folder that holds one."""
    for arg in config.args or config.getini("testpaths"):
        path = Path(config.invocation_params.dir, str(arg).split("::")[0])
        if path.suffix == ".ipynb" or (path.is_dir() and next(path.rglob("*.ipynb"), None)):
            return True
    return False


def pytest_configure(config):
    """The notebooks' kernels are forked from one process that has imported the package
    (tests/forked_kernels.py): the first process starts it, while the first tests run,
    and the test workers it starts (pytest-xdist) inherit its address."""
    if hasattr(config, "workerinput") or TEMPLATE_ENV in os.environ:
        return
    if os.environ.get("TUTORIAL_FORKED_KERNELS", "1") == "0" or not _may_run_notebooks(config):
        return
    folder = tempfile.mkdtemp(prefix="kernels-")
    path = os.path.join(folder, "template")
    argv = [sys.executable, _FORKED_KERNELS_SCRIPT, "serve", path]
    template = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    os.environ[TEMPLATE_ENV] = path

    def stop():
        template.kill()
        template.wait()
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(TEMPLATE_ENV, None)

    config.add_cleanup(stop)


def _use_forked_kernels(config) -> None:
    """nbval's kernels: launched through the template, each a kernel of its own."""
    from jupyter_client.kernelspec import KernelSpec
    from nbval import kernel

    argv = [sys.executable, _FORKED_KERNELS_SCRIPT, "launch", os.environ[TEMPLATE_ENV]]
    spec = KernelSpec(
        argv=[*argv, "-f", "{connection_file}"],
        display_name="Python 3 (forked)",
        language="python",
    )
    original = kernel.NbvalKernelspecManager.get_kernel_spec

    def get_kernel_spec(self, kernel_name):
        return spec if kernel_name == FORKED_KERNEL else original(self, kernel_name)

    kernel.NbvalKernelspecManager.get_kernel_spec = get_kernel_spec
    config.option.nbval_kernel_name = FORKED_KERNEL


def pytest_collection_modifyitems(config, items):
    items.sort(key=_start_order)  # stable: a file's tests keep their order
    items[:] = _with_lesson_decks(items)
    if TEMPLATE_ENV in os.environ and any(item.path.suffix == ".ipynb" for item in items):
        _use_forked_kernels(config)
    if config.getoption("--run-browser"):
        return
    skip = pytest.mark.skip(reason="real-browser test: run with --run-browser (make test does)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
