"""The web page of ``regionreasoner ui``: static HTML, CSS and JavaScript, no build step (docs/serving.md).

The server serves ``static/index.html`` at ``GET /ui`` and this folder under ``/ui/static/``; the page calls the
``/v1`` routes and nothing else.  Nothing here is imported by the agent: the folder is package data.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["INDEX_HTML", "STATIC_DIR"]

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
"""The folder mounted at ``/ui/static/`` (index.html, app.js, app.css and the modules app.js imports)."""

INDEX_HTML: Path = STATIC_DIR / "index.html"
"""The page served at ``GET /ui``."""
