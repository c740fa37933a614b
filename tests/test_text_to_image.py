import keras
import numpy as np
import pytest

from tutorial_lib import text_to_image
from tutorial_lib.backend import to_numpy


def test_pad_tokens_moves_ids_up_and_masks_the_padding():
    ids, mask = text_to_image.pad_tokens([[0, 4], [7], []], length=3)
    np.testing.assert_array_equal(ids, [[1, 5, 0], [8, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="more than length=3"):
        text_to_image.pad_tokens([[1, 2, 3, 4]], length=3)


def test_the_text_encoder_is_causal_so_padding_leaves_the_real_tokens_as_they_are():
    keras.utils.set_random_seed(0)
    encoder = text_to_image.TextEncoder(vocab_size=12, context=6, width=16, layers=2, heads=2)
    padded = to_numpy(encoder(np.array([[3, 4, 5, 0, 0, 0]], np.int32)))
    longer = to_numpy(encoder(np.array([[3, 4, 5, 9, 10, 11]], np.int32)))
    assert padded.shape == (1, 6, 16)
    np.testing.assert_allclose(padded[:, :3], longer[:, :3], atol=1e-6)
    assert not np.allclose(padded[:, 3:], longer[:, 3:])
    again = text_to_image.TextEncoder.from_config(encoder.get_config())
    assert again(np.zeros((2, 6), np.int32)).shape == (2, 6, 16)


def _reference(layer, x, context, mask):
    """The layer's arithmetic in NumPy, one head after another."""
    wq, bq, wk, bk, wv, bv, wo, bo = (np.asarray(w, np.float64) for w in layer.get_weights())
    q, k, v = x @ wq + bq, context @ wk + bk, context @ wv + bv
    d = layer.head_width
    outputs = []
    for head in range(layer.heads):
        part = slice(head * d, (head + 1) * d)
        scores = q[:, :, part] @ k[:, :, part].transpose(0, 2, 1) / np.sqrt(d)
        scores = np.where(mask[:, None, :], scores, -np.inf)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        outputs.append(weights @ v[:, :, part])
    return np.concatenate(outputs, -1) @ wo + bo


def test_cross_attention_is_the_softmax_of_queries_against_the_real_tokens_only():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8)).astype(np.float32)  # image features: 3 queries
    context = rng.standard_normal((2, 5, 6)).astype(np.float32)  # 5 token vectors
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    keras.utils.set_random_seed(0)
    layer = text_to_image.CrossAttention(width=8, heads=2)
    output, weights = (to_numpy(t) for t in layer(x, context, mask, return_weights=True))
    assert output.shape == (2, 3, 8) and weights.shape == (2, 2, 3, 5)
    np.testing.assert_allclose(output, _reference(layer, x, context, mask), rtol=1e-4, atol=1e-5)
    assert np.all(weights[0, ..., 3:] == 0)  # no weight on the padding
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    changed = context.copy()
    changed[0, 3:] = 100.0  # what the padding holds does not matter
    np.testing.assert_allclose(to_numpy(layer(x, changed, mask))[0], output[0], atol=1e-6)
    assert not np.allclose(to_numpy(layer(x, changed))[0], output[0])  # unless it is not masked
    with pytest.raises(ValueError, match="multiple of heads"):
        text_to_image.CrossAttention(width=10, heads=4)
