"""How long jobs report progress: a ``Progress`` wraps an iterable (the CLI passes a tqdm bar), and
``no_progress``, the default, reports nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

Progress = Callable[..., Iterable]


def no_progress(it: Iterable[T], **_: object) -> Iterable[T]:
    """The iterable itself: no progress shown (keyword arguments such as ``total`` are ignored)."""
    return it
