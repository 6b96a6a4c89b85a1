"""Write the docs pages that are sections of the README, so the two never drift apart.

    python scripts/sync_docs.py           # rewrite docs/population.md and docs/sweeps.md
    python scripts/sync_docs.py --check   # exit 1 naming the stale pages (tests/test_docs.py)

Each page is its README section verbatim, with the links rewritten for ``docs/``
(``docs/x.md`` -> ``x.md``, ``#anchor`` -> ``../README.md#anchor``, other relative paths ->
``../path``). Edit the README, then run this.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"population.md": "## Population training", "sweeps.md": "## Sweeps: which surrogate"}
HEADER = "<!-- The README's section, written by scripts/sync_docs.py: edit README.md. -->\n\n"


def section(readme: str, head: str) -> str:
    """The README's ``## `` section that starts with ``head``, up to the next one."""
    start = readme.index("\n" + head) + 1
    end = readme.find("\n## ", start)
    return readme[start:end + 1 if end > 0 else len(readme)]


def as_doc(text: str) -> str:
    """``text`` with its links relative to ``docs/``."""
    text = re.sub(r"\]\(docs/", "](", text)
    text = re.sub(r"\]\(#", "](../README.md#", text)
    return re.sub(r"\]\((?!https?:|\.\./|#|mailto:)([^)]+/[^)]*)\)", r"](../\1)", text)


def pages() -> dict[Path, str]:
    readme = (ROOT / "README.md").read_text()
    return {ROOT / "docs" / name: HEADER + as_doc(section(readme, head))
            for name, head in PAGES.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only say which pages are stale")
    args = ap.parse_args(argv)
    stale = [p for p, text in pages().items() if not p.is_file() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} differs from its README section: run "
                  "python scripts/sync_docs.py")
        return 1 if stale else 0
    for p, text in pages().items():
        p.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
