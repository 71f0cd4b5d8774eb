"""Representation analysis: similarity of layer representations, RDMs, probes.

All measures take views shaped ``(n_samples, n_features)`` (rows are the same samples in both
views) and compute in float64. Similarities lie in [0, 1]; RDMs hold distances.

- CCA family: :func:`cca` (canonical correlations), :func:`svcca`, :func:`pwcca`
- CKA family: :func:`linear_cka`, :func:`rbf_cka` (both optionally debiased), :func:`minibatch_cka`,
  :class:`MinibatchCKA`
- RSA: :func:`rdm`, :func:`compare_rdms`, :func:`rsa`
- :func:`linear_probe`: held-out accuracy of a logistic-regression probe
- :func:`similarity_matrix`: all layer pairs, per-layer work done once (pair step on a GPU through
  JAX when one is present, ``backend="auto"``)
- :func:`permutation_test`, :func:`bootstrap_ci`: uncertainty for any measure
"""

from sgtheory.represent._validate import ConstantFeatureWarning, SmallSampleWarning
from sgtheory.represent.canonical import cca, pwcca, svcca
from sgtheory.represent.cka import MinibatchCKA, linear_cka, minibatch_cka, rbf_cka
from sgtheory.represent.linear_probe import linear_probe
from sgtheory.represent.matrix import similarity_matrix
from sgtheory.represent.rdms import compare_rdms, rdm, rsa
from sgtheory.represent.uncertainty import BootstrapResult, PermutationResult, bootstrap_ci, permutation_test

__all__ = [
    "cca",
    "svcca",
    "pwcca",
    "linear_cka",
    "rbf_cka",
    "minibatch_cka",
    "MinibatchCKA",
    "rdm",
    "compare_rdms",
    "rsa",
    "linear_probe",
    "similarity_matrix",
    "permutation_test",
    "bootstrap_ci",
    "PermutationResult",
    "BootstrapResult",
    "ConstantFeatureWarning",
    "SmallSampleWarning",
]

# Activations from checkpoints/files, layer-wise comparison, SG loss-approximation probes (C8).
from sgtheory.represent.activations import LayerActivations, checkpoint_activations, load_activations, make_activations
from sgtheory.represent.layerwise import LayerComparison, compare_layers, diagonal_block_distance, label_ordered_sample
from sgtheory.represent.sg_probes import (
    LinearSGProbe,
    LossApproximation,
    NetSGProbe,
    checkpoint_sg_probe,
    compare_line_integral,
    linear_sg_probe,
    loss_change_correlation,
    net_sg_probe,
    sg_line_integral,
    trajectory_loss_changes,
)

__all__ += [
    "LayerActivations", "checkpoint_activations", "load_activations", "make_activations",
    "LayerComparison", "compare_layers", "diagonal_block_distance", "label_ordered_sample",
    "LinearSGProbe", "LossApproximation", "NetSGProbe", "checkpoint_sg_probe", "compare_line_integral",
    "linear_sg_probe", "loss_change_correlation", "net_sg_probe", "sg_line_integral", "trajectory_loss_changes",
]
