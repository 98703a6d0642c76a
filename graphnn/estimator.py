"""A scikit-learn classifier on graphnn's sparse MLP.

``SparseMLPClassifier`` mirrors ``sklearn.neural_network.MLPClassifier`` where the concepts
match (``hidden_layer_sizes``, ``max_iter`` = epochs, ``batch_size``, ``learning_rate_init``,
``alpha`` = L2, ``solver``, ``random_state``) and adds the sparse ones (``density``,
``topology``, ``redistribution``). Its defaults are the command line's (one source:
:class:`graphnn.training.TrainConfig`); the fitted network is a :class:`graphnn.Network`
(``network_``).

Examples
--------
>>> from sklearn.datasets import load_digits
>>> X, y = load_digits(return_X_y=True)
>>> clf = SparseMLPClassifier(max_iter=10, random_state=0).fit(X / 16, y)
>>> float(clf.score(X / 16, y)) > 0.9, clf.network_
(True, <Network 64-300-100-10, 5020 edges, float32>)
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from .training.data import Dataset
from .training.model import SparseMLP
from .training.trainer import TrainConfig, fit

__all__ = ["SparseMLPClassifier"]

_DEFAULTS = TrainConfig()


class SparseMLPClassifier(ClassifierMixin, BaseEstimator):
    """A truly sparse multi-layer perceptron classifier (softmax output, ReLU hidden layers).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        Widths of the hidden layers.
    density : float in (0, 1]
        Fraction of possible edges per layer (see :class:`graphnn.training.SparseMLP`).
    topology : str
        A family of :func:`topologies.generate` (``random``, ``erk``, ``ertl``, ...).
    redistribution : str
        ``none``, or a dynamic sparse training algorithm (``random`` = SET, ``gradient`` =
        RigL, ``gradient-global``, ``loss``, ``woodfisher``, ``woodtaylor``).
    max_iter : int
        Epochs.
    batch_size, learning_rate_init : as in MLPClassifier.
    solver : {"adam", "sgd"}
    alpha : float
        L2 penalty (weight decay).
    random_state : int, RandomState or None
        Seeds the structure, the initial weights and the batch order.
    backend : str
        graphnn backend (``numba`` by default).
    """

    def __init__(
        self,
        hidden_layer_sizes=(300, 100),
        *,
        density=0.1,
        topology="random",
        redistribution="none",
        max_iter=_DEFAULTS.epochs,
        batch_size=_DEFAULTS.batch_size,
        learning_rate_init=_DEFAULTS.lr,
        solver=_DEFAULTS.optimizer,
        alpha=_DEFAULTS.weight_decay,
        random_state=None,
        backend="numba",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.density = density
        self.topology = topology
        self.redistribution = redistribution
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.solver = solver
        self.alpha = alpha
        self.random_state = random_state
        self.backend = backend

    def fit(self, X, y):
        """Train on ``(X, y)``; returns ``self``."""
        X, y = validate_data(self, X, y, dtype=np.float32)
        self.classes_, labels = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(f"y has {self.classes_.size} class; a classifier needs at least 2")
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        sizes = [X.shape[1], *map(int, self.hidden_layer_sizes), self.classes_.size]
        self.model_ = SparseMLP(
            sizes, density=self.density, topology=self.topology, backend=self.backend
        )
        empty = X[:0]
        data = Dataset("fit", X, labels, empty, labels[:0], empty, labels[:0], self.classes_.size)
        cfg = TrainConfig(
            epochs=self.max_iter,
            batch_size=self.batch_size,
            lr=self.learning_rate_init,
            optimizer=self.solver,
            weight_decay=self.alpha,
            seed=seed,
            redistribution=self.redistribution,
        )
        self.history_ = fit(self.model_, data, cfg)
        self.network_ = self.model_.to_network()
        return self

    def predict_proba(self, X):
        """Class probabilities, samples x ``classes_``."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return self.model_.predict_proba(X)

    def predict(self, X):
        """The most probable class of every sample."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
