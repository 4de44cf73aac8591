"""facebank as a service: a FastAPI app (REST API under /v1 + a web page at /).

``create_app`` and ``ServerConfig`` are imported on first use, so the CLI can read the server's
small modules (keys, limits) without loading FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facebank.server.app import create_app
    from facebank.server.context import ServerConfig

__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from facebank.server.app import create_app

        return create_app
    if name == "ServerConfig":
        from facebank.server.context import ServerConfig

        return ServerConfig
    raise AttributeError(f"module 'facebank.server' has no attribute {name!r}")
