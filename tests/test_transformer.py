import dataclasses
import json
import math

import keras
import numpy as np
import pytest

from tutorial_lib import data, transformer

TINY = transformer.GPTConfig(
    context=16, width=16, layers=2, heads=2, batch_size=4, steps=4, steps_per_epoch=2
)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _tiny_gpt(seed=0, vocab_size=11, config=TINY):
    keras.utils.set_random_seed(seed)
    return transformer.build_gpt(config, vocab_size)


@pytest.fixture(scope="module")
def shared_gpt():
    """One tiny GPT for the generation tests (its generation functions are traced once)."""
    return _tiny_gpt()


def test_attention_matches_a_numpy_reference():
    q, k, v = (_rng(i).standard_normal((2, 5, 8)).astype("float32") for i in range(3))
    out, weights = transformer.scaled_dot_product_attention(q, k, v, transformer.causal_mask(5))
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(8)
    scores = np.where(np.tril(np.ones((5, 5), bool)), scores, -np.inf)
    expected = np.exp(scores - scores.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(weights), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out), expected @ v, atol=1e-5)
    assert np.asarray(weights).dtype == np.float32


def test_causal_mask_is_the_lower_triangle_and_shifts_with_the_offset():
    np.testing.assert_array_equal(
        np.asarray(transformer.causal_mask(4)), np.tril(np.ones((4, 4), bool))
    )
    # One query at position 2 over a cache of 4 slots: sees slots 0, 1, 2.
    np.testing.assert_array_equal(
        np.asarray(transformer.causal_mask(1, 4, offset=2)), [[True, True, True, False]]
    )


@pytest.mark.parametrize("causal", [True, False])
def test_hand_written_attention_equals_keras_multi_head_attention(causal):
    width, heads = 12, 3
    ours = transformer.MultiHeadSelfAttention(width, heads)
    x = _rng(1).standard_normal((2, 7, width)).astype("float32")
    ours.build(x.shape)
    theirs = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=width // heads)
    theirs(x, x, use_causal_mask=causal)  # builds it
    # Keras keeps per-head kernels (width, heads, d) and biases (heads, d); ours are
    # (width, width) with the heads side by side, in the same order.
    for mine, keras_dense in [
        (ours.query, theirs._query_dense),
        (ours.key, theirs._key_dense),
        (ours.value, theirs._value_dense),
    ]:
        kernel, bias = (np.asarray(w) for w in keras_dense.weights)
        mine.set_weights([kernel.reshape(width, width), bias.reshape(width)])
    kernel, bias = (np.asarray(w) for w in theirs._output_dense.weights)
    ours.out.set_weights([kernel.reshape(width, width), bias])

    expected, expected_weights = theirs(x, x, use_causal_mask=causal, return_attention_scores=True)
    got, got_weights = ours(x, causal=causal, return_weights=True)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-5)
    np.testing.assert_allclose(np.asarray(got_weights), np.asarray(expected_weights), atol=1e-6)


def test_gpt_logits_shape_dtype_and_parameter_count():
    model = _tiny_gpt()
    tokens = _rng().integers(0, 11, (3, 16)).astype("int32")
    logits = model(tokens)
    assert logits.shape == (3, 16, 11) and np.asarray(logits).dtype == np.float32
    w, v, c, layers = 16, 11, 16, 2
    per_block = 4 * (w * w + w) + 2 * 2 * w + (w * 4 * w + 4 * w) + (4 * w * w + w)
    expected = v * w + c * w + layers * per_block + 2 * w + (w * v + v)
    assert model.count_params() == expected


def test_changing_a_future_token_never_changes_an_earlier_output():
    model = _tiny_gpt()
    tokens = _rng(2).integers(0, 11, (1, 16)).astype("int32")
    base = np.asarray(model(tokens))
    for t in range(16):
        changed = tokens.copy()
        changed[0, t] = (changed[0, t] + 1) % 11
        out = np.asarray(model(changed))
        np.testing.assert_array_equal(out[:, :t], base[:, :t])  # the past: bit for bit
        assert not np.allclose(out[:, t], base[:, t])  # the changed position itself does move


def test_too_long_a_sequence_is_refused_with_the_context_size():
    with pytest.raises(ValueError, match="at most 16 characters"):
        _tiny_gpt()(np.zeros((1, 17), "int32"))


def test_width_must_divide_by_heads():
    with pytest.raises(ValueError, match="multiple of heads"):
        transformer.GPTConfig(width=10, heads=4)


@pytest.mark.parametrize(
    "activation, reference",
    [
        ("relu", lambda h: np.maximum(h, 0.0)),
        ("gelu", lambda h: 0.5 * h * (1.0 + np.vectorize(math.erf)(h / math.sqrt(2.0)))),
    ],
)
def test_the_mlp_applies_the_configured_activation(activation, reference):
    model = _tiny_gpt(config=dataclasses.replace(TINY, activation=activation))
    layer = model.blocks[0].mlp_in
    x = _rng(3).standard_normal((2, 16)).astype("float32")
    kernel, bias = (np.asarray(w, dtype=np.float64) for w in layer.weights)
    expected = reference(x.astype(np.float64) @ kernel + bias)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=1e-5)


def test_an_unknown_activation_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="choose one of \\('gelu', 'relu'\\)"):
        transformer.GPTConfig(activation="swish")


def test_an_epoch_must_hold_whole_executions():
    with pytest.raises(ValueError, match="multiple of steps_per_execution"):
        transformer.GPTConfig(steps_per_epoch=250, steps_per_execution=30)


def test_cached_logits_equal_full_forward_logits():
    model = _tiny_gpt()
    tokens = _rng(3).integers(0, 11, (1, 10)).astype("int32")
    full = np.asarray(model(tokens))
    logits, cache = model.call_cached(tokens[:, :6], 0, model.empty_cache(1))
    np.testing.assert_allclose(np.asarray(logits), full[:, :6], atol=1e-5)
    for t in range(6, 10):
        logits, cache = model.call_cached(tokens[:, t : t + 1], t, cache)
        np.testing.assert_allclose(np.asarray(logits)[:, 0], full[:, t], atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [{}, {"temperature": 0.7, "top_k": 4}, {"temperature": 1.3, "top_p": 0.8}, {"temperature": 0}],
)
def test_cached_and_uncached_generation_give_the_same_tokens(options, shared_gpt):
    model = shared_gpt
    prompt = [1, 2, 3]
    # 40 tokens with a context of 16: the window moves on twice on the way.
    cached = transformer.generate(model, prompt, 40, seed=5, use_cache=True, **options)
    uncached = transformer.generate(model, prompt, 40, seed=5, use_cache=False, **options)
    assert cached.shape == (40,) and cached.dtype == np.int32
    np.testing.assert_array_equal(cached, uncached)
    other = transformer.generate(model, prompt, 40, seed=6, **options)
    if options.get("temperature") != 0:
        assert not np.array_equal(cached, other)


def test_a_prompt_longer_than_the_context_keeps_its_end(shared_gpt):
    model = shared_gpt
    prompt = _rng(4).integers(0, 11, 30)
    a = transformer.generate(model, prompt, 5, seed=1, use_cache=True)
    b = transformer.generate(model, prompt, 5, seed=1, use_cache=False)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="at least one token"):
        transformer.generate(model, [], 5)


def test_window_start_jumps_to_keep_half_a_context():
    assert transformer._next_window_start(0, 16, 16) == 0
    assert transformer._next_window_start(0, 17, 16) == 9  # keeps the last 8
    assert transformer._next_window_start(9, 25, 16) == 9
    assert transformer._next_window_start(9, 26, 16) == 18


def test_top_k_keeps_exactly_k_tokens_the_largest():
    logits = _rng(5).standard_normal((3, 20))
    for k in (1, 3, 20):
        filtered = transformer.top_k_filter(logits, k)
        kept = np.isfinite(filtered)
        assert (kept.sum(-1) == k).all()
        for row in range(3):
            assert set(np.flatnonzero(kept[row])) == set(np.argsort(-logits[row])[:k])
        np.testing.assert_array_equal(filtered[kept], logits[kept])
    ties = transformer.top_k_filter(np.zeros(6), 2)
    assert np.isfinite(ties).sum() == 2
    with pytest.raises(ValueError, match="at least 1"):
        transformer.top_k_filter(logits, 0)


def test_top_p_keeps_the_nucleus():
    probs = np.array([0.5, 0.05, 0.3, 0.15])
    logits = np.log(probs)
    kept = lambda p: set(np.flatnonzero(np.isfinite(transformer.top_p_filter(logits, p))))  # noqa: E731
    assert kept(0.5) == {0}  # the top token alone reaches 0.5
    assert kept(0.6) == {0, 2}  # 0.5 is not enough, 0.5 + 0.3 is
    assert kept(0.85) == {0, 2, 3}
    assert kept(0.96) == {0, 1, 2, 3}
    assert kept(1e-9) == {0}  # the most likely token always stays
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        transformer.top_p_filter(logits, 0.0)


def test_next_token_probabilities_temperature_and_filters():
    logits = np.array([2.0, 1.0, 0.0, -1.0])
    np.testing.assert_allclose(transformer.next_token_probabilities(logits, 0), [1, 0, 0, 0])
    p1 = transformer.next_token_probabilities(logits, 1.0)
    np.testing.assert_allclose(p1, np.exp(logits) / np.exp(logits).sum())
    cold, hot = (transformer.next_token_probabilities(logits, t) for t in (0.5, 2.0))
    assert cold[0] > p1[0] > hot[0]  # lower temperature sharpens
    topk = transformer.next_token_probabilities(logits, 1.0, top_k=2)
    np.testing.assert_allclose(topk, [np.e / (np.e + 1), 1 / (np.e + 1), 0, 0])
    assert transformer.next_token_probabilities(logits, 1.0, top_p=0.5)[0] == 1.0
    with pytest.raises(ValueError, match="temperature"):
        transformer.next_token_probabilities(logits, -1.0)


def test_random_windows_shift_the_targets_and_follow_the_seed():
    ids = np.arange(1000, dtype=np.int32)
    ds = transformer.random_windows(ids, seq_len=8, batch_size=4, seed=3)
    x, y = (np.asarray(a) for a in next(iter(ds)))
    assert x.shape == y.shape == (4, 8)
    np.testing.assert_array_equal(y, x + 1)  # consecutive ids: targets are the next ones
    np.testing.assert_array_equal(np.diff(x, axis=1), 1)
    again = np.asarray(
        next(iter(transformer.random_windows(ids, seq_len=8, batch_size=4, seed=3)))[0]
    )
    np.testing.assert_array_equal(x, again)
    assert len(set(x[:, 0])) > 1  # random starts, not one fixed offset


@pytest.mark.parametrize("activation", transformer.MLP_ACTIVATIONS)
def test_save_and_load_round_trip(tmp_path, activation):
    config = dataclasses.replace(TINY, activation=activation)
    model = _tiny_gpt(config=config)
    tokens = _rng(6).integers(0, 11, (2, 16)).astype("int32")
    model.save(tmp_path / "gpt.keras")
    loaded = keras.models.load_model(tmp_path / "gpt.keras")
    assert isinstance(loaded, transformer.GPT) and loaded.context == 16
    assert [block.activation for block in loaded.blocks] == [activation] * 2
    np.testing.assert_allclose(np.asarray(loaded(tokens)), np.asarray(model(tokens)), atol=1e-6)


def test_learning_rate_warms_up_then_decays():
    config = transformer.GPTConfig(steps=1000, warmup_steps=100, learning_rate=1e-3)
    schedule = transformer.learning_rate_schedule(config)
    lr = [float(schedule(step)) for step in (0, 50, 100, 550, 1000)]
    assert lr[0] == 0.0 and lr[1] == pytest.approx(5e-4) and lr[2] == pytest.approx(1e-3)
    assert lr[2] > lr[3] > lr[4] == pytest.approx(1e-4)


# The fast profile's run in miniature (one block of width 16, one epoch of 4 steps, two
# per graph call): what the run folder and the command line prove does not depend on it.
TINY_RUN = dataclasses.replace(
    transformer.CONFIGS["transformer"]["fast"],
    context=16,
    width=16,
    layers=1,
    steps=4,
    val_batches=1,
)


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    from tutorial_lib import runs

    out = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setitem(transformer.CONFIGS["transformer"], "fast", TINY_RUN)
        return out, runs.train("transformer", "fast", out_dir=out)


def test_training_writes_model_record_and_text_samples(fast_run):
    out, run = fast_run
    assert {"model.keras", "metrics.json", "samples.txt", "history.csv"} <= {
        p.name for p in out.iterdir()
    }
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["dataset"] == "tinyshakespeare" and saved["profile"] == "fast"
    assert saved["likelihood"] == "exact" and saved["nll_unit"] == "nats per character"
    assert saved["bits_per_dim"] == pytest.approx(saved["nll"] / np.log(2))
    assert saved["nll"] < np.log(65)  # better than a uniform guess
    assert saved["train_tokens_per_second"] > 0 and saved["train_images_per_second"] is None
    assert len((out / "samples.txt").read_text(encoding="utf-8")) == 400


def test_cli_samples_a_loaded_run_to_the_screen_or_a_file(fast_run, tmp_path, capsys):
    """Each command loads the run (:func:`tutorial_lib.runs.load`) and continues the
    prompt; the same seed and options give the same text from either load."""
    from tutorial_lib import cli

    out, _ = fast_run
    command = ["sample", "transformer", "--run", str(out), "--num-chars", "20", "--prompt", "KING:"]
    command += ["--top-k", "5"]
    assert cli.main(command) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("KING:") and len(printed) == len("KING:") + 20 + 1  # print's newline
    target = tmp_path / "text.txt"
    assert cli.main([*command, "--out", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == printed[:-1]
    assert f"to {target}" in capsys.readouterr().out
    # An image data set makes no sense for the text model.
    with pytest.raises(SystemExit):
        cli.main(["train", "transformer", "--dataset", "mnist", "--out", str(tmp_path / "r")])


def test_sample_options_parse():
    from tutorial_lib import cli

    args = cli.build_parser().parse_args(
        ["sample", "transformer", "--run", "r", "--num-chars", "80", "--prompt", "JULIET:"]
        + ["--temperature", "0.8", "--top-k", "10"]
    )
    assert (args.num, args.prompt, args.temperature, args.top_k, args.top_p) == (
        80,
        "JULIET:",
        0.8,
        10,
        None,
    )
    assert cli.family_options(args) == {"prompt": "JULIET:", "temperature": 0.8, "top_k": 10}


def test_shortened_config_keeps_whole_epochs():
    config = transformer.GPTConfig(steps=2000, steps_per_epoch=250, warmup_steps=100)
    assert config.shortened(0.25).steps == 500
    assert config.shortened(0.01).steps == 250  # at least one epoch
    assert transformer.CONFIGS["transformer"]["fast"].shortened(0.25).steps == 4


def test_tiled_windows_predict_every_character_once():
    x, y = transformer.tiled_windows(np.arange(23), 5)
    assert x.shape == y.shape == (4, 5)
    np.testing.assert_array_equal(x.ravel(), np.arange(20))
    np.testing.assert_array_equal(y.ravel(), np.arange(1, 21))
    with pytest.raises(ValueError, match="at least context"):
        transformer.tiled_windows(np.arange(5), 5)


def test_validation_windows_are_the_tiled_text_or_batches_spread_along_it():
    ids = np.arange(1001)
    config = dataclasses.replace(TINY_RUN, val_batches=None)  # context 16
    x, y = transformer.validation_windows(ids, config)
    np.testing.assert_array_equal(x, transformer.tiled_windows(ids, 16)[0])
    few = dataclasses.replace(TINY_RUN, val_batches=1, batch_size=4)
    x, y = transformer.validation_windows(ids, few)
    assert x.shape == (4, 16)
    assert x[0, 0] == 0 and x[-1, 0] == 61 * 16  # the first and the last of 62 windows
    np.testing.assert_array_equal(y, x + 1)


def test_the_last_logged_validation_loss_is_the_reported_figure():
    """The curve a learner sees ends on the figure the record quotes."""
    config = dataclasses.replace(TINY_RUN, val_batches=None)
    rng = np.random.default_rng(0)
    text = data.TextData(train=rng.integers(0, 65, 2_000), val=rng.integers(0, 65, 700), vocab=None)
    model = transformer.build_model(config)
    history = transformer.fit_model(model, text, config, verbose=0)
    reported = transformer.evaluate_nll(model, text.val, config)["nats_per_char"]
    assert history.history["val_loss"][-1] == pytest.approx(reported, rel=1e-5)
