"""Offline data sets for the nonlinear-net experiments (nothing is downloaded).

``load(name, root=None, seed=0) -> Dataset`` with ``name`` in :data:`DATASETS`:
``mnist5k`` (embedded, the default), ``digits``, ``fashion-mnist``, ``mnist``, ``cifar10``.
See :mod:`sgtheory.data.datasets` for where each is read from. ``load_corpus(name)`` reads the character
corpora of :mod:`sgtheory.rnn` (:data:`CORPORA`).
"""

from sgtheory.data.datasets import DATASETS, Dataset, load, stratified_split
from sgtheory.data.text import CORPORA, Corpus, load_corpus

__all__ = ["DATASETS", "Dataset", "load", "stratified_split", "CORPORA", "Corpus", "load_corpus"]
