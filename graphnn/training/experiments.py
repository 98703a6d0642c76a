"""What every experiment shares: a log of runs saved after each run (so a killed experiment
resumes where it stopped), and the selection and mean/std of runs for tables and figures."""

import json
from pathlib import Path

import numpy as np

from ..errors import GraphnnError
from ..io import atomic_write

__all__ = ["RunLog", "select", "mean_curve", "mean_std"]


class RunLog:
    """The runs of an experiment in ``folder/results.json`` (``{"settings", "runs"}``),
    rewritten atomically after every :meth:`add`. With ``resume``, the runs already there are
    kept if they were made with the same ``settings`` (else a one-line error naming the
    settings that differ); ``resumed`` says which, for what an experiment keeps beside the log
    (a checkpoint is reused only when the log is)."""

    def __init__(self, folder, settings, resume=False):
        self.path = Path(folder) / "results.json"
        self.settings = json.loads(json.dumps(settings))  # as it reads back from the file
        self.resumed = bool(resume and self.path.exists())  # runs (and settings) to continue
        self.runs = self._saved() if resume else []

    def _saved(self):
        if not self.path.exists():
            return []
        try:
            saved = json.loads(self.path.read_text())
            runs, before = saved["runs"], saved["settings"]
        except (ValueError, KeyError, TypeError) as e:
            raise GraphnnError(
                f"resume: {self.path} is not an experiment's results ({e})"
            ) from None
        if before != self.settings:
            keys = set(self.settings) | set(before)
            changed = sorted(k for k in keys if before.get(k) != self.settings.get(k))
            raise GraphnnError(
                f"resume: {self.path} was made with other settings ({', '.join(changed)}); "
                "use another folder, or the same settings"
            )
        return runs

    def done(self, **key):
        """Whether a run with these fields is logged."""
        return any(all(r.get(k) == v for k, v in key.items()) for r in self.runs)

    def add(self, run):
        self.runs.append(run)
        self.save()

    def save(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, "w") as f:
            json.dump({"settings": self.settings, "runs": self.runs}, f, indent=1)


def select(runs, **key):
    """The runs whose fields equal ``key``."""
    return [r for r in runs if all(r.get(k) == v for k, v in key.items())]


def mean_std(values):
    """``"mean +- std"`` of accuracies for a table, the value alone when there is one (a
    standard deviation of one run says nothing)."""
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return f"{values[0]:.4f}"
    return f"{values.mean():.4f} +- {values.std():.4f}"


def mean_curve(runs, key):
    """Epochs, and the mean and standard deviation across runs of ``key`` per epoch."""
    curves = np.array([[e[key] for e in r["epochs"]] for r in runs], dtype=float)
    return np.arange(1, curves.shape[1] + 1), curves.mean(axis=0), curves.std(axis=0)
