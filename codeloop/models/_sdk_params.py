"""Small adapters between SDKs and ``OpenAIModel``'s request loop: ``fit_to_sdk`` puts parameters the
installed SDK release does not name in ``extra_body`` (releases add and drop named parameters), and
``ClosableStream`` gives an SDK's async generator of chunks the ``close()`` the loop calls."""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["fit_to_sdk", "ClosableStream"]

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


class ClosableStream:
    """An async iterable of stream chunks with an async ``close()`` (closes the generator if it has one)."""

    def __init__(self, chunks: Any):
        self.chunks = chunks

    def __aiter__(self) -> Any:
        return self.chunks.__aiter__()

    async def close(self) -> None:
        aclose = getattr(self.chunks, "aclose", None)
        if aclose is not None:
            await aclose()
