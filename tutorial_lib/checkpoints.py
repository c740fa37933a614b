"""Shipped results of the lessons: load them instead of training.

Every lesson trains its models and runs its longer experiments through a
:class:`Lesson`::

    lesson = checkpoints.Lesson("03_gan", profile, pretrained=PRETRAINED)
    dcgan_run = lesson.train("gan", callbacks=[quality])        # a runs.Run
    collapse = lesson.experiment("mode_collapse", lambda: ...)  # a dict of results

One switch says what those calls do: the lesson's ``PRETRAINED`` variable, or
when it is ``None`` the environment variable ``TUTORIAL_PRETRAINED``:

* off (``False``, unset, ``0``): train and compute, as the lesson's code says;
* on (``True``, ``1``): load the shipped model or result instead, and stop with
  a clear error when it is missing or damaged;
* ``auto``: load when there is a shipped result for the profile in force, else
  say so in one line and train;
* ``record`` (``python -m tutorial_lib pretrain``): train and compute, and write
  every model, history and result into the store, with the lesson's record.

The store is ``tutorial_lib/pretrained/<profile>/<lesson>/``: ``record.json``
(every figure the lesson quotes: the run records of :mod:`tutorial_lib.runs`,
the experiments' results, the callbacks' histories, the machine and the
date), one folder per model (``model.keras`` in half precision, without the
optimizer's state, and ``history.csv``) and ``arrays.npz``. ``SHA256SUMS``
beside the lessons lists every file's checksum; a file that does not match
is damaged. ``auto`` checks the files of each model or result it loads, so one
damaged file retrains only what is in it (one notice per damaged file).

Recording writes a lesson into a staging folder (``<store>/.staging/<profile>/<lesson>``);
:func:`install_lesson` swaps it in, with its checksums, only once the whole lesson ran:
a recording that is killed or fails leaves the lesson's last version in place.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import math
import os
import shutil
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tutorial_lib import runs, safe_io, stores, training
from tutorial_lib.profiles import Profile, get_profile

PRETRAINED_ENV = "TUTORIAL_PRETRAINED"
STORE_ENV = stores.STORE_ENV
STORE = stores.PACKAGE_STORE
RECORD_FILE = "record.json"
ARRAYS_FILE = "arrays.npz"
CHECKSUMS_FILE = "SHA256SUMS"
PENDING_SUMS = "SHA256SUMS.pending"  # the checksums of a change being made (see commit_file)
STAGING_DIR = ".staging"
SPREAD_FILE = "spread.json"  # python -m tutorial_lib pretrain: figures over seeds
MODES = ("train", "load", "auto", "record")


class CheckpointError(RuntimeError):
    """A shipped checkpoint is missing or damaged; the message says what to do."""


def mode_of(pretrained: bool | str | None = None) -> str:
    """The mode the switch asks for: ``"train"``, ``"load"``, ``"auto"`` or ``"record"``.

    ``pretrained`` is the lesson's variable (True, False, "auto", "record");
    ``None`` defers to the ``TUTORIAL_PRETRAINED`` environment variable.
    """
    value = os.environ.get(PRETRAINED_ENV, "") if pretrained is None else pretrained
    if isinstance(value, bool):
        return "load" if value else "train"
    text = str(value).strip().lower()
    if text in ("", "0", "off", "false", "no", "train"):
        return "train"
    if text in ("1", "on", "true", "yes", "load"):
        return "load"
    if text in ("auto", "record"):
        return text
    raise ValueError(
        f"Unknown value {value!r} for the pretrained switch ({PRETRAINED_ENV}); "
        "use 1 (load the shipped models), 0 (train), auto (load if shipped, else train) "
        "or record (write the store, for `python -m tutorial_lib pretrain`)."
    )


def store_dir(profile: str) -> Path:
    """Where the shipped results of ``profile`` live (``TUTORIAL_PRETRAINED_DIR`` moves it)."""
    root = Path(os.environ[STORE_ENV]) if os.environ.get(STORE_ENV) else STORE
    return root / profile


def staging_dir(profile: str, lesson: str) -> Path:
    """Where a lesson of ``profile`` is recorded before :func:`install_lesson` swaps it in."""
    store = store_dir(profile)
    return store.parent / STAGING_DIR / store.name / lesson


# --------------------------------------------------------------------------
# Files: half-precision models, arrays, checksums
# --------------------------------------------------------------------------


def save_model(model, path: Path) -> Path:
    """Save ``model`` as a ``.keras`` file in half precision, without the optimizer's state.

    Float32 weights are stored as float16 (half the bytes, and they compress);
    Keras loads them back into float32 variables. A checkpoint is for using a
    trained model, not for training it further, so the optimizer's state stays out.
    A model that keeps a weight average beside its trained network (``ema_network``
    and ``network``: the denoisers of diffusion and flow matching) is saved with the
    average in both, since the average is what it samples with; LZMA compression
    then stores the repeated weights almost for free.
    """
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    full = path.with_name(f".{os.getpid()}.{path.stem}.full.keras")
    averaged = hasattr(model, "ema_network") and hasattr(model, "network")
    trained = model.network.get_weights() if averaged else None
    try:
        if averaged:
            model.network.set_weights(model.ema_network.get_weights())
        model.save(full)
    finally:
        if averaged:
            model.network.set_weights(trained)
    with zipfile.ZipFile(full) as source:
        members = {info.filename: source.read(info.filename) for info in source.infolist()}
    full.unlink()
    weights = io.BytesIO()
    with (
        h5py.File(io.BytesIO(members["model.weights.h5"]), "r") as src,
        h5py.File(weights, "w") as dst,
    ):
        _copy_half(src, dst)
    members["model.weights.h5"] = weights.getvalue()
    with safe_io.atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_LZMA) as target:
        for name, content in members.items():
            target.writestr(name, content)
    return path


def _copy_half(src, dst) -> None:
    """Copy an HDF5 group, float32 datasets as float16, optimizer groups left out."""
    import h5py

    for key, value in src.attrs.items():
        dst.attrs[key] = value
    for key in src:
        if "optimizer" in key:
            continue
        item = src[key]
        if isinstance(item, h5py.Group):
            _copy_half(item, dst.create_group(key))
        else:
            data = item[()]
            dst.create_dataset(
                key, data=data.astype(np.float16) if data.dtype == np.float32 else data
            )


def load_model(path: Path):
    """A model saved by :func:`save_model` (its optimizer starts afresh)."""
    import keras

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        return keras.models.load_model(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_checksums(root: Path) -> Path:
    """``SHA256SUMS`` of every file under ``root`` (one profile's store), written whole."""
    lines = [
        f"{sha256(path)}  {path.relative_to(root).as_posix()}"
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name not in (CHECKSUMS_FILE, PENDING_SUMS)
    ]
    target = safe_io.atomic_write_text(root / CHECKSUMS_FILE, "\n".join(lines) + "\n")
    (root / PENDING_SUMS).unlink(missing_ok=True)
    return target


def read_checksums(root: Path, name: str = CHECKSUMS_FILE) -> dict[str, str]:
    """``{relative path: sha256}`` of a checksum file in ``root`` ({} when there is none)."""
    path = root / name
    if not path.is_file():
        return {}
    pairs = (line.split("  ", 1) for line in path.read_text().splitlines() if "  " in line)
    return {rel: digest for digest, rel in pairs}


def _write_sums(root: Path, sums: dict[str, str], name: str) -> None:
    lines = [f"{sums[rel]}  {rel}" for rel in sorted(sums)]
    safe_io.atomic_write_text(root / name, "\n".join(lines) + "\n")


def commit(root: Path, change: Callable[[], None], sums: dict[str, str]) -> None:
    """Make ``change()`` (which writes files under ``root`` atomically) with the checksums
    ``sums`` in force after it, so that a kill at any moment leaves every file matching:
    the new checksums go to ``SHA256SUMS.pending`` first (a file matches either list while
    the change is made), then the change, then they replace ``SHA256SUMS``."""
    _write_sums(root, sums, PENDING_SUMS)
    change()
    os.replace(root / PENDING_SUMS, root / CHECKSUMS_FILE)


def commit_file(root: Path, relative: str, content: bytes) -> Path:
    """Write ``root/relative`` and its checksum in ``SHA256SUMS`` as one change."""
    path = root / relative
    sums = {**read_checksums(root), relative: hashlib.sha256(content).hexdigest()}
    commit(root, lambda: safe_io.atomic_write_bytes(path, content), sums)
    return path


def damaged(root: Path, files: list[Path]) -> dict[Path, str]:
    """What is wrong with each of ``files`` that is missing or does not match its checksum
    in ``SHA256SUMS`` (or in the pending checksums of a change being made)."""
    sums_path = root / CHECKSUMS_FILE
    if not sums_path.is_file():
        return {
            path: f"{sums_path} is missing: the shipped checkpoints are incomplete."
            for path in files
        }
    sums, pending = read_checksums(root), read_checksums(root, PENDING_SUMS)
    problems = {}
    for path in files:
        name = path.relative_to(root).as_posix()
        if not path.is_file():
            problems[path] = f"{path} is missing."
        elif sha256(path) not in (sums.get(name), pending.get(name)):
            problems[path] = (
                f"{path} is damaged (its checksum does not match {CHECKSUMS_FILE}): "
                "reinstall the package."
            )
    return problems


def verify(root: Path, files: list[Path]) -> None:
    """Raise :class:`CheckpointError` unless every one of ``files`` matches ``SHA256SUMS``."""
    problems = damaged(root, files)
    if problems:
        raise CheckpointError(next(iter(problems.values())))


def note_code(lesson: str, profile: str | Profile | None, digest: str) -> None:
    """Write into a lesson's staged record which code it was recorded from
    (``code_sha256``: :func:`tutorial_lib.course.notebook_tools.code_digest` of its notebook),
    before :func:`install_lesson` swaps it in."""
    path = staging_dir(get_profile(profile).name, lesson) / RECORD_FILE
    record = json.loads(path.read_text())
    record["code_sha256"] = digest
    safe_io.atomic_write_text(path, json.dumps(record, indent=1, allow_nan=False) + "\n")


def install_lesson(lesson: str, profile: str | Profile | None = None) -> Path:
    """Swap the lesson recorded in its staging folder into the store, with its checksums,
    in one step (:func:`tutorial_lib.safe_io.swap_in`): until then the lesson's last
    version stays in place and loads. Returns the lesson's folder in the store."""
    profile = get_profile(profile).name
    staging, store = staging_dir(profile, lesson), store_dir(profile)
    if not (staging / RECORD_FILE).is_file():
        raise CheckpointError(f"No recorded lesson {lesson} to install (looked in {staging}).")
    safe_io.remove_lock_files(staging)
    sums = {rel: d for rel, d in read_checksums(store).items() if not rel.startswith(f"{lesson}/")}
    for path in sorted(staging.rglob("*")):
        if path.is_file():
            sums[f"{lesson}/{path.relative_to(staging).as_posix()}"] = sha256(path)
    store.mkdir(parents=True, exist_ok=True)
    commit(store, lambda: safe_io.swap_in(staging, store / lesson), sums)
    return store / lesson


# --------------------------------------------------------------------------
# Results as files: JSON for numbers, npz for arrays, .keras for models
# --------------------------------------------------------------------------


def _to_json(value, folder: Path, arrays: dict, where: str):
    """A JSON-able copy of ``value``; models and arrays go to files, referenced by name."""
    import keras

    if isinstance(value, keras.Model):
        save_model(value, folder / f"{where}.keras")
        return {"__model__": f"{where}.keras"}
    if isinstance(value, np.ndarray) and value.ndim > 0:
        arrays[where] = value
        return {"__array__": where}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _to_json(v, folder, arrays, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v, folder, arrays, f"{where}.{i}") for i, v in enumerate(value)]
    return value


def _from_json(value, folder: Path, arrays):
    """The inverse of :func:`_to_json`."""
    if isinstance(value, dict):
        if set(value) == {"__model__"}:
            return load_model(folder / value["__model__"])
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _from_json(v, folder, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v, folder, arrays) for v in value]
    return value


def lookup(record: dict, path: str):
    """The value at a dotted ``path`` of a record (``runs.gan.frechet_distance``,
    ``experiments.mode_collapse.coverage.-1``: integers index lists; an underscore also
    stands for a space, ``experiments.sampling_steps.rows.3.Fréchet_distance``; a key with
    a dot of its own is found too, ``rows.0.leaning_left_(<_-0.2)``)."""
    value, parts = record, path.split(".")
    while parts:
        if isinstance(value, list):
            value, parts = value[int(parts[0])], parts[1:]
            continue
        value, parts = _step_into(value, parts, path)
    return value


def _step_into(value, parts: list[str], path: str):
    """The value under the first key of ``parts`` (or of its first few, joined by dots),
    and the parts left."""
    for end in range(1, len(parts) + 1):
        key = ".".join(parts[:end])
        for name in (key, key.replace("_", " ")):
            if isinstance(value, dict) and name in value:
                return value[name], parts[end:]
    raise KeyError(f"{path!r}: no {parts[0]!r} in the record")


# --------------------------------------------------------------------------
# A lesson's training cells
# --------------------------------------------------------------------------


class Lesson:
    """The training cells of one lesson, which train, load or record as the switch says.

    Args:
        name: the lesson's notebook name (``"03_gan"``).
        profile: the profile in force (default: from the environment or hardware).
        pretrained: the lesson's switch (see :func:`mode_of`); ``None`` reads
            ``TUTORIAL_PRETRAINED``.
    """

    def __init__(self, name: str, profile: str | Profile | None = None, *, pretrained=None):
        self.name = name
        self.profile = get_profile(profile)
        self.mode = mode_of(pretrained)
        self.folder = store_dir(self.profile.name) / name
        self._record: dict | None = None
        self._arrays = None
        self._intact: dict[Path, str | None] = {}  # file -> what is wrong with it (None: ok)
        self._said: set[str] = set()
        if self.mode != "record":
            with contextlib.suppress(OSError):  # a swap cut short: the old version back
                safe_io.recover(self.folder)
        else:
            self.folder = staging_dir(self.profile.name, name)
            self._clear_staging()
            self._record = {
                "lesson": name,
                "profile": self.profile.name,
                "date": datetime.date.today().isoformat(),
                "machine": runs.device.machine_description(),
                "runs": {},
                "experiments": {},
                "callbacks": {},
            }
            self._save_record()

    def _clear_staging(self) -> None:
        """An empty staging folder, but for the runs an interrupted recording left half
        trained (they resume: :func:`tutorial_lib.runs.train`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in self.folder.iterdir():
            if path.is_dir() and training.run_state(path) in ("training", "evaluate"):
                print(f"[pretrained] resuming the interrupted training in {path}")
            elif path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()

    def install(self) -> Path:
        """Swap what this lesson recorded into the store (:func:`install_lesson`)."""
        if self.mode != "record":
            raise CheckpointError("Only a recording lesson (pretrained='record') installs.")
        return install_lesson(self.name, self.profile)

    # -- the store ------------------------------------------------------------

    @property
    def record(self) -> dict:
        """Everything the store holds for this lesson (loaded on first use)."""
        if self._record is None:
            self._record = self._read(self.folder / RECORD_FILE, json.loads)
        return self._record

    def _read(self, path: Path, parse):
        try:
            return parse(path.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{path} is damaged ({error}).") from error

    def _arrays_file(self):
        if self._arrays is None:
            path = self.folder / ARRAYS_FILE
            if path.is_file():
                self._arrays = dict(np.load(path))
            else:
                self._arrays = {}
        return self._arrays

    def _save_record(self) -> None:
        # In the order the lesson built it: a dict of images plotted row by row after
        # loading keeps its rows in the order the lesson drew them.
        text = json.dumps(self._record, indent=1, allow_nan=False)
        safe_io.atomic_write_text(self.folder / RECORD_FILE, text + "\n")

    def _save_arrays(self, arrays: dict) -> None:
        if not arrays:
            return
        merged = {**self._arrays_file(), **arrays}
        with safe_io.atomic_path(self.folder / ARRAYS_FILE) as tmp:
            np.savez_compressed(tmp, **merged)
        self._arrays = merged

    def _check_files(self, files: list[Path]) -> None:
        """Raise :class:`CheckpointError` for the first of ``files`` that is missing or
        does not match its checksum (each file is checked once)."""
        unchecked = [path for path in files if path not in self._intact]
        if unchecked:
            problems = damaged(self.folder.parent, unchecked)
            self._intact.update({path: problems.get(path) for path in unchecked})
        for path in files:
            if self._intact[path]:
                raise CheckpointError(self._intact[path])

    def check(self) -> None:
        """Raise :class:`CheckpointError` unless every shipped file of the lesson is there
        and matches its checksum."""
        self._check_record()
        self._check_files([p for p in sorted(self.folder.rglob("*")) if p.is_file()])

    def _check_record(self) -> None:
        if not (self.folder / RECORD_FILE).is_file():
            raise CheckpointError(
                f"No shipped results of lesson {self.name} for the {self.profile.name} profile "
                f"(looked in {self.folder})."
            )
        if not (self.folder.parent / CHECKSUMS_FILE).is_file():
            raise CheckpointError(
                f"{self.folder.parent / CHECKSUMS_FILE} is missing: the shipped checkpoints "
                "are incomplete."
            )
        self._check_files([self.folder / RECORD_FILE])

    def files_of(self, key: str) -> list[Path]:
        """The files the shipped result ``key`` loads from: the record, its run folder, the
        models and the arrays file its results and callbacks refer to."""
        record = self.record
        stored = [record["experiments"].get(key), record["callbacks"].get(key)]
        files = [self.folder / RECORD_FILE]
        if key in record["runs"]:
            files += [p for p in sorted((self.folder / key).rglob("*")) if p.is_file()]
        models, arrays = _references(stored)
        files += [self.folder / name for name in sorted(models)]
        if arrays:
            files.append(self.folder / ARRAYS_FILE)
        return files

    def _use_store(self, key: str) -> bool:
        """Load ``key`` from the store (True), or compute it (False), as the mode says.

        Only the files of ``key`` must be intact (:meth:`files_of`): on ``auto`` a damaged
        file retrains what is in it, and says so once."""
        if self.mode in ("train", "record"):
            return False
        try:
            self._check_record()
            record = self.record
            if key not in record["runs"] and key not in record["experiments"]:
                raise CheckpointError(
                    f"No shipped result '{key}' of lesson {self.name} for the "
                    f"{self.profile.name} profile."
                )
            self._check_files(self.files_of(key))
            return True
        except CheckpointError as error:
            if self.mode == "load":
                raise CheckpointError(f"{error} Or set PRETRAINED = False to train here.") from None
            if str(error) not in self._said:  # one notice per damaged file
                self._said.add(str(error))
                print(f"[pretrained] {error} Training instead.")
            return False

    # -- training cells ---------------------------------------------------------

    def train(self, model_name: str, *, key: str | None = None, callbacks=None, **kwargs):
        """:func:`tutorial_lib.runs.train` of ``model_name``, or its shipped run.

        ``key`` names the run in the store (default: the model name). Callbacks
        that can (:class:`tutorial_lib.training.SampleGrid`,
        :class:`tutorial_lib.metrics.QualityHistory`) are given back what they
        recorded, so every later cell runs unchanged.
        """
        key = key or model_name
        callbacks = list(callbacks or [])
        if self._use_store(key):
            try:
                run = runs.load(self.folder / key, load_model=load_model)
            except training.RunError as error:
                raise CheckpointError(f"Shipped run '{key}' of {self.name}: {error}") from error
            saved = self.record["callbacks"].get(key, [])
            for callback, state in zip(callbacks, saved, strict=False):
                if hasattr(callback, "from_checkpoint"):
                    callback.from_checkpoint(_from_json(state, self.folder, self._arrays_file()))
            return run
        if self.mode != "record":
            return runs.train(model_name, self.profile, callbacks=callbacks, **kwargs)
        run = runs.train(
            model_name, self.profile, callbacks=callbacks, out_dir=self.folder / key, **kwargs
        )
        self._shrink_run(self.folder / key)
        arrays: dict = {}
        self._record["runs"][key] = run.record
        self._record["callbacks"][key] = [
            _to_json(cb.to_checkpoint(), self.folder, arrays, f"{key}.callback{i}")
            if hasattr(cb, "to_checkpoint")
            else None
            for i, cb in enumerate(callbacks)
        ]
        self._save_arrays(arrays)
        self._save_record()
        return run

    @staticmethod
    def _shrink_run(folder: Path) -> None:
        """Half-precision models without optimizer state; no backups, no pictures; no
        stages trained on the way (a latent model holds the decoder it samples with)."""
        safe_io.remove_lock_files(folder)
        for stage in folder.glob(f"*/{training.MODEL_FILE}"):
            shutil.rmtree(stage.parent)
        for path in folder.rglob(training.MODEL_FILE):
            save_model(load_model(path), path)
        for leftover in folder.rglob("*"):
            if leftover.is_dir() and leftover.name == "backup":
                shutil.rmtree(leftover)
        for name in (training.SAMPLES_FILE, training.SAMPLES_TEXT_FILE):
            (folder / name).unlink(missing_ok=True)

    def experiment(self, key: str, compute: Callable[[], dict]) -> dict:
        """``compute()``, or its shipped results: a dict whose values may be models,
        arrays, numbers, strings, lists and dicts of those."""
        if self._use_store(key):
            stored = self.record["experiments"][key]
            return _from_json(stored, self.folder, self._arrays_file())
        results = compute()
        if self.mode == "record":
            arrays: dict = {}
            self._record["experiments"][key] = _to_json(results, self.folder, arrays, key)
            self._save_arrays(arrays)
            self._save_record()
        return results

    def note(self, key: str, figures: dict) -> dict:
        """Keep ``figures`` (numbers a cell just measured, cheap to measure again) in the
        record under ``experiments.key`` when recording, so the prose can quote them;
        in every mode, give them back unchanged."""
        if self.mode == "record":
            arrays: dict = {}
            self._record["experiments"][key] = _to_json(figures, self.folder, arrays, key)
            self._save_arrays(arrays)
            self._save_record()
        return figures

    def figure(self, path: str):
        """The recorded value at ``path`` (see :func:`lookup`)."""
        return lookup(self.record, path)


def _references(value, models=None, arrays=None) -> tuple[set, set]:
    """The model files and array names a stored result refers to (see :func:`_to_json`)."""
    models = set() if models is None else models
    arrays = set() if arrays is None else arrays
    if isinstance(value, dict):
        if set(value) == {"__model__"}:
            models.add(value["__model__"])
        elif set(value) == {"__array__"}:
            arrays.add(value["__array__"])
        else:
            for item in value.values():
                _references(item, models, arrays)
    elif isinstance(value, list):
        for item in value:
            _references(item, models, arrays)
    return models, arrays


def shipped_record(lesson: str, profile: str | Profile | None = None) -> dict | None:
    """The shipped record of ``lesson`` for ``profile`` (another lesson's figures, to
    compare with), or None when there is none."""
    return _json_or_none(store_dir(get_profile(profile).name) / lesson / RECORD_FILE)


def shipped_spread(profile: str | Profile | None = None) -> dict | None:
    """The spread over seeds that ``pretrain`` ships for ``profile``: per lesson and run
    key, each headline figure over the seeds, the lesson's own run first
    (``spread["03_gan"]["gan"]["frechet_distance"]``), or None when there is none."""
    return _json_or_none(store_dir(get_profile(profile).name) / SPREAD_FILE)


def _json_or_none(path: Path):
    """The JSON in ``path``, or None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
