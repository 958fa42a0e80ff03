"""Fit a request to the SDK method that sends it: parameters the installed release does not name go in
``extra_body``, so the provider still receives them (SDK releases add and drop named parameters)."""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["fit_to_sdk"]

_PARAMS: dict[Any, frozenset[str]] = {}


def fit_to_sdk(method: Any, request: dict[str, Any]) -> dict[str, Any]:
    key = getattr(method, "__func__", method)
    if key not in _PARAMS:
        _PARAMS[key] = frozenset(inspect.signature(method).parameters)
    known = _PARAMS[key]
    extra = {k: v for k, v in request.items() if k not in known}
    if not extra:
        return request
    fitted = {k: v for k, v in request.items() if k in known}
    fitted["extra_body"] = {**(request.get("extra_body") or {}), **extra}
    return fitted
