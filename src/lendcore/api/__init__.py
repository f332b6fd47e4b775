"""The HTTP API (FastAPI): thin routes that parse, call one service, render."""

from lendcore.api.app import create_app

__all__ = ["create_app"]
