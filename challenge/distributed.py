"""Graph Challenge inference partitioned by images over Dask distributed.

Every worker gets a contiguous block of images and a picklable *layer source* (a zero-argument
callable yielding the layers: read from a path the workers can see, or regenerated from a seed),
so layers are streamed or regenerated per worker rather than shipped. The categories are the
union of the blocks' categories, identical to a single-process run.
"""

import threading
import time

import numpy as np
import scipy.sparse as sp

from graphnn.errors import BackendUnavailable, GraphnnError

from .batched import check_settings
from .inference import InferenceResult, infer

__all__ = ["infer_distributed"]


def _run_block(source, images, offset, bias, ymax, backend, settings):
    r = infer(source, images, bias, ymax=ymax, backend=backend, **settings)
    return r.categories + offset, r.seconds, r.read_seconds, r.edges, r.n_layers, r.prepare_seconds


CONNECT_SECONDS = 10.0


def _connect(Client, scheduler, seconds):
    """A client of the scheduler at ``scheduler``, or an error within about ``seconds``: the
    connection is made in a daemon thread, since a server that accepts but never speaks Dask
    (an HTTP server, a silent listener) holds Dask's own timeout off indefinitely."""
    done = {}

    def connect():
        try:
            done["client"] = Client(scheduler, timeout=f"{seconds:g}s")
        except Exception as e:  # OSError, TimeoutError, ValueError for a malformed address
            done["error"] = e

    thread = threading.Thread(target=connect, daemon=True, name="graphnn-dask-connect")
    thread.start()
    thread.join(seconds + 5)
    if "client" in done:
        return done["client"]
    e = done.get("error")
    reason = f"{type(e).__name__}: {e}" if e else f"no Dask scheduler answered in {seconds:g} s"
    raise GraphnnError(f"scheduler {scheduler}: cannot connect ({reason})")


def _client(workers, scheduler):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise BackendUnavailable(
            "workers and scheduler need Dask distributed: pip install 'graphnn[dist]'"
        ) from None
    if scheduler is not None:
        return _connect(Client, scheduler, CONNECT_SECONDS), None
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return Client(cluster), cluster


def _gather(client, futures, worker_timeout):
    """The futures' results; an error, not a hang, when no worker is left for
    ``worker_timeout`` seconds or a block keeps killing its workers."""
    from dask.distributed import wait

    lost_since = None
    while True:
        try:
            wait(futures, timeout=min(5, worker_timeout))
            break
        except TimeoutError:
            if client.nthreads():
                lost_since = None
            elif lost_since is None:
                lost_since = time.monotonic()
            elif time.monotonic() - lost_since > worker_timeout:
                raise GraphnnError(
                    f"every Dask worker is gone (none for {worker_timeout:g} s): the run cannot "
                    "finish; restart the workers and run again"
                ) from None
    try:
        return client.gather(futures)
    except Exception as e:  # KilledWorker and the like, raised by Dask on the client
        if isinstance(e, GraphnnError):
            raise
        raise GraphnnError(f"a Dask block failed ({type(e).__name__}: {e})") from None


def infer_distributed(
    source,
    images,
    bias,
    *,
    ymax=32.0,
    backend="numba",
    workers=2,
    scheduler=None,
    worker_timeout=60.0,
    dtype=None,
    memory_limit=None,
    threads=None,
):
    """Run :func:`challenge.inference.infer` on image blocks over a Dask cluster.

    ``workers`` starts a LocalCluster of that many processes; ``scheduler`` (an address such
    as ``tcp://host:8786``) joins an existing cluster instead, whose workers must be able to
    call ``source`` (see the paths it reads). ``seconds`` in the result is the slowest block's
    inference time, ``read_seconds`` and ``prepare_seconds`` the slowest reading and network
    preparation. A cluster without workers for
    ``worker_timeout`` seconds (at the start or during the run) is an error, not a hang.
    ``dtype``, ``memory_limit`` and ``threads`` are each worker's, as :func:`infer` takes
    them (checked here first).
    """
    if backend == "numba":  # checked here, before any worker starts
        check_settings(dtype or "float64", memory_limit, threads)
    settings = {"dtype": dtype, "memory_limit": memory_limit, "threads": threads}
    if scheduler is None and (not isinstance(workers, int) or workers < 1):
        raise GraphnnError(f"workers must be an integer >= 1, got {workers!r}")
    images = sp.csr_array(images)
    t0 = time.perf_counter()
    client, cluster = _client(workers, scheduler)
    try:
        try:
            client.wait_for_workers(1, timeout=worker_timeout)
        except TimeoutError:
            raise GraphnnError(
                f"scheduler {scheduler}: no worker joined within {worker_timeout:g} s"
            ) from None
        n_blocks = max(1, min(len(client.nthreads()), images.shape[0]))
        bounds = np.linspace(0, images.shape[0], n_blocks + 1).astype(int)
        futures = [
            client.submit(
                _run_block, source, images[lo:hi], lo, bias, ymax, backend, settings, pure=False
            )
            for lo, hi in zip(bounds[:-1], bounds[1:])
        ]
        blocks = _gather(client, futures, worker_timeout)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    categories = np.sort(np.concatenate([b[0] for b in blocks]))
    result = InferenceResult(
        categories=categories,
        n_images=images.shape[0],
        n_neurons=images.shape[1],
        n_layers=blocks[0][4],
        edges=blocks[0][3],
        seconds=max(b[1] for b in blocks),
        read_seconds=max(b[2] for b in blocks),
        prepare_seconds=max(b[5] for b in blocks),
        wall_seconds=time.perf_counter() - t0,
    )
    return result
