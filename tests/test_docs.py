"""The API reference builds from the docstrings without a warning (``sphinx-build -W``)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_reference_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="the docs extra (sphinx) is not installed")
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(ROOT / "docs" / "api"),
         str(tmp_path / "html")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    page = (tmp_path / "html" / "training.html").read_text()
    assert "SparseMLP" in page and "loss_and_grads" in page  # documented from the docstrings


def _anchors(markdown):
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to -."""
    import re

    return {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in markdown.splitlines()
        if line.startswith("#")
    }


def test_every_relative_link_of_the_readme_and_docs_resolves():
    import re

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if "://" in target:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.name}: {target} (no file)")
            elif anchor and anchor not in _anchors(dest.read_text()):
                broken.append(f"{page.name}: {target} (no heading)")
    assert not broken, broken
