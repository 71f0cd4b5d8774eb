"""The declarative settings framework: parser, quick/full values, checks, shared groups."""

import argparse

import pytest

from sgtheory.errors import InputError
from sgtheory.settings import SEED, TRAINING, Setting, add_settings, resolve

TABLE = (
    SEED,
    Setting("steps", "int", full=3000, quick=300, lo=1, help="steps"),
    Setting("lr", "float", full=1e-3, above=0, help="rate"),
    Setting("depths", "ints", full=(5, 10), quick=(2,), lo=1, hi=50, help="depths"),
    Setting("act", "strs", full=("relu",), choices=("relu", "tanh"), help="activations"),
    Setting("root", "path", full=None, optional=True, help="folder"),
    Setting("bn", "flag", full=False, help="batch-norm"),
    Setting("name", "str", full="a", choices=lambda: ("a", "b"), help="lazy choices"),
)


def _parse(argv, quick=False):
    p = argparse.ArgumentParser()
    add_settings(p, TABLE)
    return resolve(p.parse_args(argv), TABLE, quick=quick)


def test_defaults_follow_the_mode():
    full, quick = _parse([]), _parse([], quick=True)
    assert (full.steps, full.depths, full.lr, full.bn, full.root) == (3000, (5, 10), 1e-3, False, None)
    assert (quick.steps, quick.depths, quick.lr) == (300, (2,), 1e-3)  # lr has no quick value of its own


def test_given_values_win_over_both_modes_and_are_typed():
    a = _parse(["--steps", "7", "--depths", "3, 4", "--act", "tanh,relu", "--bn", "--root", "x", "--name", "b"],
               quick=True)
    assert (a.steps, a.depths, a.act, a.bn, a.root, a.name) == (7, (3, 4), ("tanh", "relu"), True, "x", "b")
    assert _parse(["--no-bn"]).bn is False


@pytest.mark.parametrize("argv, option", [
    (["--steps", "0"], "--steps"),          # zero is an error, never "the default"
    (["--steps", "2.5"], "--steps"),
    (["--steps", ""], "--steps"),
    (["--lr", "0"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--lr=-1e-3"], "--lr"),
    (["--depths", ""], "--depths"),
    (["--depths", "3,,4"], "--depths"),
    (["--depths", "3,3"], "--depths"),
    (["--depths", "51"], "--depths"),
    (["--act", "gelu"], "--act"),
    (["--name", "c"], "--name"),
    (["--root", " "], "--root"),
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**32)], "--seed"),
])
def test_bad_values_name_their_option(argv, option):
    with pytest.raises(InputError, match=f"^{option}:"):
        _parse(argv)


def test_help_states_full_and_quick_values_and_choices():
    p = argparse.ArgumentParser()
    add_settings(p, TABLE + (Setting("pct", "float", full=5.0, help="band in %"),))
    text = p.format_help()
    assert "(default 3000; quick 300)" in text and "(default 5,10; quick 2)" in text
    assert "one of relu, tanh" in text and "band in % (default 5)" in text


def test_group_pick_overrides_and_keeps_the_group_order():
    rows = TRAINING.pick("lr", "steps", width=(256, 64), steps=3000)
    assert [r.name for r in rows] == ["width", "steps", "lr"]
    width = rows[0]
    assert (width.default(False), width.default(True)) == (256, 64)
    assert rows[1].default(True) == 3000
    with pytest.raises(ValueError, match="unknown setting"):
        TRAINING.pick("nope")
