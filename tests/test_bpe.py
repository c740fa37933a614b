import numpy as np
import pytest

from tutorial_lib import bpe, data


def test_chunks_keep_words_with_their_spaces_and_join_back():
    text = "First Citizen:\nBefore we proceed,  any further 1,2!"
    assert bpe.chunks(text) == [
        "First",
        " Citizen",
        ":",
        "\n",
        "Before",
        " we",
        " proceed",
        ",",
        "  any",
        " further",
        " 1",
        ",",
        "2",
        "!",
    ]
    assert "".join(bpe.chunks(text)) == text


def test_the_most_frequent_pair_is_merged_first():
    # Sennrich et al.'s example: "low" 5 times, "lower" 2, "newest" 6, "widest" 3.
    text = " ".join(["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3)
    tokenizer = bpe.train_bpe(text, 4)
    # " newest" and " widest" (9 chunks) share "es", then "est"; " low" 6 chunks: " l"...
    assert tokenizer.merges[:2] == (("e", "s"), ("es", "t"))
    assert tokenizer.size == len(set(text)) + 4
    assert tokenizer.vocabulary[-3] == "est"


def test_encoding_splits_as_training_merged_and_decodes_back():
    text = data.load_shakespeare_text()[:20_000]
    tokenizer = bpe.train_bpe(text, 200)
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int32 and ids.max() < tokenizer.size
    assert tokenizer.decode(ids) == text
    found = bpe.compression(tokenizer, text)
    assert found["characters_per_token"] > 1.8  # 200 merges: words and parts of words
    assert " the" in tokenizer.vocabulary and " and" in tokenizer.vocabulary
    unknown = "Zounds! 1,000 ducats" + "\u00e9"
    with pytest.raises(ValueError, match="never occurred"):
        tokenizer.encode(unknown)


def test_no_merges_is_the_character_vocabulary():
    tokenizer = bpe.train_bpe("abcab", 0)
    assert tokenizer.vocabulary == ["a", "b", "c"]
    np.testing.assert_array_equal(tokenizer.encode("cab"), [2, 0, 1])
    assert bpe.train_bpe("abc", 10).merges == ()  # no pair occurs twice
    with pytest.raises(ValueError, match="num_merges"):
        bpe.train_bpe("abc", -1)
