"""Sparse MLP training: truly sparse layers, optimisers with per-nonzero state, datasets."""

from .data import DATASETS, Dataset, load_dataset
from .layers import DenseLayer, SparseLayer
from .model import TOPOLOGIES, SparseMLP
from .optim import SGD, Adam, learning_rate, make_optimizer
from .trainer import TrainConfig, fit, param_equivalent_sizes

__all__ = [
    "DATASETS",
    "Dataset",
    "load_dataset",
    "SparseLayer",
    "DenseLayer",
    "SparseMLP",
    "TOPOLOGIES",
    "Adam",
    "SGD",
    "make_optimizer",
    "learning_rate",
    "TrainConfig",
    "fit",
    "param_equivalent_sizes",
]
