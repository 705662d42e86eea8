"""MkDocs hook (mkdocs.yml): the site's first page is the repository's README.md.

docs/index.md only says so; at build time its text is replaced by the README's, with the
README's links into docs/ made relative to the site (`docs/cli.md` -> `cli.md`), so that one
text serves both the repository's front page and the site, and `mkdocs build --strict` checks
the README's links too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def on_page_read_source(page: Any, config: Any) -> str | None:
    if page.file.src_uri != "index.md":
        return None
    readme = Path(config.config_file_path).parent / "README.md"
    return re.sub(r"\]\(docs/", "](", readme.read_text(encoding="utf-8"))
