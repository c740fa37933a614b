"""Where the stores of pretrained results live (light: the command line's parser reads it).

* the package's own store, ``tutorial_lib/pretrained/`` (what the lessons ship with);
* the folder ``TUTORIAL_PRETRAINED_DIR`` names (the lessons load from there instead);
* where ``python -m tutorial_lib pretrain`` writes when not told: a per-user data
  folder, never the installed package (:func:`default_root`).

And the per-user cache of results worth keeping between sessions (:func:`cache_dir`).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_STORE = Path(__file__).resolve().parent / "pretrained"
STORE_ENV = "TUTORIAL_PRETRAINED_DIR"
CACHE_DIR_ENV = "TUTORIAL_CACHE_DIR"


def default_root() -> Path:
    """Where ``pretrain`` writes when not told: ``$XDG_DATA_HOME/genai-notebooks/pretrained``
    (by default under ``~/.local/share``). Lessons load it with ``TUTORIAL_PRETRAINED_DIR``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "genai-notebooks" / "pretrained"


def cache_dir() -> Path:
    """Where results worth keeping between sessions go (the evaluation classifier's
    outputs for a test split, :func:`tutorial_lib.metrics.classifier_accuracy`): the folder
    ``TUTORIAL_CACHE_DIR`` names, else ``$XDG_CACHE_HOME/genai-notebooks`` (by default
    under ``~/.cache``). Deleting it loses nothing but the time to compute them again."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "genai-notebooks"


def cached_arrays(name: str, digest: str, compute, valid=None) -> dict:
    """``compute()``, a dict of NumPy arrays, kept in :func:`cache_dir` as
    ``{name}_{digest}.npz`` and read from there next time. ``digest`` must change with
    whatever the arrays depend on (weights, data, code), so an old copy is never read
    against new inputs. A copy that cannot be read, or that ``valid(arrays)`` rejects,
    is computed again; one that cannot be written (a read-only or full disk) only means
    computing it again next time. Written atomically."""
    import contextlib
    import io
    import zipfile

    import numpy as np

    from tutorial_lib import safe_io

    path = cache_dir() / f"{name}_{digest[:16]}.npz"
    damaged = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
    with contextlib.suppress(*damaged), np.load(path) as stored:
        arrays = {key: stored[key] for key in stored.files}
        if valid is None or valid(arrays):
            return arrays
    arrays = compute()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with contextlib.suppress(OSError):
        safe_io.atomic_write_bytes(path, buffer.getvalue())
    return arrays


def add_store_options(parser) -> None:
    """``--out DIR`` or ``--into-package``: where ``pretrain`` writes its stores."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"folder of the stores (default: {default_root()}; the lessons load it "
        f"with {STORE_ENV}=DIR)",
    )
    where.add_argument(
        "--into-package",
        action="store_true",
        help=f"write the package's own store ({PACKAGE_STORE}), which the lessons ship with",
    )


def root_of(args) -> Path:
    """The folder of the stores that the options name."""
    return PACKAGE_STORE if args.into_package else (args.out or default_root())
