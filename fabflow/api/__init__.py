"""The HTTP API: ``create_app(settings)`` builds it (see ``fabflow.api.app``)."""

from __future__ import annotations

from fabflow.api.app import create_app

__all__ = ["create_app"]
