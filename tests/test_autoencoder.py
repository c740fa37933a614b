import numpy as np
import pytest

from tutorial_lib import autoencoder


@pytest.mark.parametrize("kind", autoencoder.KINDS)
def test_shapes_through_the_bottleneck(kind):
    config = autoencoder.AutoencoderConfig(
        kind=kind, latent_dim=8, hidden_units=(32, 16), filters=(4, 8)
    )
    model = autoencoder.build_model(config)
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype("float32")
    codes = model.get_layer("encoder")(x)
    assert codes.shape == (3, 8)
    out = np.asarray(model(x))
    assert out.shape == (3, 28, 28, 1) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0  # sigmoid output


def test_seed_sized_dense_autoencoder_has_the_expected_parameter_count():
    model = autoencoder.build_model(autoencoder.AutoencoderConfig(kind="dense"))
    # 784-256-128-32 and back: weights plus biases of six dense layers.
    expected = (784 * 256 + 256) + (256 * 128 + 128) + (128 * 32 + 32)
    expected += (32 * 128 + 128) + (128 * 256 + 256) + (256 * 784 + 784)
    assert model.count_params() == expected


def test_a_few_steps_reduce_the_reconstruction_error():
    from tutorial_lib import data
    from tutorial_lib.training import set_seed

    set_seed(0)
    x, _ = data.load_images("mnist", "train", limit=256)
    model = autoencoder.build_model(autoencoder.CONFIGS["autoencoder"]["fast"])
    before = model.evaluate(x, x, verbose=0)[0]
    model.fit(x, x, epochs=3, batch_size=32, verbose=0)
    assert model.evaluate(x, x, verbose=0)[0] < 0.8 * before


def test_unknown_kind_lists_the_choices():
    with pytest.raises(ValueError, match="dense"):
        autoencoder.build_model(autoencoder.AutoencoderConfig(kind="recurrent"))
