"""Docs pages that are README sections stay equal to them (scripts/sync_docs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import sync_docs  # noqa: E402


def test_docs_pages_equal_their_readme_sections():
    """docs/population.md and docs/sweeps.md had drifted from the README in both directions
    (stale numbers and messages on one side, whole paragraphs missing on the other)."""
    assert sync_docs.main(["--check"]) == 0


def test_links_are_rewritten_for_the_docs_folder():
    text = ("[a](#scale-versus-shape) [b](docs/synops_nir.md#x) ![c](docs/events.png) "
            "[d](scripts/bench.py) [e](https://x.org/a/b) [f](README.md)")
    assert sync_docs.as_doc(text) == (
        "[a](../README.md#scale-versus-shape) [b](synops_nir.md#x) ![c](events.png) "
        "[d](../scripts/bench.py) [e](https://x.org/a/b) [f](README.md)")


def test_the_normalized_surrogate_figure_has_its_own_default_file(tmp_path, monkeypatch):
    """``plot_surrogates.py --normalize`` replaced ``outputs/surrogates.png`` (the README's
    first figure) without a word (tester)."""
    import matplotlib.pyplot as plt
    import plot_surrogates

    monkeypatch.chdir(tmp_path)
    drawn = []
    monkeypatch.setattr(plot_surrogates, "make_figure", lambda normalize=False: drawn.append(
        normalize) or plt.figure())
    assert plot_surrogates.main([]) == Path("outputs/surrogates.png")
    assert plot_surrogates.main(["--normalize"]) == Path("outputs/surrogates_normalized.png")
    assert drawn == [False, True]
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == [
        "surrogates.png", "surrogates_normalized.png"]
