"""OpenTelemetry tracing for codeloop runs: ``codeloop.telemetry.instrument()`` or ``CODELOOP_OTEL=1``.

Layer 7 (faces). ``instrument()`` subscribes a :class:`~codeloop.telemetry.spans.SpanRecorder` to the
event stream of every run in the process; spans go to whatever tracer provider you give (or the global
one). With no SDK provider configured it sets one up that exports over OTLP/HTTP, configured by the
standard ``OTEL_EXPORTER_OTLP_*`` variables (Phoenix, Langfuse, Jaeger and most collectors accept it).
Needs the ``telemetry`` extra: ``pip install 'codeloop[telemetry]'``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

__all__ = ["instrument", "uninstrument", "is_instrumented", "instrument_from_env"]

_lock = threading.Lock()
_recorder: Any = None
_own_provider: Any = None


def _require() -> None:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "codeloop.telemetry needs OpenTelemetry: pip install 'codeloop[telemetry]' "
            "(opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http)."
        ) from e


def _default_provider() -> Any:
    """An SDK provider exporting over OTLP/HTTP (endpoint and headers from the OTEL_* variables)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as e:
        raise ImportError(
            "Exporting traces needs the OTLP exporter: pip install 'codeloop[telemetry]', or pass your own "
            "tracer_provider= to codeloop.telemetry.instrument()."
        ) from e
    service = os.environ.get("OTEL_SERVICE_NAME", "codeloop")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def instrument(
    tracer_provider: Any = None, *, capture_content: bool | None = None, set_global: bool = True
) -> Any:
    """Trace every agent run in this process; returns the tracer provider used.

    Args:
        tracer_provider: where spans go. Default: the global provider when one is configured, else a new
            SDK provider exporting over OTLP/HTTP (made the global one unless ``set_global=False``).
        capture_content: put code, tool arguments/results, plans and answers on spans (default True, or
            ``CODELOOP_OTEL_CAPTURE_CONTENT=0`` to turn it off).

    Calling it again replaces the previous instrumentation.
    """
    global _recorder, _own_provider
    _require()
    from opentelemetry import trace

    from ..events import subscribe
    from .spans import SpanRecorder

    if capture_content is None:
        capture_content = os.environ.get("CODELOOP_OTEL_CAPTURE_CONTENT", "1").lower() not in (
            "0",
            "false",
            "no",
        )
    with _lock:
        _uninstrument_locked()
        provider = tracer_provider
        if provider is None:
            current = trace.get_tracer_provider()
            # The API's default is a proxy that drops everything until an SDK provider is set.
            if type(current).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):
                provider = _own_provider = _default_provider()
                if set_global:
                    trace.set_tracer_provider(provider)
            else:
                provider = current
        from .. import __version__

        tracer = provider.get_tracer("codeloop", __version__)
        _recorder = SpanRecorder(tracer, capture_content=capture_content)
        subscribe(_recorder)
    return provider


def _uninstrument_locked() -> None:
    global _recorder, _own_provider
    from ..events import unsubscribe

    if _recorder is not None:
        unsubscribe(_recorder)
        _recorder = None
    if _own_provider is not None:
        _own_provider.force_flush()
        _own_provider = None


def uninstrument() -> None:
    """Stop tracing runs (spans already recorded are flushed when codeloop made the provider)."""
    with _lock:
        _uninstrument_locked()


def is_instrumented() -> bool:
    return _recorder is not None


def instrument_from_env() -> bool:
    """``instrument()`` when ``CODELOOP_OTEL`` is set to 1/true/yes; returns whether it did."""
    if os.environ.get("CODELOOP_OTEL", "").lower() in ("1", "true", "yes", "on"):
        instrument()
        return True
    return False
