"""Send a chat-completions request through the ``openai`` SDK without its per-request type transform.

``AsyncCompletions.create`` passes every request body through the SDK's ``async_maybe_transform``, which
walks the whole ``messages`` list against the parameter TypedDicts (typing introspection for every
message and content part) to rename aliased keys, format dates and files, turn pydantic objects into
dicts and drop omitted values. Chat-completion parameters have no aliases or formats, so for a body made
only of plain JSON values (what ``OpenAIModel.prepare_request`` builds) the transform returns an equal
copy, at a cost that grows with the conversation: with 200 concurrent agent runs it was ~40% of the host
process's CPU. ``create_chat`` sends such a body exactly as ``create`` does (same path, request options,
auth, response and stream types, through ``client.post``, the SDK's documented way to send a raw request)
and hands everything else to ``create`` itself:

* a parameter ``create`` does not accept (it raises its usual ``TypeError``), a value that is not plain
  JSON (a pydantic object or class, an SDK ``Omit``/``NotGiven``, a generator...), or no model/messages;
* an SDK release without what this relies on (``make_request_options``; ``create``'s keyword
  parameters), see ``route_for``: then every request goes through ``create``, and the reason is logged
  once (logger ``codeloop.models``, level INFO);
* a ``create`` wrapped or replaced from outside the SDK (OpenTelemetry / Langfuse instrumentation wraps
  it), so such instrumentation keeps seeing every request.
"""

from __future__ import annotations

import inspect
import logging
import os
import types
from typing import Any, NamedTuple

__all__ = ["create_chat", "route_for"]

# create()'s parameters that become request options rather than body fields
_OPTION_PARAMS = ("extra_headers", "extra_query", "extra_body", "timeout")
_SCALARS = (str, int, float, bool, type(None))


class Route(NamedTuple):
    """What ``create`` passes to ``client.post`` besides the body, for one completions class."""

    body_params: frozenset[str]
    make_options: Any
    security: dict[str, bool] | None
    cast_to: type
    stream_cls: Any


# Keyed by the create function itself, so instrumentation installed later is seen too.
_ROUTES: dict[Any, Route | str] = {}


def route_for(create: Any) -> Route | str:
    """The direct route for this SDK ``AsyncCompletions.create`` (the function, as found on the class), or a
    sentence saying why requests go through ``create`` itself."""
    route = _ROUTES.get(create)
    if route is None:
        route = _ROUTES[create] = _find_route(create)
        if isinstance(route, str):
            logging.getLogger("codeloop.models").info("%s", route)
    return route


def _find_route(create: Any) -> Route | str:
    try:
        import openai
        from openai import AsyncStream
        from openai._base_client import make_request_options
        from openai.types.chat import ChatCompletion, ChatCompletionChunk
    except ImportError as exc:
        return f"this openai release lacks what the direct route uses ({exc}); requests go through create()"
    sdk_dir = os.path.dirname(openai.__file__) + os.sep
    # A plain function from the SDK's own files (create is wrapped by the SDK's required_args): anything
    # else (a wrapt proxy, a wrapper from another package, a replacement) must see every request.
    if not isinstance(create, types.FunctionType) or not create.__code__.co_filename.startswith(sdk_dir):
        return "chat.completions.create is wrapped or replaced from outside the openai SDK; requests go through it"
    try:
        params = inspect.signature(create).parameters
        option_params = inspect.signature(make_request_options).parameters
    except (TypeError, ValueError) as exc:
        return f"cannot read chat.completions.create's parameters ({exc}); requests go through create()"
    names = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    if not {"model", "messages", *_OPTION_PARAMS} <= names:
        return "this openai release's chat.completions.create takes other parameters; requests go through it"
    # create() marks the request as bearer-authenticated in releases whose request options know "security"
    security = {"bearer_auth": True} if "security" in option_params else None
    return Route(
        body_params=frozenset(names.difference(_OPTION_PARAMS)),
        make_options=make_request_options,
        security=security,
        cast_to=ChatCompletion,
        stream_cls=AsyncStream[ChatCompletionChunk],
    )


async def create_chat(client: Any, request: dict[str, Any]) -> Any:
    """``await client.chat.completions.create(**request)``, minus the type transform when that is exact."""
    completions = client.chat.completions
    route = route_for(getattr(type(completions), "create", None))
    if isinstance(route, str) or "create" in vars(completions) or not _direct(route, request):
        return await completions.create(**request)
    body: dict[str, Any] = {}
    options: dict[str, Any] = {"security": route.security} if route.security is not None else {}
    for key, value in request.items():
        if key in route.body_params:
            body[key] = value
        else:
            options[key] = value
    stream = bool(body.get("stream"))
    return await client.post(
        "/chat/completions",
        body=body,
        cast_to=route.cast_to,
        options=route.make_options(**options),
        stream=stream,
        stream_cls=route.stream_cls,
    )


def _direct(route: Route, request: dict[str, Any]) -> bool:
    if "model" not in request or "messages" not in request:
        return False
    for key, value in request.items():
        if key in route.body_params:
            if not _plain_json(value):
                return False
        elif key not in _OPTION_PARAMS:
            return False  # create() raises its TypeError for it
    return True


def _plain_json(value: Any) -> bool:
    """Only dicts with str keys, lists, str, int, float, bool and None (exact types: a subclass such as an
    enum or a TypedDict-typed pydantic object may be transformed by the SDK)."""
    todo = [value]
    while todo:
        item = todo.pop()
        kind = type(item)
        if kind is dict:
            for key, inner in item.items():
                if type(key) is not str:
                    return False
                if type(inner) not in _SCALARS:
                    todo.append(inner)
        elif kind is list:
            todo.extend(x for x in item if type(x) not in _SCALARS)
        elif kind not in _SCALARS:
            return False
    return True
