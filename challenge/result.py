"""What every challenge engine shares: the result of a run and the one loop that reads its
layers (imported by the engines and by :mod:`challenge.inference`, which dispatches to them)."""

import time
from dataclasses import dataclass, field

import numpy as np

from graphnn.errors import DimensionMismatch

__all__ = ["InferenceResult", "checked_layers", "edges_per_second"]


@dataclass
class InferenceResult:
    """What :func:`infer` found: the categories and the counts behind the rate."""

    categories: np.ndarray  # sorted 1-based image ids
    n_images: int
    n_neurons: int
    n_layers: int
    edges: int  # sum of nnz over the layers
    seconds: float  # inference only, excluding any layer reading and network preparation
    read_seconds: float = 0.0  # layer reading and parsing while streaming
    # the engine's conversion of the network before the images go through it (relabelling,
    # column classes, saturation tests): timed apart, as the peers' conversions are
    prepare_seconds: float = 0.0
    saturated_from: int | None = None  # first layer after which saturated rows were skipped
    live_rows: list = field(default_factory=list)  # unsaturated nonzero rows after each layer
    saturated_rows: list = field(default_factory=list)  # rows saturated at ymax, each layer
    wall_seconds: float | None = None  # end to end, for distributed runs
    layer_edges: list = field(default_factory=list)  # nnz of each layer
    input_rows: int | None = None  # images with at least one pixel (the rows computed first)
    column_classes: list | None = None  # distinct columns of each cached layer (None: off)

    @property
    def edges_per_second(self):
        return edges_per_second(self.n_images, self.edges, self.seconds)

    def shortcuts(self):
        """What the exact shortcuts saved, for an honest report: the rows dropped when they
        died, the rows that stopped as saturated, the last layer that computed any row, the
        multiply-adds done against the official formula's, and the rates over what was
        computed."""
        if not self.layer_edges or self.input_rows is None:
            return None
        entering = [self.input_rows] + list(self.live_rows[:-1])
        work = sum(r * e for r, e in zip(entering, self.layer_edges))
        computed = [k for k, rows in enumerate(entering) if rows > 0]
        depth = computed[-1] + 1 if computed else 0
        stopped_saturated = self.saturated_rows[-1] if self.saturated_rows else 0
        ended = self.live_rows[-1] if self.live_rows else 0
        return {
            "empty_images": self.n_images - self.input_rows,
            "rows_dropped_dead": self.input_rows - stopped_saturated - ended,
            "rows_stopped_saturated": stopped_saturated,
            "saturated_from_layer": self.saturated_from,
            "last_layer_computed": depth,
            "row_edges_computed": work,
            "row_edges_official": self.n_images * self.edges,
            "edges_per_second_computed_layers": edges_per_second(
                self.n_images, sum(self.layer_edges[:depth]), self.seconds
            ),
            "row_edges_computed_per_second": work / self.seconds if self.seconds > 0 else None,
            # identical columns computed once: the distinct columns of each cached layer
            "column_classes": self.column_classes,
        }


def checked_layers(layers, n_neurons, result):
    """Yield the layers of the iterable ``layers``, each checked to be ``n_neurons`` square;
    the time spent producing them goes to ``result.read_seconds`` and their stored entries to
    ``result.edges`` and ``result.layer_edges`` (the one reading loop of every engine)."""
    source = iter(layers)
    while True:
        t0 = time.perf_counter()
        W = next(source, None)
        result.read_seconds += time.perf_counter() - t0
        if W is None:
            return
        if W.shape != (n_neurons, n_neurons):
            raise DimensionMismatch(
                f"layer {len(result.layer_edges) + 1} has shape {W.shape}, expected "
                f"({n_neurons}, {n_neurons}) to match images of {n_neurons} pixels"
            )
        result.edges += int(W.nnz)
        result.layer_edges.append(int(W.nnz))
        yield W


def edges_per_second(n_images, edges, seconds):
    """The official rate: ``images * sum_l nnz(W_l) / inference seconds``."""
    return n_images * edges / seconds if seconds > 0 else float("inf")
