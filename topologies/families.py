"""The one registry of topology families: :func:`generate` builds any of them as a
:class:`graphnn.Network`, and ``graphnn topo generate``, ``graphnn train --topology`` and the
Python API all go through it, with one vocabulary.

=============  ============================================  ===================================
family         structure                                     parameters
=============  ============================================  ===================================
``random``     Erdos-Renyi layers (SET)                      ``sizes``; ``density`` or
                                                             ``epsilon``
``erk``        Erdos-Renyi-Kernel allocation of a total      ``sizes``, ``density``
               density (RigL)
``ertl``       equal fan-in, partitioned inputs (Ertl)       ``sizes``; ``fan_in`` or
                                                             ``density`` (fan-in = density x
                                                             the layer's inputs)
``radixnet``   RadiX-Net: equal path counts (Robinett &      ``radices``, ``kron``, ``D``,
               Kepner)                                       ``trim``; ``sizes`` to check
``kronecker``  the Graph Challenge's permuted RadiX-Net      ``sizes`` (all one width N),
               (kron(ones(B, B), radix-2 layer))             ``block``
``rmat``       stochastic Kronecker layers, power-law        ``sizes`` (any widths),
               degrees (Chakrabarti et al.)                  ``density``, ``initiator``
``dense``      fully connected                               ``sizes``
=============  ============================================  ===================================
"""

import numpy as np

from graphnn.errors import GraphnnError
from graphnn.network import Network

from . import erdos_renyi, ertl, kronecker, radixnet
from ._validate import as_rng

__all__ = ["FAMILIES", "generate"]


def _need(value, name, family):
    if value is None:
        raise GraphnnError(f"family {family!r} needs {name}")
    return value


def _widths(layers):
    return [layers[0].shape[0]] + [W.shape[1] for W in layers]


# each family's builder: (family, sizes, parameters, rng, seed as given, dtype, progress) ->
# its layers


def _random(family, sizes, p, rng, seed, dtype, progress):
    return erdos_renyi.erdos_renyi(
        _need(sizes, "sizes", family), density=p["density"], epsilon=p["epsilon"],
        seed=rng, dtype=dtype,
    )  # fmt: skip


def _erk(family, sizes, p, rng, seed, dtype, progress):
    density = _need(p["density"], "density", family)
    return erdos_renyi.erdos_renyi(sizes, density=density, erk=True, seed=rng, dtype=dtype)


def _ertl(family, sizes, p, rng, seed, dtype, progress):
    sizes = _need(sizes, "sizes", family)
    fan_in = p["fan_in"]
    if fan_in is None:
        density = _need(p["density"], "fan_in or density", family)
        if not 0 < density <= 1:
            raise GraphnnError(f"density must be in (0, 1], got {density}")
        fan_in = [max(1, round(density * n)) for n in sizes[:-1]]
    return ertl.ertl(sizes, fan_in, seed=rng, dtype=dtype)


def _radixnet(family, sizes, p, rng, seed, dtype, progress):
    trim = p["trim"] if p["trim"] is not None else (sizes[0] if sizes else None)
    radices = _need(p["radices"], "radices", family)
    return radixnet.radixnet(radices, p["kron"], D=p["D"], trim=trim, dtype=dtype)


def _kronecker(family, sizes, p, rng, seed, dtype, progress):
    sizes = _need(sizes, "sizes", family)
    if any(n != sizes[0] for n in sizes):
        raise GraphnnError(f"family 'kronecker' has one width for every layer, got {sizes}")
    # an int seed is the one 'graphnn challenge generate --seed' takes: the same network
    if not isinstance(seed, int | np.integer):
        seed = int(rng.integers(2**63))
    from tqdm import tqdm

    layers = kronecker.challenge_layers(
        sizes[0], len(sizes) - 1, block=p["block"], seed=seed, dtype=dtype
    )
    return list(tqdm(layers, total=len(sizes) - 1, desc="layers", unit="layer",
                     disable=not progress, leave=False))  # fmt: skip


def _rmat(family, sizes, p, rng, seed, dtype, progress):
    density = _need(p["density"], "density", family)
    return kronecker.rmat(
        _need(sizes, "sizes", family), density, initiator=p["initiator"], seed=rng, dtype=dtype
    )


def _dense(family, sizes, p, rng, seed, dtype, progress):
    return erdos_renyi.dense(_need(sizes, "sizes", family), dtype=dtype)


# the registry: a family is added here (its builder above, its row in the module's table)
# family: (builder, the parameters it uses, recorded in the network's metadata)
_REGISTRY = {
    "random": (_random, ("density", "epsilon")),
    "erk": (_erk, ("density",)),
    "ertl": (_ertl, ("density", "fan_in")),
    "radixnet": (_radixnet, ("radices", "kron", "D", "trim")),
    "kronecker": (_kronecker, ("block",)),
    "rmat": (_rmat, ("density", "initiator")),
    "dense": (_dense, ()),
}
FAMILIES = tuple(_REGISTRY)


def generate(
    family,
    sizes=None,
    *,
    density=None,
    epsilon=None,
    fan_in=None,
    radices=None,
    kron=None,
    D=None,
    trim=None,
    block=16,
    initiator=kronecker.RMAT_INITIATOR,
    seed=None,
    dtype=np.float64,
    progress=False,
):
    """A network of the topology ``family`` (see the table above): the structure, with the
    generator's values (ones, or the challenge's 1/16), zero biases and ReLU. ``progress``
    shows a bar over the layers of the deep families (``kronecker``) on stderr.

    ``seed`` is an int, a sequence of ints, a ``numpy.random.Generator`` or None; the same seed
    gives the same network. ``metadata`` records the family and its parameters.

    Examples
    --------
    >>> net = generate("ertl", [64, 32, 10], density=0.25, seed=0)
    >>> net.sizes, net.nnz
    ([64, 32, 10], [512, 80])
    """
    if family not in FAMILIES:
        raise GraphnnError(f"family {family!r} is not valid; choose from {', '.join(FAMILIES)}")
    sizes = None if sizes is None else [int(n) for n in sizes]
    params = dict(density=density, epsilon=epsilon, fan_in=fan_in, radices=radices, kron=kron,
                  D=D, trim=trim, block=block, initiator=initiator)  # fmt: skip
    build, uses = _REGISTRY[family]
    layers = build(family, sizes, params, as_rng(seed), seed, dtype, progress)
    if sizes is not None and _widths(layers) != sizes:
        raise GraphnnError(
            f"the {family} network has widths {'-'.join(map(str, _widths(layers)))} but sizes "
            f"asks for {'-'.join(map(str, sizes))}"
            + (": choose radices and kron to match" if family == "radixnet" else "")
        )
    used = {k: v for k, v in params.items() if v is not None and k in uses}
    seed_meta = seed if isinstance(seed, int | type(None)) else "generator"
    return Network(layers, metadata={"family": family, "params": used, "seed": seed_meta})
