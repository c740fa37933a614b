"""Data sets of the series: MNIST, Fashion-MNIST and Tiny Shakespeare.

Where the data comes from:

* By default, the real download: Keras's own loaders for MNIST and
  Fashion-MNIST, and ``keras.utils.get_file`` for Tiny Shakespeare. All three
  land in the Keras cache (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``),
  so after the first run everything works offline.
* When the environment variable ``TUTORIAL_DATA_DIR`` names a folder laid out
  as ``mnist/``, ``fashion-mnist/`` (the four gzipped IDX files each) and
  ``tinyshakespeare/input.txt``, the loaders read from it and never download.
  Tests and CI use this.

Every array is checked against the SHA-256 of the original decoded data, so a
truncated or altered file gives a clear :class:`DataCorruptError` instead of
silently wrong results; a missing one gives :class:`DataNotFoundError`.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import os
import zlib
from pathlib import Path

import keras
import numpy as np

DATA_DIR_ENV = "TUTORIAL_DATA_DIR"

IMAGE_DATASETS = ("mnist", "fashion_mnist")
# Two ways to turn grey pixels into the {0, 1} pixels of a Bernoulli likelihood: a threshold
# at 0.5, or a draw per pixel with its grey value as the probability of 1 (the literature's
# "stochastically binarised MNIST", e.g. the IWAE paper's).
BINARIZATIONS = ("threshold", "stochastic")
# The seed of the one fixed stochastic binarisation of each split (load_images).
STOCHASTIC_SEEDS = {"train": 2008, "test": 2016}
# Every image data set here: 28x28 grey pixels, one channel, ten classes.
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10

# Folder names inside TUTORIAL_DATA_DIR.
_FOLDERS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}

# SHA-256 of each decoded uint8 array's raw bytes (array.tobytes()).
_ARRAY_SHA256 = {
    "mnist": {
        "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
        "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
    },
    "fashion_mnist": {
        "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "y_train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
        "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "y_test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
    },
}

CLASS_NAMES = {
    "mnist": [str(digit) for digit in range(10)],
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}

SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


class DataError(RuntimeError):
    """A data set could not be loaded; the message says which file and what to do."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data file is missing."""


class DataCorruptError(DataError):
    """A data file is present but its content is not the original data."""


def data_dir() -> Path | None:
    """The folder named by ``TUTORIAL_DATA_DIR``, or None to use the Keras cache."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def check_dataset_name(dataset: str) -> str:
    """The canonical name (``mnist`` or ``fashion_mnist``) of an image data set, or a
    ValueError listing the choices."""
    key = dataset.strip().lower().replace("-", "_")
    if key not in IMAGE_DATASETS:
        raise ValueError(
            f"Unknown image data set {dataset!r}; choose one of: {', '.join(IMAGE_DATASETS)}."
        )
    return key


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fix_local(dataset: str) -> str:
    folder = data_dir() / _FOLDERS[dataset]
    return (
        f"Fix: put the original four gzipped IDX files ({', '.join(_IDX_FILES.values())}) "
        f"in {folder}, or unset {DATA_DIR_ENV} to download {dataset} into the Keras cache."
    )


def _read_idx(path: Path, dataset: str) -> np.ndarray:
    """Decode one gzipped IDX file (the MNIST file format) into a uint8 array.

    The header is a big-endian magic number whose last byte is the number of
    dimensions, then one 4-byte size per dimension, then the raw uint8 data.
    """
    if not path.is_file():
        raise DataNotFoundError(f"{dataset}: data file {path} not found. {_fix_local(dataset)}")
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataCorruptError(
            f"{dataset}: {path} is not a readable gzip file ({error}). {_fix_local(dataset)}"
        ) from error
    ndim = raw[3] if len(raw) >= 4 else 0
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08" or ndim not in (1, 3):
        raise DataCorruptError(
            f"{dataset}: {path} does not start with an IDX header of uint8 data. {_fix_local(dataset)}"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(shape)):
        raise DataCorruptError(
            f"{dataset}: {path} is truncated or padded: its header promises shape {shape} "
            f"({int(np.prod(shape))} bytes) but it holds {len(body)} bytes. {_fix_local(dataset)}"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _verify(arrays: dict[str, np.ndarray], dataset: str, where: str, fix: str) -> None:
    for key, array in arrays.items():
        expected = _ARRAY_SHA256[dataset][key]
        actual = _sha256(np.ascontiguousarray(array, dtype=np.uint8).tobytes())
        if actual != expected:
            raise DataCorruptError(
                f"{dataset}: {key} read from {where} is not the original data "
                f"(sha256 {actual[:16]}..., expected {expected[:16]}...). {fix}"
            )


def _load_from_dir(dataset: str) -> dict[str, np.ndarray]:
    folder = data_dir() / _FOLDERS[dataset]
    arrays = {}
    for key, name in _IDX_FILES.items():
        arrays[key] = _read_idx(folder / name, dataset)
        # Checked one file at a time, so the message names the faulty file.
        _verify({key: arrays[key]}, dataset, str(folder / name), _fix_local(dataset))
    return arrays


def _load_from_keras(dataset: str) -> dict[str, np.ndarray]:
    import keras

    loader = {"mnist": keras.datasets.mnist, "fashion_mnist": keras.datasets.fashion_mnist}[dataset]
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"
    cached = cache / ("mnist.npz" if dataset == "mnist" else "fashion-mnist")
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as error:  # Keras raises plain Exception on a failed download
        if cached.exists():  # Keras deletes a copy that fails its checksum: this one passed
            raise DataCorruptError(  # none (Fashion-MNIST has none) and cannot be read
                f"{dataset}: the copy in the Keras cache ({cached}) cannot be read "
                f"({type(error).__name__}: {error}). Fix: delete {cached} and run again with "
                "internet access to download a fresh one, or set "
                f"{DATA_DIR_ENV} to a folder holding {_FOLDERS[dataset]}/ with the four "
                "gzipped IDX files."
            ) from error
        raise DataNotFoundError(
            f"{dataset}: could not load it from the Keras cache ({cache}) nor download it "
            f"({type(error).__name__}: {error}). Fix: connect to the internet once so Keras "
            f"caches it, or set {DATA_DIR_ENV} to a folder holding {_FOLDERS[dataset]}/ "
            "with the four gzipped IDX files."
        ) from error
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    fix = (
        f"Fix: delete the cached copy in {cache} ({'mnist.npz' if dataset == 'mnist' else 'fashion-mnist/'}) "
        "and run again to download a fresh one."
    )
    _verify(arrays, dataset, f"the Keras cache in {cache}", fix)
    return arrays


@functools.lru_cache(maxsize=4)
def load_raw(dataset: str = "mnist") -> dict[str, np.ndarray]:
    """All four arrays of an image data set, as stored: uint8, verified.

    Returns a dict with ``x_train`` (60000, 28, 28), ``y_train`` (60000,),
    ``x_test`` (10000, 28, 28) and ``y_test`` (10000,). Cached per process.
    """
    dataset = check_dataset_name(dataset)
    arrays = _load_from_dir(dataset) if data_dir() is not None else _load_from_keras(dataset)
    for array in arrays.values():
        array.setflags(write=False)  # shared by every caller: keep it unchanged
    return arrays


def binarization_of(binarize: bool | str | None) -> str | None:
    """The binarisation ``binarize`` asks for: None (grey pixels), ``"threshold"`` (also
    for True) or ``"stochastic"``; anything else is a ValueError naming the choices."""
    if binarize is None or binarize is False:
        return None
    if binarize is True:
        return "threshold"
    if binarize not in BINARIZATIONS:
        raise ValueError(
            f"Unknown binarization {binarize!r}; choose one of {', '.join(BINARIZATIONS)} "
            "(or False for grey pixels)."
        )
    return binarize


def binarize_stochastic(x: np.ndarray, seed: int) -> np.ndarray:
    """Each pixel 1 with probability its grey value in [0, 1], else 0: one draw, fixed by
    ``seed`` (float32, the shape of ``x``). The first ``n`` images get the same draw
    whatever follows them (uniforms are drawn image after image)."""
    uniforms = np.random.default_rng(seed).random(np.shape(x), dtype=np.float32)
    return (uniforms < x).astype(np.float32)


def load_images(
    dataset: str = "mnist",
    split: str = "train",
    *,
    limit: int | None = None,
    binarize: bool | str = False,
    as_uint8: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split.

    Args:
        dataset: ``"mnist"`` or ``"fashion_mnist"``.
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        limit: keep only the first ``limit`` examples (``None``: all of them).
        binarize: map pixels to {0, 1} for a Bernoulli likelihood: ``True`` or
            ``"threshold"``, a threshold at 0.5 (as in the VAE lesson);
            ``"stochastic"``, each pixel 1 with probability its grey value, in one
            draw fixed per split (:data:`STOCHASTIC_SEEDS`), so the test images are
            the same every time. (Training draws afresh for every batch:
            :func:`image_dataset` with ``binarize="stochastic"``.)
        as_uint8: return the stored uint8 pixels, shape (N, 28, 28), unscaled.

    Returns:
        ``(x, y)``: ``x`` float32 of shape (N, 28, 28, 1) in [0, 1] (or uint8,
        see ``as_uint8``), ``y`` int64 labels of shape (N,).
    """
    if split not in ("train", "test"):
        raise ValueError(f"Unknown split {split!r}; choose 'train' or 'test'.")
    how = binarization_of(binarize)
    arrays = load_raw(dataset)
    x, y = arrays[f"x_{split}"][:limit], arrays[f"y_{split}"][:limit].astype(np.int64)
    if as_uint8:
        return x.copy(), y
    x = x.astype(np.float32)[..., None] / 255.0
    if how == "threshold":
        x = (x > 0.5).astype(np.float32)
    elif how == "stochastic":
        x = binarize_stochastic(x, STOCHASTIC_SEEDS[split])
    return x, y


def check_data() -> list[dict]:
    """Try every data set once; a row per data set with ``ok`` and a message.

    Used by the setup notebook to tell a learner, in plain words, what is
    missing and how to fix it.
    """
    source = f"{DATA_DIR_ENV}={data_dir()}" if data_dir() else "Keras cache / download"
    rows = []
    for name in (*IMAGE_DATASETS, "tinyshakespeare"):
        try:
            if name == "tinyshakespeare":
                text = load_shakespeare_text()
                detail = f"{len(text):,} characters"
            else:
                arrays = load_raw(name)
                detail = f"{len(arrays['x_train']):,} train / {len(arrays['x_test']):,} test images"
            rows.append({"dataset": name, "ok": True, "source": source, "message": detail})
        except DataError as error:
            rows.append({"dataset": name, "ok": False, "source": source, "message": str(error)})
    return rows


# --------------------------------------------------------------------------
# Tiny Shakespeare: characters as tokens
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def load_shakespeare_text() -> str:
    """The Tiny Shakespeare corpus as one string (1,115,394 characters), verified."""
    folder = data_dir()
    if folder is not None:
        path = folder / "tinyshakespeare" / "input.txt"
        fix = (
            f"Fix: put the char-rnn input.txt at {path}, or unset {DATA_DIR_ENV} "
            "to download it into the Keras cache."
        )
        if not path.is_file():
            raise DataNotFoundError(f"tinyshakespeare: data file {path} not found. {fix}")
    else:
        import keras

        try:
            path = Path(
                keras.utils.get_file(
                    "tinyshakespeare.txt", origin=SHAKESPEARE_URL, file_hash=SHAKESPEARE_SHA256
                )
            )
        except Exception as error:  # download failure or hash mismatch
            raise DataNotFoundError(
                f"tinyshakespeare: could not load it from the Keras cache nor download it from "
                f"{SHAKESPEARE_URL} ({type(error).__name__}: {error}). Fix: connect to the internet "
                f"once, or set {DATA_DIR_ENV} to a folder holding tinyshakespeare/input.txt."
            ) from error
        fix = f"Fix: delete {path} and run again to download a fresh copy."
    raw = path.read_bytes()
    if _sha256(raw) != SHAKESPEARE_SHA256:
        raise DataCorruptError(
            f"tinyshakespeare: {path} is not the original corpus "
            f"(sha256 {_sha256(raw)[:16]}..., expected {SHAKESPEARE_SHA256[:16]}...). {fix}"
        )
    return raw.decode("utf-8")


@dataclasses.dataclass(frozen=True)
class CharVocab:
    """A character vocabulary: token id ``i`` is the ``i``-th character of ``chars``."""

    chars: str

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        """The sorted set of characters that occur in ``text``."""
        return cls("".join(sorted(set(text))))

    @property
    def size(self) -> int:
        return len(self.chars)

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {char: i for i, char in enumerate(self.chars)}

    def encode(self, text: str) -> np.ndarray:
        """Token ids (int32) of ``text``; every character must be in the vocabulary."""
        try:
            return np.array([self._index[char] for char in text], dtype=np.int32)
        except KeyError as error:
            raise ValueError(
                f"Character {error.args[0]!r} is not in the vocabulary of {self.size} "
                f"characters: {self.chars!r}"
            ) from None

    def decode(self, ids) -> str:
        """The text of a sequence of token ids."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(
                f"Token ids must lie in [0, {self.size}); got {ids.min()}..{ids.max()}."
            )
        return "".join(self.chars[i] for i in ids)


@dataclasses.dataclass(frozen=True)
class TextData:
    """Tiny Shakespeare as token ids: the first 90% to train on, the last 10% to validate."""

    train: np.ndarray
    val: np.ndarray
    vocab: CharVocab


def load_shakespeare(val_fraction: float = 0.1) -> TextData:
    """Tiny Shakespeare encoded with its character vocabulary (65 characters).

    The split is by position, not at random: the validation text is the last
    ``val_fraction`` of the corpus, so no window straddles both sets.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1); got {val_fraction}.")
    text = load_shakespeare_text()
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    cut = int(len(ids) * (1.0 - val_fraction))
    return TextData(train=ids[:cut], val=ids[cut:], vocab=vocab)


# --------------------------------------------------------------------------
# Batches for training: a tf.data pipeline on TensorFlow, NumPy on JAX and PyTorch
# --------------------------------------------------------------------------


def image_dataset(
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    targets: str = "labels",
    drop_remainder: bool = False,
    repeat: bool = False,
    binarize: str | None = None,
):
    """Batches of images for ``model.fit``: shuffled, batched, binarised.

    On TensorFlow a ``tf.data`` pipeline (cache, shuffle, batch, binarise, prefetch); on
    JAX and PyTorch the same batches from NumPy (:class:`ArrayBatches`), so those
    backends need no TensorFlow.

    Args:
        x: images, shape (N, 28, 28, 1).
        y: labels, shape (N,), or None.
        batch_size: examples per batch.
        shuffle: reshuffle every epoch (with ``seed`` for reproducibility).
        targets: what each element's second part is: ``"labels"`` gives
            ``(x, y)``, ``"inputs"`` gives ``(x, x)`` (autoencoders),
            ``"none"`` gives ``x`` alone (GANs, diffusion).
        drop_remainder: drop a last, smaller batch (keeps shapes static).
        repeat: loop forever (for training with a fixed ``steps_per_epoch``).
        binarize: ``None`` (the images as given), ``"threshold"`` (each batch's pixels
            above 0.5 become 1) or ``"stochastic"``: every batch draws its pixels afresh,
            1 with probability the grey value, so no two epochs see the same binary
            images (``seed`` seeds the draws).
    """
    how = binarization_of(binarize)
    if targets == "labels":
        if y is None:
            raise ValueError("targets='labels' needs y; pass labels or use targets='none'.")
        elements = (x, y)
    elif targets == "inputs":
        elements = (x, x)
    elif targets == "none":
        elements = x
    else:
        raise ValueError(f"targets must be 'labels', 'inputs' or 'none'; got {targets!r}.")
    if keras.backend.backend() != "tensorflow":
        return ArrayBatches(
            elements,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            targets=targets,
            drop_remainder=drop_remainder,
            repeat=repeat,
            binarize=how,
        )
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(elements).cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if how == "threshold":
        ds = ds.map(lambda *batch: _binarized(batch, targets, batch[0] > 0.5))
    elif how == "stochastic":
        # One key per batch, from a stream that differs at every pass over the data, so a
        # new epoch (a new iterator) draws new pixels too.
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

        def draw(batch, key):
            batch = batch if isinstance(batch, tuple) else (batch,)
            x, pair = batch[0], tf.stack([key, tf.constant(seed, tf.int64)])
            uniforms = tf.random.stateless_uniform(tf.shape(x), seed=pair, dtype=x.dtype)
            return _binarized(batch, targets, uniforms < x)

        ds = tf.data.Dataset.zip((ds, keys)).map(draw)
    return ds.prefetch(tf.data.AUTOTUNE)


def _binarized(batch: tuple, targets: str, ones):
    """One batch with its images (the first part) replaced by the 0/1 pixels ``ones``
    (booleans); an autoencoder's targets (``targets="inputs"``) are the same binary
    images, labels stay as they are."""
    import tensorflow as tf

    binary = tf.cast(ones, batch[0].dtype)
    if targets == "none":
        return binary
    return (binary, binary) if targets == "inputs" else (binary, batch[1])


class ArrayBatches(keras.utils.PyDataset):
    """Batches of arrays from NumPy alone (the JAX and PyTorch backends): the batches of
    :func:`image_dataset` and :func:`text_windows` without TensorFlow.

    Every pass over the data (an epoch, or a lap of a repeating stream) takes its own
    order, drawn from ``seed`` and the pass's number, so a run is reproducible and two
    epochs differ; a stochastically binarised batch draws its pixels from the same
    numbers and the batch's place.
    """

    def __init__(
        self,
        elements,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        targets: str,
        drop_remainder: bool,
        repeat: bool,
        binarize: str | None,
    ):
        super().__init__()
        self.parts = elements if isinstance(elements, tuple) else (elements,)
        self.size, self.batch_size = len(self.parts[0]), int(batch_size)
        self.shuffle, self.seed, self.targets = shuffle, int(seed), targets
        self.repeat, self.binarize = repeat, binarize
        whole, rest = divmod(self.size, self.batch_size)
        self.per_pass = whole if drop_remainder or rest == 0 else whole + 1
        if self.per_pass == 0:
            raise ValueError(
                f"{self.size} examples make no batch of {self.batch_size} with drop_remainder."
            )
        self.epoch = 0
        self._order = (None, None)

    @property
    def num_batches(self):
        return None if self.repeat else self.per_pass

    def __len__(self):
        return self.per_pass

    def on_epoch_end(self):
        self.epoch += 1

    def order(self, lap: int) -> np.ndarray:
        """The examples' order in pass number ``lap``."""
        if self._order[0] != lap:
            rng = np.random.default_rng([self.seed, lap])
            self._order = (
                lap,
                rng.permutation(self.size) if self.shuffle else np.arange(self.size),
            )
        return self._order[1]

    def __getitem__(self, index):
        lap, place = divmod(index, self.per_pass) if self.repeat else (self.epoch, index)
        picked = self.order(lap)[place * self.batch_size : (place + 1) * self.batch_size]
        batch = tuple(part[picked] for part in self.parts)
        if self.binarize == "threshold":
            ones = batch[0] > 0.5
        elif self.binarize == "stochastic":
            rng = np.random.default_rng([self.seed, lap, place, 1])
            ones = rng.random(batch[0].shape, dtype=np.float32) < batch[0]
        else:
            return batch if len(batch) > 1 else batch[0]
        binary = ones.astype(batch[0].dtype)
        if self.targets == "none":
            return binary
        return (binary, binary) if self.targets == "inputs" else (binary, batch[1])


def text_windows(
    ids: np.ndarray,
    *,
    seq_len: int,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
):
    """Next-character training pairs: ``x = ids[i : i+seq_len]``, ``y = ids[i+1 : i+seq_len+1]``.

    Windows start every ``seq_len`` characters (no overlap), batches are full.
    """
    if len(ids) < seq_len + 1:
        raise ValueError(f"Need at least seq_len + 1 = {seq_len + 1} tokens; got {len(ids)}.")
    if keras.backend.backend() != "tensorflow":
        n = len(ids) // (seq_len + 1)
        chunks = np.asarray(ids[: n * (seq_len + 1)]).reshape(n, seq_len + 1)
        return ArrayBatches(
            (chunks[:, :-1], chunks[:, 1:]),
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            targets="labels",
            drop_remainder=True,
            repeat=False,
            binarize=None,
        )
    import tensorflow as tf

    chunks = tf.data.Dataset.from_tensor_slices(ids).batch(seq_len + 1, drop_remainder=True)
    ds = chunks.map(lambda chunk: (chunk[:-1], chunk[1:])).cache()
    if shuffle:
        ds = ds.shuffle(len(ids) // (seq_len + 1), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
