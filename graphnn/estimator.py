"""A scikit-learn classifier on graphnn's sparse MLP.

``SparseMLPClassifier`` mirrors ``sklearn.neural_network.MLPClassifier`` where the concepts
match (``hidden_layer_sizes``, ``max_iter`` = epochs, ``batch_size``, ``learning_rate_init``,
``alpha`` = L2, ``solver``, ``early_stopping``, ``validation_fraction``, ``n_iter_no_change``,
``tol``, ``verbose``, ``random_state``; fitted ``n_iter_``, ``loss_curve_``,
``validation_scores_``, ``best_validation_score_``) and adds the sparse ones (``density``,
``topology``, ``redistribution`` with its ``redistribution_fraction`` and
``redistribution_interval``). Its defaults are the command line's (one source:
:class:`graphnn.training.TrainConfig`); the fitted network is a :class:`graphnn.Network`
(``network_``). A fitted estimator pickles (backends travel by name) and passes scikit-learn's
``check_estimator``.

Examples
--------
>>> from sklearn.datasets import load_digits
>>> X, y = load_digits(return_X_y=True)
>>> clf = SparseMLPClassifier(max_iter=10, random_state=0).fit(X / 16, y)
>>> float(clf.score(X / 16, y)) > 0.9, clf.network_, clf.n_iter_
(True, <Network 64-300-100-10, 5020 edges, float32>, 10)
"""

import sys
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

from .training.data import Dataset
from .training.experiments import accuracy_curve, still_rising
from .training.model import TOPOLOGIES, SparseMLP
from .training.optim import OPTIMIZERS
from .training.redistribution import ALGORITHMS
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
    redistribution_fraction : float in (0, 1]
        Fraction of each layer's weights moved at the first redistribution, cosine-annealed to
        0 at 3/4 of training (the command line's ``--alpha``).
    redistribution_interval : int
        Epochs between redistributions (``--redistribute-every``).
    max_iter : int
        Epochs (at most, with ``early_stopping``).
    batch_size, learning_rate_init : as in MLPClassifier.
    solver : {"adam", "sgd"}
    alpha : float
        L2 penalty (weight decay), as in MLPClassifier; not the redistribution fraction.
    early_stopping : bool
        Hold out ``validation_fraction`` of the training rows (stratified) and stop when their
        accuracy has not improved by more than ``tol`` for ``n_iter_no_change`` epochs; the
        model keeps the weights of its best epoch.
    validation_fraction : float in (0, 1)
    n_iter_no_change : int
    tol : float
    verbose : bool
        Print a line per epoch (loss, accuracies, seconds) to standard output.
    random_state : int, RandomState or None
        Seeds the structure, the initial weights, the batch order and the validation split.
    backend : str
        graphnn backend (``numba`` by default).

    Attributes
    ----------
    classes_, n_features_in_ : as in every classifier.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Mean training loss of every epoch.
    validation_scores_ : list of float or None
        Validation accuracy of every epoch (``early_stopping`` only).
    best_validation_score_ : float or None
    network_ : graphnn.Network
        The trained network.
    history_ : dict
        The trainer's metrics, every epoch's record included.
    """

    # checked by scikit-learn's own validation: an error names the estimator's parameter
    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "density": [Interval(Real, 0, 1, closed="right")],
        "topology": [StrOptions(set(TOPOLOGIES))],
        "redistribution": [StrOptions(set(ALGORITHMS))],
        "redistribution_fraction": [Interval(Real, 0, 1, closed="both")],
        "redistribution_interval": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "solver": [StrOptions(set(OPTIMIZERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "backend": [str],
    }

    def __init__(
        self,
        hidden_layer_sizes=(300, 100),
        *,
        density=0.1,
        topology="random",
        redistribution="none",
        redistribution_fraction=_DEFAULTS.alpha,
        redistribution_interval=_DEFAULTS.redistribute_every,
        max_iter=_DEFAULTS.epochs,
        batch_size=_DEFAULTS.batch_size,
        learning_rate_init=_DEFAULTS.lr,
        solver=_DEFAULTS.optimizer,
        alpha=_DEFAULTS.weight_decay,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=_DEFAULTS.patience,
        tol=_DEFAULTS.tol,
        verbose=False,
        random_state=None,
        backend="numba",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.density = density
        self.topology = topology
        self.redistribution = redistribution
        self.redistribution_fraction = redistribution_fraction
        self.redistribution_interval = redistribution_interval
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.solver = solver
        self.alpha = alpha
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.backend = backend

    def fit(self, X, y):
        """Train on ``(X, y)``; returns ``self``. Warns (``ConvergenceWarning``) when the
        training accuracy still rose over the last fifth of the epochs without early
        stopping."""
        self._validate_params()
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes))
        if sizes.dtype.kind not in "iu" or (sizes < 1).any():
            raise ValueError(
                f"hidden_layer_sizes must be positive widths, got {self.hidden_layer_sizes!r}"
            )
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(f"y has {self.classes_.size} class; a classifier needs at least 2")
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(2**31 - 1))
        X_val, y_val = X[:0], labels[:0]
        if self.early_stopping:
            X, X_val, labels, y_val = self._validation_split(X, labels, seed)
        sizes = [X.shape[1], *map(int, sizes), self.classes_.size]
        self.model_ = SparseMLP(
            sizes, density=self.density, topology=self.topology, backend=self.backend
        )
        data = Dataset("fit", X, labels, X_val, y_val, X[:0], labels[:0], self.classes_.size)
        cfg = TrainConfig(
            epochs=self.max_iter,
            batch_size=self.batch_size,
            lr=self.learning_rate_init,
            optimizer=self.solver,
            weight_decay=self.alpha,
            seed=seed,
            redistribution=self.redistribution,
            alpha=self.redistribution_fraction,
            redistribute_every=self.redistribution_interval,
            early_stopping=self.early_stopping,
            patience=self.n_iter_no_change,
            tol=self.tol,
        )
        log = (lambda msg: print(msg, file=sys.stdout, flush=True)) if self.verbose else None
        self.history_ = fit(self.model_, data, cfg, log=log)
        epochs = self.history_["epochs"]
        self.n_iter_ = len(epochs)
        self.loss_curve_ = [e["train_loss"] for e in epochs]
        self.validation_scores_ = (
            [e["val_accuracy"] for e in epochs] if self.early_stopping else None
        )
        self.best_validation_score_ = max(self.validation_scores_) if self.early_stopping else None
        self.network_ = self.model_.to_network()
        if not self.early_stopping and still_rising(accuracy_curve(epochs)):
            warnings.warn(
                f"the training accuracy still rose over the last fifth of max_iter="
                f"{self.max_iter} epochs: raise max_iter, or set early_stopping=True",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _validation_split(self, X, labels, seed):
        """The training rows split into train and a stratified validation part."""
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        counts = np.bincount(labels)
        n_val = int(np.ceil(self.validation_fraction * len(labels)))
        stratify = labels if counts.min() >= 2 and n_val >= counts.size else None
        X, X_val, labels, y_val = train_test_split(
            X, labels, test_size=self.validation_fraction, random_state=seed, stratify=stratify
        )
        return X, X_val, labels, y_val

    def predict_proba(self, X):
        """Class probabilities, samples x ``classes_``."""
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return self.model_.predict_proba(X)

    def predict(self, X):
        """The most probable class of every sample."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
