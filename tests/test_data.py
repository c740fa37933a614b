import gzip

import numpy as np
import pytest

from tutorial_lib import data


@pytest.mark.parametrize("dataset", data.IMAGE_DATASETS)
def test_image_arrays_are_the_verified_originals(dataset):
    arrays = data.load_raw(dataset)
    assert arrays["x_train"].shape == (60000, 28, 28)
    assert arrays["x_test"].shape == (10000, 28, 28)
    assert arrays["y_train"].shape == (60000,)
    assert arrays["x_train"].dtype == np.uint8
    assert set(np.unique(arrays["y_test"])) == set(range(10))


def test_load_images_scales_to_unit_range_with_channel_axis():
    x, y = data.load_images("mnist", "test", limit=100)
    assert x.shape == (100, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert y.shape == (100,) and y[:5].tolist() == [7, 2, 1, 0, 4]


def test_binarize_gives_zeros_and_ones():
    x, _ = data.load_images("fashion_mnist", "train", limit=50, binarize=True)
    assert set(np.unique(x)) == {0.0, 1.0}


def test_stochastic_binarisation_is_one_fixed_draw_per_split():
    grey, _ = data.load_images("mnist", "test", limit=500)
    x, _ = data.load_images("mnist", "test", limit=500, binarize="stochastic")
    assert set(np.unique(x)) == {0.0, 1.0}
    np.testing.assert_array_equal(
        x, data.load_images("mnist", "test", limit=500, binarize="stochastic")[0]
    )
    fewer, _ = data.load_images("mnist", "test", limit=20, binarize="stochastic")
    np.testing.assert_array_equal(fewer, x[:20])  # the same draw whatever the limit
    assert x[grey == 0].max() == 0 and x[grey == 1].min() == 1  # sure pixels stay sure
    grey_pixels = (grey > 0) & (grey < 1)
    assert abs(x[grey_pixels].mean() - grey[grey_pixels].mean()) < 0.01  # p(1) = grey value
    threshold, _ = data.load_images("mnist", "test", limit=500, binarize="threshold")
    assert 0 < np.mean(x != threshold) < 0.05  # they differ only on the grey edge pixels
    np.testing.assert_array_equal(
        threshold, data.load_images("mnist", "test", limit=500, binarize=True)[0]
    )
    train, _ = data.load_images("mnist", "train", limit=500, binarize="stochastic")
    assert not np.array_equal(train[:10], x[:10])
    with pytest.raises(ValueError, match="threshold, stochastic"):
        data.load_images("mnist", binarize="dither")


def test_a_stochastically_binarised_pipeline_draws_every_batch_afresh():
    grey, y = data.load_images("mnist", "test", limit=64)
    batches = data.image_dataset(grey, y, batch_size=64, shuffle=False, binarize="stochastic")
    first, labels = next(iter(batches))
    second, _ = next(iter(batches))  # the next epoch
    first, second = first.numpy(), second.numpy()
    assert set(np.unique(first)) == {0.0, 1.0}
    assert not np.array_equal(first, second), "each epoch sees other binary images"
    np.testing.assert_array_equal(labels.numpy(), y)
    assert abs(first.mean() - grey.mean()) < 0.01
    inputs, targets = next(
        iter(data.image_dataset(grey, batch_size=8, targets="inputs", binarize="stochastic"))
    )
    np.testing.assert_array_equal(inputs.numpy(), targets.numpy())
    only = next(iter(data.image_dataset(grey, batch_size=8, targets="none", binarize="threshold")))
    assert set(np.unique(only.numpy())) == {0.0, 1.0}


def test_uint8_option_returns_stored_pixels():
    x, _ = data.load_images("mnist", "train", limit=3, as_uint8=True)
    assert x.dtype == np.uint8 and x.shape == (3, 28, 28)


def test_unknown_dataset_and_split_name_the_choices():
    with pytest.raises(ValueError, match="mnist, fashion_mnist"):
        data.load_images("cifar10")
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.load_images("mnist", "validation")


def test_missing_data_names_the_file_and_the_fix(no_data_dir):
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_raw("mnist")
    message = str(info.value)
    assert str(no_data_dir / "mnist" / "train-images-idx3-ubyte.gz") in message
    assert "TUTORIAL_DATA_DIR" in message and "Fix:" in message


def test_missing_shakespeare_names_the_file(no_data_dir):
    with pytest.raises(data.DataNotFoundError, match="tinyshakespeare/input.txt"):
        data.load_shakespeare()


def _write_idx(path, array):
    """A well-formed gzipped IDX file of uint8 ``array``."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_wrong_pixels_are_reported_as_corrupt(no_data_dir):
    path = no_data_dir / "mnist" / "train-images-idx3-ubyte.gz"
    _write_idx(path, np.zeros((60000, 28, 28), np.uint8))  # right shape, wrong content
    with pytest.raises(data.DataCorruptError) as info:
        data.load_raw("mnist")
    message = str(info.value)
    assert str(path) in message and "not the original data" in message and "Fix:" in message


def test_truncated_file_is_reported_as_corrupt(no_data_dir):
    path = no_data_dir / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    _write_idx(path, np.zeros((100, 28, 28), np.uint8))
    raw = gzip.decompress(path.read_bytes())
    header = raw[:4] + (60000).to_bytes(4, "big") + raw[8:16]  # promises 60000 images
    path.write_bytes(gzip.compress(header + raw[16:]))
    with pytest.raises(data.DataCorruptError, match="truncated"):
        data.load_raw("fashion_mnist")


def test_a_file_that_is_not_gzip_is_reported_as_corrupt(no_data_dir):
    path = no_data_dir / "mnist" / "train-images-idx3-ubyte.gz"
    path.parent.mkdir()
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(data.DataCorruptError, match="not a readable gzip file"):
        data.load_raw("mnist")


def test_a_gzip_file_without_an_idx_header_is_reported_as_corrupt(no_data_dir):
    path = no_data_dir / "mnist" / "train-images-idx3-ubyte.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(b"PK\x03\x04 some other file, gzipped"))
    with pytest.raises(data.DataCorruptError, match="does not start with an IDX header") as info:
        data.load_raw("mnist")
    assert str(path) in str(info.value)


def test_a_damaged_keras_cache_says_which_copy_to_delete(monkeypatch, tmp_path):
    monkeypatch.delenv("TUTORIAL_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "datasets" / "fashion-mnist"  # Keras keeps no checksum of these
    cached.mkdir(parents=True)
    for split in ("train", "t10k"):
        for part in ("labels-idx1", "images-idx3"):
            (cached / f"{split}-{part}-ubyte.gz").write_bytes(b"\x1f\x8b\x08 cut short")
    data.load_raw.cache_clear()
    try:
        with pytest.raises(data.DataCorruptError) as info:
            data.load_raw("fashion_mnist")
    finally:
        data.load_raw.cache_clear()
    message = str(info.value)
    assert f"the copy in the Keras cache ({cached}) cannot be read" in message
    assert f"Fix: delete {cached}" in message


def test_altered_shakespeare_is_reported_as_corrupt(no_data_dir):
    path = no_data_dir / "tinyshakespeare" / "input.txt"
    path.parent.mkdir()
    path.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n")
    with pytest.raises(data.DataCorruptError, match="not the original corpus"):
        data.load_shakespeare()


def test_check_data_reports_each_dataset(no_data_dir):
    rows = data.check_data()
    assert [row["dataset"] for row in rows] == ["mnist", "fashion_mnist", "tinyshakespeare"]
    assert not any(row["ok"] for row in rows)
    assert all("Fix:" in row["message"] for row in rows)


def test_shakespeare_vocab_round_trip_and_split():
    text = data.load_shakespeare(val_fraction=0.1)
    assert text.vocab.size == 65
    total = len(text.train) + len(text.val)
    assert total == 1_115_394
    assert len(text.val) == total - int(total * 0.9)
    assert text.vocab.decode(text.train[:14]) == "First Citizen:"
    sample = "To be, or not to be"
    assert text.vocab.decode(text.vocab.encode(sample)) == sample


def test_vocab_rejects_unknown_characters_and_ids():
    vocab = data.CharVocab.from_text("abc")
    with pytest.raises(ValueError, match="'z' is not in the vocabulary"):
        vocab.encode("abz")
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        vocab.decode([0, 3])


def test_image_dataset_batches_and_targets():
    x, y = data.load_images("mnist", "test", limit=10)
    batches = list(data.image_dataset(x, y, batch_size=4, shuffle=False))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(batches[0][1].numpy(), y[:4])
    inputs, targets = next(iter(data.image_dataset(x, batch_size=4, targets="inputs")))
    np.testing.assert_array_equal(inputs.numpy(), targets.numpy())
    only = next(iter(data.image_dataset(x, batch_size=4, targets="none", drop_remainder=True)))
    assert only.shape == (4, 28, 28, 1)
    with pytest.raises(ValueError, match="needs y"):
        data.image_dataset(x, batch_size=4)


def test_image_dataset_shuffle_is_reproducible_with_a_seed():
    x, y = data.load_images("mnist", "test", limit=64)
    first = next(iter(data.image_dataset(x, y, batch_size=64, seed=3)))[1].numpy()
    again = next(iter(data.image_dataset(x, y, batch_size=64, seed=3)))[1].numpy()
    np.testing.assert_array_equal(first, again)
    assert sorted(first) == sorted(y)


def test_text_windows_shift_targets_by_one():
    ids = np.arange(100, dtype=np.int32)
    x, y = next(iter(data.text_windows(ids, seq_len=8, batch_size=3, shuffle=False)))
    assert x.shape == (3, 8)
    np.testing.assert_array_equal(y.numpy(), x.numpy() + 1)
    with pytest.raises(ValueError, match="at least"):
        data.text_windows(ids[:5], seq_len=8, batch_size=1)
