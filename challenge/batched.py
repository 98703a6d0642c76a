"""Exact challenge inference on the CPU in memory-bounded batches of images, one thread per batch.

The network is read once, first: each layer is checked, counted, kept in a layer cache while
the cache fits its share of the memory budget, and tested with one row of ``ymax`` (does a
saturated row stay saturated through it?). Then the live images go through the cached layers in
batches, each batch on one thread from its first layer to its last (``graphnn.challenge_kernel``),
so threads never wait for each other: under a busy neighbour the slowed thread takes fewer
batches. Rows that outlive the cache (none, on the official and generated networks) continue
through the rest of the network re-read in cache-sized chunks.

Exact shortcuts, reported in the result:

* a row that becomes empty is dropped (it stays empty);
* a row saturated at ``ymax`` in every neuron is equal to every other such row; when a row of
  ``ymax`` stays one through every later layer (``collapse``), the row is a category and stops.
  Where a later layer would change it, it goes on like any other row (exact in every network).
"""

import functools
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from graphnn import challenge_kernel as kernel
from graphnn.errors import GraphnnError
from graphnn.system import available_memory, usable_cpus

from .result import InferenceResult, checked_layers

__all__ = ["infer_batched", "default_memory_limit"]


# Batches run at once per CPU by default. Beside a busy process the scheduler tends to leave
# both of two threads on one CPU (the other runs the neighbour); with four, each CPU keeps
# some: official 12,000 rows 1.99x -> 1.38x and generated 65536 x 120 with 3,000 images 1.61x
# -> 1.33x the quiet time, the quiet time unchanged (2 cores, 2026-12-06).
THREADS_PER_CPU = 2


def check_settings(dtype, memory_limit, threads):
    """``(dtype, memory_limit, threads)`` checked, the defaults filled in: float32 or
    float64, at least 1 MiB, at least one thread."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise GraphnnError(f"dtype must be float32 or float64, got {dtype}")
    memory_limit = default_memory_limit() if memory_limit is None else int(memory_limit)
    if memory_limit < 1 << 20:
        raise GraphnnError(f"memory_limit must be at least 1 MiB, got {memory_limit} bytes")
    threads = THREADS_PER_CPU * usable_cpus() if threads is None else int(threads)
    if threads < 1:
        raise GraphnnError(f"threads must be at least 1, got {threads}")
    return dtype, memory_limit, threads


def default_memory_limit():
    """Half the memory available now (``MemAvailable``; 4 GiB where it cannot be read)."""
    return available_memory() // 2


class _Source:
    """The layers as a sequence, a re-readable source (a zero-argument callable returning an
    iterator) or a one-shot iterable; ``stream(skip)`` yields them from layer ``skip``."""

    def __init__(self, layers):
        self.callable = callable(layers)
        self.sequence = not self.callable and hasattr(layers, "__getitem__")
        self.layers = layers
        self._first = None if (self.callable or self.sequence) else iter(layers)

    def stream(self, skip=0):
        if self.sequence:
            return iter(self.layers[skip:])
        if self.callable:
            it = iter(self.layers())
            for _ in range(skip):
                next(it, None)
            return it
        if self._first is None or skip:
            raise GraphnnError(
                "the network does not fit the layer cache of memory_limit and its layers can "
                "be read only once: pass a callable that yields them again, or a larger "
                "memory_limit"
            )
        it, self._first = self._first, None
        return it


def infer_batched(
    layers,
    images,
    bias,
    *,
    ymax=32.0,
    dtype="float64",
    memory_limit=None,
    threads=None,
    batch_rows=None,
    interleave=None,
    classes=True,
    saturation=True,
    progress=False,
    n_layers=None,
):
    """:func:`challenge.inference.infer` on the CPU kernel; same result and fields.

    Parameters
    ----------
    layers : sequence, callable or iterable of (N x N) sparse matrices
        A callable (returning a fresh iterator) lets networks larger than the layer cache be
        re-read; a one-shot iterable must fit it.
    images, bias, ymax, progress, n_layers
        As for :func:`challenge.inference.infer`.
    dtype : {"float32", "float64"}
        Arithmetic of activations and weights (float64 is bit-identical to the reference loop
        and about as fast here; the official problems are exact in both).
    memory_limit : int, optional
        Bytes for the layer cache (a third) and the batches in flight (the rest); default
        :func:`default_memory_limit`. Batches shrink to fit it; the images themselves and
        the result are outside it.
    threads : int, optional
        Batches run at once (default: :data:`THREADS_PER_CPU` for each CPU this process may
        use).
    batch_rows : int, optional
        Images per batch (default: as many as fit, and at least 8 batches per thread so a
        slowed thread does not hold the others up).
    interleave : bool, optional
        Relabel the neurons by :func:`graphnn.challenge_kernel.block_interleave` (same
        categories; a challenge row's 32 outputs then share 4 cache lines instead of 32).
        Default: from 4,096 neurons (a multiple of 16) on. ``bench/challenge.py --scale
        --interleave`` measured 1.2-1.3x at 4,096 neurons, 2.0x at 16384x120 and 1.8-3.6x at
        65536x120 (300 and 3,000 images); at 1,024 the accumulator fits L1 and it gains
        nothing (1.05x). With ``classes`` it is the default at every multiple of 16: a
        relabelled challenge layer's classes are runs of consecutive columns, written class
        by class (official 1024x120, 12,000 rows: 1.22x).
    classes : bool
        Group each layer's identical columns (same rows, same values, verified) and compute
        each class's sum once per row (:func:`graphnn.challenge_kernel.column_classes`): a
        challenge layer has 16 copies of every column. Bit-identical rows and counts; a layer
        without shared columns runs as before. ``result.column_classes`` lists the distinct
        columns of each cached layer.
    saturation : bool
        Stop a row saturated at ``ymax`` in every neuron where a row of ``ymax`` stays one
        through every later layer (it is a category). Off, such rows go through every layer
        like the others (same categories; shows the shortcut's effect).
    """
    dtype, memory_limit, threads = check_settings(dtype, memory_limit, threads)
    images = sp.csr_array(images)
    n_images, n = images.shape
    ymax = np.inf if ymax is None else float(ymax)
    result = InferenceResult(None, n_images, n, 0, 0, 0.0)
    source = _Source(layers)
    if interleave is None:  # relabelled, a challenge layer's classes are runs of columns
        interleave = n % 16 == 0 and (classes or n >= INTERLEAVE_FROM)
    elif interleave and n % 16:
        raise GraphnnError(f"interleave needs a multiple of 16 neurons, got {n}")
    relabel = kernel.block_interleave(n) if interleave else None

    _warm(dtype)  # load or compile the kernels before any clock starts
    cache_budget = memory_limit // 3
    with ThreadPoolExecutor(threads) as pool:
        cache, collapse = _read_network(
            source, kernel.LayerStack(n, dtype, relabel, classes), bias, ymax, cache_budget, pool,
            threads, result, progress, n_layers, saturation,
        )  # fmt: skip
        _run_images(
            source, images, cache, collapse, dtype, bias, ymax, memory_limit - cache_budget,
            cache_budget, threads, batch_rows, pool, result, progress,
        )  # fmt: skip
    return result


def _read_network(source, cache, bias, ymax, cache_budget, pool, threads, result, progress,
                  n_layers, saturation):  # fmt: skip
    """1. The network, read once: shapes, edges, which layers keep a row of ymax (tested on the
    pool while the next layer is read); the first layers are kept in ``cache`` (an empty
    :class:`LayerStack`), converted, while they fit ``CHUNK_BYTES``. Returns ``(cache,
    collapse)`` (no layer collapses without ``saturation``)."""
    n, dtype, relabel = cache.n, cache.dtype, cache.relabel
    eager = min(cache_budget, CHUNK_BYTES)
    # tasks of a few layers on the pool: the saturation tests, and the conversion into the
    # cache while it is a prefix that fits (a hand-off costs a thread's wake-up: ~0.1 ms)
    tasks, pending, group = [], deque(), []
    caching = True  # the cache is a prefix of the network
    converted = 0  # the cached layers' full size: the eager cache holds as many layers either way

    def submit():
        if group:
            task = pool.submit(_layer_tasks, cache, list(group), dtype, bias, ymax, relabel)
            tasks.append(task)
            pending.append(task)
            group.clear()

    bar = tqdm(total=n_layers, desc="reading layers", unit="layer", disable=not progress,
               leave=False)  # fmt: skip
    for W in checked_layers(source.stream(), n, result):
        t1 = time.perf_counter()
        W = sp.csr_array(W)
        slot = None
        if caching:
            scale = kernel.uniform_scale(W.data)
            converted += cache.bytes_for(W, scale)
            caching = converted <= eager
        if caching:
            if not cache.has_room(W, scale):  # the buffers move: no fill may be writing there
                submit()
                _wait(pending, 0)
            slot = cache.reserve(W, scale)
        group.append((W, slot))
        if sum(g.nnz for g, _ in group) >= TASK_EDGES:
            submit()
        _wait(pending, 2 * threads)  # bound the layers held by pending tasks
        result.prepare_seconds += time.perf_counter() - t1
        bar.update()
    bar.close()
    t0 = time.perf_counter()
    submit()
    _wait(pending, 0)
    stays = [ok for task in tasks for ok in task.result()]
    result.prepare_seconds += time.perf_counter() - t0
    n_total = len(stays)
    if n_total == 0:
        raise GraphnnError("the network has no layers")
    t0 = time.perf_counter()
    cache.arrays()  # classes: the filled layers stacked now, not in the first batch's time
    result.prepare_seconds += time.perf_counter() - t0
    if cache.classes:
        result.column_classes = list(cache.class_counts)
    result.n_layers = n_total
    # a row saturated after layer l may stop iff a row of ymax stays one through l+1..L
    collapse = np.ones(n_total, np.bool_)
    collapse[:-1] = np.logical_and.accumulate(np.array(stays[::-1]))[::-1][1:]
    collapse &= saturation
    return cache, collapse


def _run_images(source, images, cache, collapse, dtype, bias, ymax, state_budget, cache_budget,
                threads, batch_rows, pool, result, progress):  # fmt: skip
    """2. The images in groups that fit ``state_budget``; each group goes through the network in
    chunks of layers (the cached prefix, then layers read again and cached while they fit
    ``cache_budget``) until none of its rows is live; within a chunk, batches of rows run on the
    pool's threads. 3. The categories and the per-layer counts behind the report."""
    n_images, n = images.shape
    n_total = len(collapse)
    live = np.flatnonzero(np.diff(images.indptr))
    result.input_rows = int(live.size)
    fate_layer = np.full(n_images, -1, np.int64)
    fate_kind = np.full(n_images, -1, np.int8)
    state_budget = max(state_budget, 1 << 20)
    worst_row = n * (4 + dtype.itemsize)
    group_rows = max(1, state_budget // (4 * worst_row))  # rows, their outputs, two buffers
    if batch_rows is None:
        batch_rows = max(64, -(-min(live.size, group_rows) // (8 * threads)))
    batch_rows = max(1, min(int(batch_rows), group_rows))
    tail = (collapse, dtype.type(bias), dtype.type(ymax), fate_layer, fate_kind)
    local = threading.local()

    def run(rows, stack, first, last, offset):
        ws = getattr(local, "ws", None) or kernel.Workspace(dtype)
        local.ws = ws
        count = ws.load(*rows)
        ws.bufs, which, count = kernel.run_rows(ws.bufs, count, *stack, first, last, offset, *tail)
        return ws.rows(which, count)

    ended, chunk_reading, chunk_preparing = [], 0.0, 0.0
    bar = tqdm(total=live.size, desc="images", unit="image", disable=not progress, leave=False)
    t_start = time.perf_counter()
    for lo in range(0, live.size, group_rows):
        ids = live[lo : lo + group_rows]
        rows = [  # arguments of Workspace.load: a CSR, its rows, their image ids, the relabelling
            (images.indptr, images.indices, images.data, ids[b : b + batch_rows],
             ids[b : b + batch_rows], cache.relabel)
            for b in range(0, ids.size, batch_rows)
        ]  # fmt: skip
        done, stream = 0, None
        while rows and done < n_total:
            if done < len(cache):
                stack, first, last, offset = cache.arrays(), done, len(cache), 0
            else:
                t0 = time.perf_counter()
                stream = stream or source.stream(done)
                layers, nbytes = _read_chunk(stream, cache, n_total - done)
                t1 = time.perf_counter()
                chunk_reading += t1 - t0
                if len(cache) == done and cache.nbytes + nbytes <= cache_budget:
                    _store(cache, layers, pool)  # later groups will not read them again
                    stack, first, last, offset = cache.arrays(), done, len(cache), 0
                else:
                    chunk = _store(kernel.LayerStack(n, dtype, cache.relabel, cache.classes),
                                   layers, pool)  # fmt: skip
                    stack, first, last, offset = chunk.arrays(), 0, len(chunk), done
                chunk_preparing += time.perf_counter() - t1
            step = functools.partial(run, stack=stack, first=first, last=last, offset=offset)
            parts = list(pool.map(step, rows))
            done = offset + last
            # the live rows go on, already relabelled
            rows = [(*p[:3], np.arange(p[3].size), p[3]) for p in parts if p[3].size]
        ended += [r[4] for r in rows]
        bar.update(ids.size)
    bar.close()
    result.seconds += time.perf_counter() - t_start - chunk_reading - chunk_preparing
    result.read_seconds += chunk_reading
    result.prepare_seconds += chunk_preparing

    ended = np.concatenate(ended) if ended else np.empty(0, np.int64)
    saturated = np.flatnonzero(fate_kind == kernel.SATURATED)
    result.categories = np.sort(np.concatenate([ended, saturated])) + 1
    stopped = np.bincount(fate_layer[fate_layer >= 0], minlength=n_total)[:n_total]
    result.live_rows = (live.size - np.cumsum(stopped)).tolist()
    sat_at = np.bincount(fate_layer[saturated], minlength=n_total)[:n_total]
    result.saturated_rows = np.cumsum(sat_at).tolist()
    if saturated.size:
        result.saturated_from = int(fate_layer[saturated].min()) + 1


def _layer_tasks(cache, group, dtype, bias, ymax, relabel):
    """For each ``(W, slot)`` of ``group``: convert ``W`` into ``cache`` where ``slot`` places
    it (None: not cached), and say whether a row of ``ymax`` stays one through it."""
    out = []
    for W, slot in group:
        if slot is not None:
            cache.fill(W, slot)
        scale = None if slot is None else slot[3]
        out.append(kernel.stays_saturated(W, dtype, bias, ymax, relabel, scale))
    return out


def _wait(futures, keep):
    """Wait for the oldest of ``futures`` (a deque) until at most ``keep`` are pending."""
    while len(futures) > keep or (futures and futures[0].done()):
        futures.popleft().result()


@functools.cache
def _warm(dtype):
    """Run the kernels once on a 2-neuron problem (numba loads or compiles them on first use,
    which would otherwise be timed as inference)."""
    W = sp.csr_array(np.ones((2, 2)))
    kernel.stays_saturated(W, dtype, -0.5, 1.0)
    kernel.stays_saturated(sp.csr_array(np.full((2, 2), 0.3)), dtype, -0.5, 1.0)
    stack = kernel.LayerStack(2, dtype, np.arange(2, dtype=np.uint32))
    stack.append(W)
    stack.append(sp.csr_array(np.full((2, 2), 0.3)))
    ws = kernel.Workspace(dtype)
    ws.load(W.indptr, W.indices, W.data, np.arange(2), np.arange(2), stack.relabel)
    ws.load(W.indptr, W.indices, W.data, np.arange(2), np.arange(2))
    kernel.run_rows(ws.bufs, 2, *stack.arrays(), 0, 1, 0, np.ones(1, np.bool_), dtype.type(-0.5),
                    dtype.type(1.0), np.zeros(2, np.int64), np.zeros(2, np.int8))  # fmt: skip
    classed = kernel.LayerStack(2, dtype, classes=True)
    classed.append(W)
    ws.load(W.indptr, W.indices, W.data, np.arange(2), np.arange(2))
    kernel.run_rows(ws.bufs, 2, *classed.arrays(), 0, 1, 0, np.ones(1, np.bool_),
                    dtype.type(-0.5), dtype.type(1.0), np.zeros(2, np.int64),
                    np.zeros(2, np.int8))  # fmt: skip


CHUNK_BYTES = 256 << 20  # layers read at a time beyond the cache, and the eager cache
TASK_EDGES = 1 << 17  # edges of the layers read handed to the pool at once (a few layers)
INTERLEAVE_FROM = 4096  # neurons from which block_interleave is the default (measured)


def _read_chunk(stream, stack, remaining):
    """The next layers of ``stream`` with their uniform scales, as many as fit ``CHUNK_BYTES``
    kept in a stack like ``stack`` (at least one), and those bytes."""
    layers, nbytes = [], 0
    while len(layers) < remaining and (not layers or nbytes < CHUNK_BYTES):
        W = next(stream, None)
        if W is None:
            raise GraphnnError(
                "the layer source gave fewer layers when read again: the network changed "
                "during the run"
            )
        W = sp.csr_array(W)
        scale = kernel.uniform_scale(W.data)
        layers.append((W, scale))
        nbytes += stack.bytes_for(W, scale)
    return layers, nbytes


def _store(stack, layers, pool):
    """Append ``layers`` (``(W, scale)`` pairs) to ``stack``: placed in order, then relabelled
    or copied on the pool's threads."""
    slots = [stack.reserve(W, scale) for W, scale in layers]  # any growth happens here
    list(pool.map(stack.fill, [W for W, _ in layers], slots))
    return stack
