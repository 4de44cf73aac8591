"""Face embedding: every embedder implements ``Embedder`` and is built with ``create(name)``."""

from facebank.embed.base import ChipSpec, Embedder, available, create, l2_normalise, register

__all__ = ["ChipSpec", "Embedder", "available", "create", "l2_normalise", "register"]
