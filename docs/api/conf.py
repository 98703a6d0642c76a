"""Sphinx configuration of graphnn's API reference (``sphinx-build -W docs/api OUT``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

project = "graphnn"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_mock_imports = ["cupy", "graphblas", "dask", "distributed"]
html_theme = "alabaster"
exclude_patterns = ["_build"]


def _skip(app, what, name, obj, skip, options):
    """scikit-learn's generated ``set_*_request`` methods: its own docs describe them."""
    return True if name.startswith("set_") and name.endswith("_request") else None


def setup(app):
    app.connect("autodoc-skip-member", _skip)
