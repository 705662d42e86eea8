"""The README stays the short page a newcomer reads first; the rest is in docs/ (MkDocs, built
strictly by `make test`, which checks the links between the pages and from the README)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_LIMIT = 16_000  # bytes


def test_readme_stays_short():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, (f"README.md is {size} bytes, over {README_LIMIT}: move a "
                                  "subject into docs/ and link it")


def test_readme_gives_the_two_commands():
    text = (ROOT / "README.md").read_text()
    for command in ("make demo", "make test"):
        assert f"\n{command} " in text, command


def test_folder_readmes_point_at_pages_that_exist():
    # mkdocs checks links inside docs/ and from README.md; these three are outside its reach.
    for readme in ("emulator/README.md", "tools/README.md", "tools/fotatools/cloud/README.md"):
        path = ROOT / readme
        links = re.findall(r"\]\(([^)#]+)\)", path.read_text())
        assert links, readme
        for link in links:
            assert (path.parent / link).resolve().is_file(), (readme, link)
