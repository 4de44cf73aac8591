"""Face detection: every detector implements ``Detector`` and is built with ``create(name)``."""

from facebank.detect.base import Detector, available, create, register

__all__ = ["Detector", "available", "create", "register"]
