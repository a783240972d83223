"""The /metrics scrape, for the view (which may not import `tasks_app.metrics` itself)."""

from __future__ import annotations

from ..metrics import exposition


def metrics_exposition(accept: str) -> tuple[bytes, str]:
    """One scrape's body and Content-Type, negotiated from the Accept header."""
    return exposition.exposition(accept)


def metrics_content_type(accept: str) -> str:
    """The Content-Type a scrape would answer with, collecting nothing (for HEAD)."""
    return exposition.content_type_for(accept)
