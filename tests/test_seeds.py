"""Every public library function that takes a seed rejects a bad one with one clear InputError line.

The checks live in the library (``sgtheory.validate.seed`` / ``seeds``), not only in the command line, so
a Python user gets the same message. Each case is called with otherwise valid, tiny inputs; the match on
the seed's own message makes sure the error is about the seed and not about some other argument.
"""

import numpy as np
import pytest

from sgtheory import InputError, linear, nets, represent, rnn
from sgtheory.data import Dataset, load, stratified_split
from sgtheory.represent.layerwise import probe_accuracy
from sgtheory.rnn.two_timescale import System
from sgtheory.rnn.two_timescale_train import sweep as two_timescale_sweep
from sgtheory.validate import SEED_LIMIT, generator, seed, seeds

# negative, fractional, too large for the generators, not a number, a bool (an int subclass), None
BAD = [-1, 1.5, SEED_LIMIT, "x", True, None]
SEED_MESSAGE = r"seeds?: (expected an integer seed|a seed must be an integer in 0\.\.4294967295)"


def _data(rng) -> Dataset:
    x = rng.normal(size=(40, 6)).astype(np.float32)
    y = np.arange(40) % 3
    return Dataset(x[:30], y[:30], x[30:], y[30:], 3, "tiny")


def _layers(rng):
    return represent.LayerActivations(("a", "b"), (rng.normal(size=(24, 3)), rng.normal(size=(24, 4))),
                                      labels=np.arange(24) % 2)


def _problem():
    X, Y = linear.datasets.make("teacher", 2, 20, 0)
    return linear.from_samples(X, Y)


# name -> function of (rng, seed) that runs the library call; "cheap" cases also run with good seeds
CASES = {
    "nets.train": (lambda r, s: nets.train(_data(r), nets.MLPConfig(6, 3, 1, 4, "relu", False), "bp", steps=2,
                                           batch_size=4, eval_every=2, seed=s), False),
    "nets.train_population": (lambda r, s: nets.train_population(
        _data(r), nets.MLPConfig(6, 3, 1, 4, "relu", False), "bp", seeds=[s], steps=2, batch_size=4,
        eval_every=2), False),
    "nets.async_sweep": (lambda r, s: nets.async_sweep(
        _data(r), nets.MLPConfig(6, 3, 1, 4, "relu", False), "bp", p_update=[1.0], seeds=[s], steps=2,
        eval_every=2, batch_size=4), False),
    "linear.datasets.make": (lambda r, s: linear.datasets.make("teacher", 2, 10, s), True),
    "linear.sweep": (lambda r, s: linear.sweep(linear.Config(), _problem(), [0.1], [0.1], seeds=[s], steps=2),
                     False),
    "linear.predict": (lambda r, s: linear.predict(linear.Config(), _problem(), [0.1], [0.1], seeds=[s], steps=2),
                       False),
    "data.load": (lambda r, s: load("digits", seed=s), False),
    "data.stratified_split": (lambda r, s: stratified_split(np.arange(20) % 2, 0.5, seed=s), True),
    "represent.linear_probe": (lambda r, s: represent.linear_probe(
        r.normal(size=(20, 3)), np.arange(20) % 2, r.normal(size=(10, 3)), np.arange(10) % 2, seed=s), True),
    "represent.probe_accuracy": (lambda r, s: probe_accuracy(_layers(r), np.arange(24) % 2, seed=s), True),
    "represent.compare_layers": (lambda r, s: represent.compare_layers(_layers(r), _layers(r), ("probe",),
                                                                       seed=s), True),
    "represent.label_ordered_sample": (lambda r, s: represent.label_ordered_sample(np.arange(20) % 2, 4, seed=s),
                                       True),
    "represent.permutation_test": (lambda r, s: represent.permutation_test(
        r.normal(size=(12, 3)), r.normal(size=(12, 3)), n_permutations=5, seed=s), True),
    "represent.bootstrap_ci": (lambda r, s: represent.bootstrap_ci(
        r.normal(size=(12, 3)), r.normal(size=(12, 3)), n_boot=5, seed=s), True),
    "rnn.train": (lambda r, s: rnn.train(rnn.Settings(hidden=4, batch=2, steps=2, eval_every=2), "tbptt",
                                         seeds=[s]), False),
    "rnn.two_timescale_sweep": (lambda r, s: two_timescale_sweep(
        System(period=2, ticks=2, vocab=3, a_hidden=3, b_hidden=3), ["none"], [s], steps=2, eval_every=2),
        False),
}


@pytest.mark.parametrize("bad", BAD, ids=repr)
@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_seed_is_one_input_error(name, bad, rng):
    call, _ = CASES[name]
    with pytest.raises(InputError, match=SEED_MESSAGE) as err:
        call(rng, bad)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", sorted(n for n, (_, cheap) in CASES.items() if cheap))
def test_good_seeds_are_accepted(name, rng):
    # the edges of the range and a numpy integer: the validation must not reject what the generators accept
    call, _ = CASES[name]
    for good in (0, SEED_LIMIT - 1, np.int64(7)):
        call(rng, good)


def test_seed_helpers():
    assert seed(np.int64(5)) == 5 and seed(3.0) == 3 and seed(" 12 ") == 12
    assert seeds(4) == [4] and seeds(np.array([1, 2])) == [1, 2] and seeds(range(3)) == [0, 1, 2]
    with pytest.raises(InputError, match="seeds: expected at least one seed"):
        seeds([])
    g = np.random.default_rng(1)
    assert generator(g) is g
    # a seed gives the generator np.random.default_rng would: the same stream
    assert generator(9).integers(1 << 30) == np.random.default_rng(9).integers(1 << 30)
    with pytest.raises(InputError, match=SEED_MESSAGE):
        generator(-3)
