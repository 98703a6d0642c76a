"""Graph Challenge inference partitioned by images over Dask distributed.

Every worker gets a contiguous block of images and a picklable *layer source* (a zero-argument
callable yielding the layers: read from a path the workers can see, or regenerated from a seed),
so layers are streamed or regenerated per worker rather than shipped. The categories are the
union of the blocks' categories, identical to a single-process run.
"""

import time

import numpy as np
import scipy.sparse as sp

from graphnn.errors import BackendUnavailable, GraphnnError

from .inference import InferenceResult, infer

__all__ = ["infer_distributed"]


def _run_block(source, images, offset, bias, ymax, backend):
    r = infer(source(), images, bias, ymax=ymax, backend=backend)
    return r.categories + offset, r.seconds, r.read_seconds, r.edges, r.n_layers


def _client(workers, scheduler):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise BackendUnavailable(
            "workers and scheduler need Dask distributed: pip install 'graphnn[dist]'"
        ) from None
    if scheduler is not None:
        try:
            return Client(scheduler, timeout="10s"), None
        except (OSError, TimeoutError) as e:
            raise GraphnnError(f"scheduler {scheduler}: cannot connect ({e})") from None
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return Client(cluster), cluster


def infer_distributed(
    source, images, bias, *, ymax=32.0, backend="numba", workers=2, scheduler=None
):
    """Run :func:`challenge.inference.infer` on image blocks over a Dask cluster.

    ``workers`` starts a LocalCluster of that many processes; ``scheduler`` (an address such
    as ``tcp://host:8786``) joins an existing cluster instead, whose workers must be able to
    call ``source`` (see the paths it reads). ``seconds`` in the result is the slowest block's
    inference time, ``read_seconds`` its reading time.
    """
    if scheduler is None and (not isinstance(workers, int) or workers < 1):
        raise GraphnnError(f"workers must be an integer >= 1, got {workers!r}")
    images = sp.csr_array(images)
    t0 = time.perf_counter()
    client, cluster = _client(workers, scheduler)
    try:
        n_blocks = max(1, min(len(client.nthreads()), images.shape[0]))
        bounds = np.linspace(0, images.shape[0], n_blocks + 1).astype(int)
        futures = [
            client.submit(_run_block, source, images[lo:hi], lo, bias, ymax, backend, pure=False)
            for lo, hi in zip(bounds[:-1], bounds[1:])
        ]
        blocks = client.gather(futures)
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
        wall_seconds=time.perf_counter() - t0,
    )
    return result
