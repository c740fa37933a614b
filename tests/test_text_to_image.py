import dataclasses

import keras
import numpy as np
import pytest

from tutorial_lib import bpe, captions, lora, text_to_image
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


def _tiny_model(label_dropout=0.1):
    """A text-to-image model on 4-number codes, with a tokenizer of a few captions."""
    keras.utils.set_random_seed(0)
    tokenizer = bpe.train_bpe("a thick seven\na thin one leaning left\nan eight\n", 8)
    codes = keras.Input((4,))
    decoder = keras.Model(codes, keras.layers.Reshape((28, 28, 1))(keras.layers.Dense(784)(codes)))
    config = dataclasses.replace(
        text_to_image.CONFIGS["text_to_image"]["fast"], label_dropout=label_dropout, context=10
    )
    return text_to_image.build_model(config, decoder=decoder, tokenizer=tokenizer, seed=0)


def test_the_denoiser_reads_the_caption_and_the_empty_caption_is_a_condition_too():
    model = _tiny_model()
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    time = np.full((2,), 0.5, np.float32)
    for layer in model.network.layers:  # the output layer starts at zero: wake it up
        if layer.name.startswith("dense") and layer.get_weights():
            layer.set_weights([w + 0.1 for w in layer.get_weights()])
    prompts = model.encode_prompts(["a thick seven", "an eight"])
    empty = model.null_condition(2)
    assert prompts.shape == empty.shape == (2, 10) and np.all(empty == text_to_image.PAD)
    with_text = to_numpy(model.network([x, time, prompts]))
    without = to_numpy(model.network([x, time, empty]))
    assert with_text.shape == (2, 4)
    assert not np.allclose(with_text, without)
    assert not np.allclose(with_text[0], to_numpy(model.network([x, time, prompts[::-1]]))[0])


def test_caption_dropout_empties_whole_captions():
    model = _tiny_model(label_dropout=0.5)
    ids = np.tile(model.encode_prompts(["a thick seven"]), (400, 1))
    dropped = to_numpy(model.drop_labels(ids))
    emptied = np.all(dropped == text_to_image.PAD, axis=1)
    kept = np.all(dropped == ids, axis=1)
    assert np.all(emptied | kept)  # a caption goes whole or stays whole
    assert 0.4 < emptied.mean() < 0.6


@pytest.fixture(scope="module")
def tiny():
    """One tiny model for the tests that do not change it."""
    return _tiny_model()


def test_prompts_are_checked_and_sampling_follows_the_guidance_asked_for(tiny):
    model = tiny
    with pytest.raises(ValueError, match="one prompt, or a list of 3"):
        model.condition_for(["a thick seven"], 3)
    with pytest.raises(ValueError, match=r"\['Z', 'b', 'r'\] never occur in the captions"):
        model.condition_for("a Zebra", 1)
    assert model.condition_for(None, 2) is None
    np.testing.assert_array_equal(
        model.condition_for("an eight", 2), model.encode_prompts(["an eight", "an eight"])
    )
    images = model.sample(3, prompts="an eight", steps=3)
    assert images.shape == (3, 28, 28, 1) and 0 <= images.min() <= images.max() <= 1
    guided = model.sample(2, prompts="an eight", steps=3, guidance=4.0)
    plain = model.sample(2, prompts="an eight", steps=3, guidance=0.0)
    assert guided.shape == plain.shape


def test_a_saved_model_keeps_its_tokenizer_and_draws_the_same_samples(tmp_path, tiny):
    model = tiny
    model.save(tmp_path / "model.keras")
    again = keras.saving.load_model(tmp_path / "model.keras")
    assert again.tokenizer == model.tokenizer and again.context == model.context
    np.testing.assert_allclose(
        again.sample(2, prompts="a thick seven", steps=3, seed=5),
        model.sample(2, prompts="a thick seven", steps=3, seed=5),
        atol=1e-6,
    )


def test_held_out_leaves_out_that_digit_at_that_level_only():
    labels = np.array([0, 0, 0, 1])
    measured = {
        "thickness": np.full(4, 2.5),
        "width": np.full(4, 12.0),
        "slant": np.array([-0.5, 0.0, 0.5, -0.5]),
    }
    mask = text_to_image.held_out_mask(labels, measured, (0, "slant", -1))
    np.testing.assert_array_equal(mask, [True, False, False, False])
    assert not text_to_image.held_out_mask(labels, measured, None).any()


def test_adapted_copies_start_where_they_should_and_train_what_they_should(tiny):
    model = tiny
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    inputs = [x, np.full((3,), 0.3, np.float32), model.encode_prompts(["an eight"] * 3)]
    base = to_numpy(model.ema_network(inputs))
    total = model.network.count_params()
    counts = {}
    for how in text_to_image.ADAPTATIONS:
        copy = text_to_image.adapted_copy(model, how, rank=2)
        counts[how] = lora.trainable_count(copy.network)
        kernel = to_numpy(copy.network.get_layer("text_encoder").embed.weights[0])
        trained = to_numpy(model.ema_network.get_layer("text_encoder").embed.weights[0])
        assert np.allclose(kernel, trained) == (how != "scratch")
        if how == "lora":
            np.testing.assert_allclose(to_numpy(copy.network(inputs)), base, atol=1e-5)
            copy.run_eagerly = True  # one step: quicker than tracing it
            copy.train_on_batch(x, inputs[2])  # a step runs; the averaged copy keeps up
            assert len(copy.ema_network.weights) == len(copy.network.weights)
    assert counts["full"] == counts["scratch"] == total
    assert 0 < counts["lora"] < total / 2
    with pytest.raises(ValueError, match="Unknown adaptation"):
        text_to_image.adapted_copy(model, "prompt")


class _WordsToStrokes:
    """A stand-in model: a vertical bar, 4 pixels wide when the prompt says "thick", else 2."""

    def sample(self, num, prompts, seed=0):
        width = 4 if "thick" in prompts else 2
        images = np.zeros((num, 28, 28, 1), np.float32)
        images[:, 4:24, 12 : 12 + width] = 1.0
        return images


def test_asked_attribute_means_follow_the_words_of_each_prompt():
    means = text_to_image.asked_attribute_means(_WordsToStrokes(), per_prompt=2)
    assert set(means) == set(captions.WORDS) and all(set(m) == {-1, 1} for m in means.values())
    assert means["thickness"][1] > means["thickness"][-1]  # "thick" against "thin"
    assert means["slant"][1] == pytest.approx(means["slant"][-1])  # the words moved nothing
    assert means["width"][1] == pytest.approx(means["width"][-1])
