"""Retries with exponential backoff and jitter, for every provider.

What is retried: HTTP 408, 409, 429 and 5xx, timeouts and dropped connections. ``Retry-After`` (and
``retry-after-ms``) from the server is honoured. Retries are bounded twice: ``max_retries`` attempts after
the first, and ``max_wait`` seconds of total waiting. When they run out, or the error is not retryable
(400, 401, 404...), one ``ModelRequestError`` is raised with the HTTP status, the number of attempts, a
hint about what to do, and the provider's exception as ``__cause__``. Exceptions that are not request
errors at all (a TypeError in our code) pass through untouched.

Errors are classified by duck typing (``status_code``, ``response.headers``, exception class names), so
this module imports no SDK and works for any provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import ModelRequestError

__all__ = [
    "RetryPolicy",
    "Retrier",
    "ErrorInfo",
    "classify_error",
    "refuses_parameter",
    "retry_call",
    "stream_with_retries",
]

T = TypeVar("T")

# Exception class names (anywhere in the MRO) that mean "the request did not get a full answer".
_TRANSIENT_NAMES = frozenset(
    {
        "APIConnectionError",
        "APITimeoutError",
        "TransportError",
        "TimeoutException",
        "NetworkError",
        "RemoteProtocolError",
        "ReadError",
        "WriteError",
        "ConnectError",
        "ProtocolError",
        "IncompleteRead",
        "ServerDisconnectedError",
        "ClientConnectionError",
    }
)
_RETRY_STATUSES = frozenset({408, 409, 429})
_HINTS = {
    400: "The provider rejected the request: check the parameters and the model's capability profile.",
    401: "Authentication failed: check the API key.",
    403: "Access denied: check the API key's permissions for this model.",
    404: "Not found: check the model id and the api_base URL.",
    429: "Rate limited: set requests_per_minute, or raise max_retries / max_wait.",
}


@dataclass(frozen=True)
class RetryPolicy:
    """How to retry. Delays grow as ``initial_delay * 2**n`` (capped at ``max_delay``), +/- ``jitter``."""

    max_retries: int = 4
    initial_delay: float = 0.5
    max_delay: float = 20.0
    max_wait: float = 60.0
    jitter: float = 0.25

    def backoff(self, retry_number: int) -> float:
        delay = min(self.max_delay, self.initial_delay * (2 ** max(retry_number - 1, 0)))
        return max(0.0, delay * (1 + random.uniform(-self.jitter, self.jitter)))


@dataclass(frozen=True)
class ErrorInfo:
    is_request_error: bool  # False: not ours to wrap (a bug, a cancellation...)
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    description: str = ""


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, AttributeError):
        return None


def classify_error(exc: BaseException) -> ErrorInfo:
    status = getattr(exc, "status_code", None)  # openai.APIStatusError and friends
    if not isinstance(status, int):
        status = getattr(getattr(exc, "response", None), "status_code", None)  # httpx.HTTPStatusError
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = str(exc) or type(exc).__name__
    if isinstance(status, int) and status >= 400:
        retryable = status in _RETRY_STATUSES or status >= 500
        return ErrorInfo(True, retryable, status, _retry_after(exc), f"HTTP {status}: {text}")
    if isinstance(exc, TimeoutError | ConnectionError) or names & _TRANSIENT_NAMES:
        return ErrorInfo(True, True, None, None, f"{type(exc).__name__}: {text}")
    return ErrorInfo(False, False, status)


def refuses_parameter(exc: BaseException, info: ErrorInfo, name: str) -> bool:
    """Whether a request failed because the server does not accept the parameter ``name``: an HTTP 400/422
    whose error names it as a parameter (OpenAI's ``"param": "stop"``, or a message such as "Unsupported
    parameter: 'stop'" or "does not support parameter stop"). A message that merely contains the word does
    not count."""
    if info.status not in (400, 422):
        return False
    if getattr(exc, "param", None) == name:
        return True
    body = getattr(exc, "body", None)
    text = f"{exc} {json.dumps(body, default=str) if body is not None else ''}"
    word = re.escape(name)
    return any(
        re.search(pattern, text, re.IGNORECASE)
        for pattern in (
            rf"""['"`]{word}['"`]""",
            rf"\b(parameter|argument|param)s?:?\s+{word}\b",
            rf"\b{word}\s+(parameter|argument)",
            rf"\b{word}\s+(is|are)\s+not\s+(supported|allowed|permitted)",
        )
    )


class Retrier:
    """The retry state of one logical request: call ``await retrier.failed(exc)`` in an ``except`` block;
    it sleeps and returns when another attempt should be made, or raises ``ModelRequestError``."""

    def __init__(
        self,
        policy: RetryPolicy,
        what: str,
        classify: Callable[[BaseException], ErrorInfo] = classify_error,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ):
        self.policy = policy
        self.what = what
        self.classify = classify
        self.sleep = sleep
        self.attempts = 0
        self.waited = 0.0

    def give_up(
        self, info: ErrorInfo, exc: BaseException, reason: str = "", hint: str | None = None
    ) -> ModelRequestError:
        hint = hint if hint is not None else _HINTS.get(info.status or 0, "")
        if not hint and info.retryable:
            hint = "The provider kept failing: try again later, or raise max_retries / max_wait."
        message = f"{self.what} failed after {self.attempts} attempt(s){reason}: {info.description}"
        if hint:
            message += f" {hint}"
        return ModelRequestError(message, status_code=info.status, attempts=self.attempts)

    async def failed(self, exc: BaseException) -> None:
        self.attempts += 1
        if isinstance(exc, ModelRequestError):
            raise exc
        info = self.classify(exc)
        if not info.is_request_error:
            raise exc
        if not info.retryable:
            raise self.give_up(info, exc) from exc
        if self.attempts > self.policy.max_retries:
            raise self.give_up(info, exc) from exc
        delay = info.retry_after if info.retry_after is not None else self.policy.backoff(self.attempts)
        if self.waited + delay > self.policy.max_wait:
            reason = f" (next wait of {delay:.1f}s would pass max_wait={self.policy.max_wait:g}s)"
            raise self.give_up(info, exc, reason) from exc
        self.waited += delay
        await self.sleep(delay)


async def retry_call(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    what: str = "Model request",
    classify: Callable[[BaseException], ErrorInfo] = classify_error,
    before_attempt: Callable[[], Awaitable[Any]] | None = None,
) -> T:
    """``await fn()`` with retries; see the module docstring for what is retried. ``before_attempt`` is
    awaited before each attempt (a rate limiter's ``acquire``)."""
    retrier = Retrier(policy, what, classify)
    while True:
        if before_attempt is not None:
            await before_attempt()
        try:
            return await fn()
        except Exception as exc:  # noqa: BLE001 - classified inside; non-request errors re-raised
            await retrier.failed(exc)


async def stream_with_retries(
    attempt: Callable[[], AsyncIterator[T]],
    policy: RetryPolicy,
    what: str = "Model request",
    classify: Callable[[BaseException], ErrorInfo] = classify_error,
    before_attempt: Callable[[], Awaitable[Any]] | None = None,
) -> AsyncIterator[T]:
    """The items of ``attempt()`` (one streamed reply). A failure before the first item is retried like
    ``retry_call``; after it, one ``ModelRequestError`` is raised: the caller already has part of the reply,
    so a silent restart would duplicate it."""
    retrier = Retrier(policy, what, classify)
    while True:
        yielded = False
        if before_attempt is not None:
            await before_attempt()
        try:
            async with contextlib.aclosing(attempt()) as items:
                async for item in items:
                    yielded = True
                    yield item
            return
        except Exception as exc:  # noqa: BLE001 - classified below
            if not yielded:
                await retrier.failed(exc)
                continue
            info = classify(exc)
            if not info.is_request_error:
                raise
            retrier.attempts += 1
            raise retrier.give_up(
                info, exc, " (the stream broke after part of the reply was sent)",
                hint="Not retried, so the reply is not duplicated: call again to start a new reply.",
            ) from exc
