"""Sparse network topologies: generators (one module per family) and analysis.

The generators land with the Topologies issue; ``graphnn topo`` reports that until then.
"""
