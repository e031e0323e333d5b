"""Old keyword spellings of public functions, still accepted with a DeprecationWarning.

The library says ``host_slowdown`` (host CPU seconds per reference-host CPU second),
``confidence_level`` and ``threads`` everywhere; code written against the older spellings
(``host_factor``, ``confidence``, ``cores``) keeps working, with a warning that names the new one.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import TypeVar

__all__ = ["renamed_keywords"]

F = TypeVar("F", bound=Callable)


def renamed_keywords(**renames: str) -> Callable[[F], F]:
    """Decorator: accept each old keyword (the argument name) as its new name (the value).

    Examples
    --------
    >>> @renamed_keywords(cores="threads")
    ... def plan(*, threads=1):
    ...     return threads
    >>> import warnings
    >>> with warnings.catch_warnings(record=True):
    ...     plan(cores=4)
    4
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if new in kwargs:
                    raise TypeError(f"{func.__name__}() got both {old}= and its new name {new}=")
                warnings.warn(
                    f"{func.__name__}(): {old}= is deprecated; use {new}=",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
