"""facebank as a service: a FastAPI app (REST API under /v1 + a web page at /)."""

from facebank.server.app import create_app
from facebank.server.context import ServerConfig

__all__ = ["ServerConfig", "create_app"]
