"""``Tool``: the base class of everything an agent can call.

Layer 2 (tools). The async path is the real one: ``acall`` awaits an async ``forward`` and runs a
sync ``forward`` in a worker thread so it never blocks the event loop. ``__call__`` is the sync wrapper
and also works from inside a running loop (an async ``forward`` then runs on a private loop in a helper
thread, since a sync caller must get the value back before it continues).

A subclass is checked like in smolagents: when its class statement already sets name, description,
inputs, output_type and forward, at class creation; in every case again after ``__init__`` returns (a
metaclass hook), because some tools fill their attributes in ``__init__``.
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
import textwrap
import threading
import warnings
from abc import ABCMeta
from collections.abc import Awaitable, Coroutine
from typing import Any, NamedTuple, TypeVar

from .._sync import run_in_code_thread, run_sync_private
from ..errors import ToolDefinitionError, ToolValidationError
from .agent_types import handle_agent_input_types, handle_agent_output_types
from .schema import function_tool_schema, python_type_text
from .validation import check_call_arguments, check_definition

__all__ = ["Tool", "load_tool", "run_coroutine_sync"]

T = TypeVar("T")
_REQUIRED_ATTRS = ("name", "description", "inputs", "output_type")


def run_coroutine_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, with or without a running loop in this thread."""
    return run_sync_private(coro)


class _ToolMeta(ABCMeta):
    """Runs the definition check once the outermost ``__init__`` has returned."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = super().__call__(*args, **kwargs)
        instance._check_definition()
        return instance


class Tool(metaclass=_ToolMeta):
    """A function the agent can call, described by a name, a description and a schema of its inputs.

    Subclass it and set the class attributes ``name``, ``description``, ``inputs`` (each entry a dict with
    ``"type"`` and ``"description"``, optionally ``"nullable": True``, ``"enum"``, ``"items"``...),
    ``output_type`` (one of ``AUTHORIZED_TYPES``), optionally ``output_schema`` (a JSON schema of a
    structured result), and write ``forward`` (``def`` or ``async def``) with exactly those arguments.

    Override ``setup`` for expensive preparation (loading a model): it runs once, on the first call.
    Set ``blocking = False`` on a tool whose sync ``forward`` is instant, so ``acall`` runs it inline
    rather than in a worker thread. Set ``validate_call_arguments = False`` to skip argument checks.
    Set ``idempotent = True`` when running a call twice has the same effect as once: a resumed run then
    repeats a call that was in flight at a crash instead of asking a person (see codeloop.runs).
    """

    name: str
    description: str
    inputs: dict[str, dict[str, Any]]
    output_type: str
    output_schema: dict[str, Any] | None = None
    output_description: str | None = None
    is_initialized: bool = False
    skip_forward_signature_validation: bool = False
    validate_call_arguments: bool = True
    blocking: bool = True
    idempotent: bool = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Tool:
        instance = super().__new__(cls)
        instance._setup_lock = threading.Lock()
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.is_initialized = False

    # Locks and caches do not copy or pickle; rebuild them on the copy.
    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_setup_lock", "_plan_cache")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup_lock = threading.Lock()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Check complete class statements now, but raise when the class is instantiated (as smolagents
        # does, so a module may define a class that is only ever validated) with a warning right away.
        cls._definition_error = None
        if (
            all(getattr(cls, attr, None) is not None for attr in _REQUIRED_ATTRS)
            and cls.forward is not Tool.forward
        ):
            try:
                check_definition(cls, cls.forward, owner=cls.__name__)
            except ToolDefinitionError as error:
                cls._definition_error = error
                warnings.warn(f"{cls.__qualname__} cannot be used: {error}", stacklevel=2)

    # ------------------------------------------------------------------ definition

    def _check_definition(self) -> None:
        check_definition(self, self.forward, owner=type(self).__name__)

    def validate_arguments(self, arguments: Any = None) -> dict[str, Any] | None:
        """With arguments: check them against ``inputs`` and return them as a dict (ToolValidationError).

        Without arguments: check the tool's own definition, as smolagents' method of that name does.
        """
        if arguments is None:
            self._check_definition()
            return None
        return check_call_arguments(self.name, self.inputs, arguments, has_default=self._defaults_names())

    def _signature(self) -> inspect.Signature | None:
        return self._plan().signature

    def _plan(self) -> _CallPlan:
        """What a call needs from forward's signature, computed once per tool."""
        plan = self.__dict__.get("_plan_cache")
        if plan is None:
            plan = _CallPlan.of(self.forward)
            self.__dict__["_plan_cache"] = plan
        return plan

    def _defaults_names(self) -> frozenset[str]:
        return self._plan().defaults

    # ------------------------------------------------------------------ calling

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"Tool '{type(self).__name__}' must implement forward().")

    def setup(self) -> None:
        """Override for expensive preparation; runs once, before the first call."""
        self.is_initialized = True

    def _ensure_setup(self) -> None:
        if self.is_initialized:
            return
        lock = self.__dict__.get("_setup_lock") or threading.Lock()
        with lock:
            if self.is_initialized:
                return
            result = self.setup()
            if inspect.isawaitable(result):
                run_coroutine_sync(_await(result))
            self.is_initialized = True

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Turn a call into keyword arguments named after the inputs, when the signature allows."""
        # smolagents accepts tool({"a": 1, "b": 2}) for tool(a=1, b=2) when every key is an input.
        if len(args) == 1 and not kwargs and isinstance(args[0], dict) and args[0]:
            if all(key in self.inputs for key in args[0]):
                return (), dict(args[0])
        if not args:
            return (), kwargs
        plan = self._plan()
        if plan.names is None:  # *args in forward, or no signature: pass the call through as it is
            return args, kwargs
        names = plan.names
        if len(args) > len(names):
            raise ToolValidationError(
                f"Tool '{self.name}' takes at most {len(names)} positional arguments ({', '.join(names)}), "
                f"got {len(args)}."
            )
        bound = dict(zip(names, args, strict=False))
        for key in kwargs:
            if key in bound:
                raise ToolValidationError(f"Tool '{self.name}' got two values for argument '{key}'.")
        bound.update(kwargs)
        return (), bound

    def _prepare(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], sanitize: bool
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if sanitize:
            raw_args, kwargs = handle_agent_input_types(*args, **kwargs)
            args = tuple(raw_args)
        args, kwargs = self._bind(args, kwargs)
        if not args and self.validate_call_arguments and not self.skip_forward_signature_validation:
            kwargs = check_call_arguments(self.name, self.inputs, kwargs, has_default=self._defaults_names())
            kwargs = self._coerce_arguments(kwargs)
        return args, kwargs

    def _coerce_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Hook for subclasses that turn validated JSON values into richer types (see FunctionTool)."""
        return arguments

    def _invoke(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        positional = self._plan().positional_only
        if positional and not args:
            args = tuple(kwargs.pop(k) for k in positional if k in kwargs)
        return self.forward(*args, **kwargs)

    def __call__(self, *args: Any, sanitize_inputs_outputs: bool = False, **kwargs: Any) -> Any:
        """Call the tool from sync code (also from inside a running event loop)."""
        self._ensure_setup()
        args, kwargs = self._prepare(args, kwargs, sanitize_inputs_outputs)
        result = self._invoke(args, kwargs)
        if inspect.isawaitable(result):
            result = run_coroutine_sync(_await(result))
        if sanitize_inputs_outputs:
            result = handle_agent_output_types(result, self.output_type)
        return result

    async def acall(self, *args: Any, sanitize_inputs_outputs: bool = False, **kwargs: Any) -> Any:
        """Call the tool from async code without blocking the loop (sync forward runs in a thread)."""
        if not self.is_initialized:
            if type(self).setup is Tool.setup:
                self.is_initialized = True
            else:
                await run_in_code_thread(self._ensure_setup)
        args, kwargs = self._prepare(args, kwargs, sanitize_inputs_outputs)
        if self._plan().is_async or not self.blocking:
            result = self._invoke(args, kwargs)
        else:
            result = await run_in_code_thread(self._invoke, args, kwargs)
        if inspect.isawaitable(result):
            result = await result
        if sanitize_inputs_outputs:
            result = handle_agent_output_types(result, self.output_type)
        return result

    # ------------------------------------------------------------------ prompts and schemas

    def _default_text(self, name: str) -> str | None:
        signature = self._signature()
        param = signature.parameters.get(name) if signature else None
        if param is not None and param.default is not inspect.Parameter.empty:
            text = repr(param.default)
            return text if len(text) <= 40 else "..."
        if self.inputs[name].get("nullable"):
            return "None"
        return None

    def to_code_prompt(self) -> str:
        """A Python stub, ``def name(arg: type = default) -> out:`` and a docstring, for code agents."""
        params = []
        for name, schema in self.inputs.items():
            default = self._default_text(name)
            if default is not None and default != "None":
                # nullable only because it has a default: show the plain type, as the function declares it
                schema = {k: v for k, v in schema.items() if k != "nullable"}
            params.append(f"{name}: {python_type_text(schema)}" + (f" = {default}" if default else ""))
        structured = self.output_schema is not None
        returns = getattr(self, "_return_annotation", None) or (
            "dict" if structured else python_type_text({"type": self.output_type})
        )
        doc = self.description.strip()
        if self.inputs:
            lines = "\n".join(
                f"{name}: {schema.get('description', '')}" for name, schema in self.inputs.items()
            )
            doc += "\n\nArgs:\n" + textwrap.indent(lines, "    ")
        if structured:
            schema_text = textwrap.indent(json.dumps(self.output_schema, indent=2), "        ")
            what = (self.output_description or "Structured output").rstrip(".")
            how = (
                "a dict that follows this JSON schema; read its keys directly (result['key'])"
                if returns == "dict"
                else f"a {returns} object whose attributes follow this JSON schema; read them directly (result.name)"
            )
            doc += (
                f"\n\nReturns:\n    {returns}: {what}. It is {how}, no need to print it first:\n{schema_text}"
            )
        elif self.output_description:
            doc += f"\n\nReturns:\n    {returns}: {self.output_description}"
        body = textwrap.indent(f'"""{doc}\n"""', "    ")
        return f"def {self.name}({', '.join(params)}) -> {returns}:\n{body}"

    def to_tool_calling_prompt(self) -> str:
        return (
            f"{self.name}: {self.description}\n    Takes inputs: {self.inputs}\n"
            f"    Returns an output of type: {self.output_type}"
        )

    def to_tool_schema(self) -> dict[str, Any]:
        """The OpenAI function-tool schema; nullable inputs are optional and admit null."""
        signature = self._signature()
        defaults: dict[str, Any] = {}
        for name in self.inputs:
            param = signature.parameters.get(name) if signature else None
            if param is not None and param.default is not inspect.Parameter.empty and _is_json(param.default):
                defaults[name] = param.default
        return function_tool_schema(self.name, self.description, self.inputs, defaults)

    def _source_code(self) -> str | None:
        from .self_contained import get_source  # also finds a class defined in a notebook cell

        try:
            return get_source(type(self)) + "\n"
        except (OSError, TypeError, ValueError):
            return None

    def _check_self_contained(self) -> None:
        """Saved source must stand on its own (ToolDefinitionError naming what it borrows from its module)."""
        from .self_contained import check_self_contained, is_builtin_tool

        if not is_builtin_tool(type(self)):
            check_self_contained(type(self))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the tool, with its source code when it can be found."""
        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputs": json.loads(json.dumps(self.inputs, default=str)),
            "output_type": self.output_type,
        }
        if self.output_schema is not None:
            data["output_schema"] = self.output_schema
        code = self._source_code()
        if code:
            self._check_self_contained()
            data["code"] = code
            data["requirements"] = _requirements(code)
        return data

    @classmethod
    def from_code(cls, tool_code: str, **kwargs: Any) -> Tool:
        """Build a tool from source code: a Tool subclass (as in a smolagents or codeloop ``tool.py``) or a
        ``@tool`` function; ``kwargs`` go to the class's constructor.

        The code runs in this process, like any import: only load code you trust.
        """
        from .decorator import tool as tool_decorator
        from .remote_code import run_tool_code, tool_classes

        namespace = run_tool_code(tool_code, extra={"Tool": Tool, "tool": tool_decorator, "Any": Any})
        found = [v for v in namespace.values() if isinstance(v, Tool)]
        if found:
            return found[-1]
        classes = tool_classes(namespace)
        if not classes:
            raise ToolDefinitionError("The code defines no Tool subclass and no @tool function.")
        return classes[-1](**kwargs)

    @classmethod
    def from_dict(cls, tool_dict: dict[str, Any], **kwargs: Any) -> Tool:
        """Rebuild a tool from ``to_dict()`` output (it must hold 'code')."""
        if "code" not in tool_dict:
            raise ToolDefinitionError(
                f"Tool dict for {tool_dict.get('name', '?')!r} must contain 'code' key: only tools whose source "
                "was available when saved can be loaded again."
            )
        made = cls.from_code(tool_dict["code"], **kwargs)
        if tool_dict.get("output_schema") is not None:
            made.output_schema = tool_dict["output_schema"]
        return made

    def save(self, output_dir: Any, tool_file_name: str = "tool", make_gradio_app: bool = True) -> None:
        """Write ``{tool_file_name}.py`` (and ``app.py`` + ``requirements.txt``) in smolagents' folder format."""
        from .sharing import save_tool

        save_tool(self, output_dir, tool_file_name=tool_file_name, make_gradio_app=make_gradio_app)

    @classmethod
    def from_folder(cls, folder: Any, tool_file_name: str = "tool", trust_remote_code: bool = False, **kwargs: Any) -> Tool:
        """Load a tool saved with ``save`` (by codeloop or smolagents); runs its code: trust_remote_code=True."""
        from .sharing import tool_from_folder

        return tool_from_folder(folder, tool_file_name=tool_file_name, trust_remote_code=trust_remote_code, **kwargs)

    @classmethod
    def from_hub(cls, repo_id: str, token: str | None = None, trust_remote_code: bool = False, **kwargs: Any) -> Tool:
        """Load a tool from a Hub Space's ``tool.py``; runs its code, so pass trust_remote_code=True."""
        from .sharing import tool_from_hub

        return tool_from_hub(repo_id, token=token, trust_remote_code=trust_remote_code, **kwargs)

    def push_to_hub(
        self,
        repo_id: str,
        commit_message: str = "Upload tool",
        private: bool | None = None,
        token: bool | str | None = None,
        create_pr: bool = False,
    ) -> str:
        """Upload the tool as a Gradio Space (``tool.py``, ``app.py``, ``requirements.txt``); returns the commit URL."""
        from .sharing import push_tool_to_hub

        return push_tool_to_hub(self, repo_id, commit_message, private, token, create_pr)

    @staticmethod
    def from_space(
        space_id: str, name: str, description: str = "", api_name: str | None = None, token: str | None = None
    ) -> Tool:
        """A Gradio app's endpoint as a tool: a Hub Space id or a Gradio URL (needs gradio_client)."""
        from .adapters import SpaceToolWrapper

        return SpaceToolWrapper(space_id, name, description, api_name=api_name, token=token)

    @staticmethod
    def from_langchain(langchain_tool: Any) -> Tool:
        """A LangChain tool as a tool (its argument schema becomes ``inputs``)."""
        from .adapters import LangChainToolWrapper

        return LangChainToolWrapper(langchain_tool)

    @staticmethod
    def from_gradio(gradio_tool: Any) -> Tool:
        """A gradio-tools tool (an object with name, description and run(...)) as a tool."""
        from .adapters import GradioToolWrapper

        return GradioToolWrapper(gradio_tool)

    def __repr__(self) -> str:
        args = ", ".join(self.inputs)
        return f"<{type(self).__name__} {self.name}({args}) -> {self.output_type}>"


def load_tool(
    repo_id: str, model_repo_id: str | None = None, token: str | None = None, trust_remote_code: bool = False,
    **kwargs: Any,
) -> Tool:
    """A tool from a local folder (written by ``tool.save``) or a Hub Space; needs trust_remote_code=True.

    ``model_repo_id`` is accepted for smolagents compatibility and passed to the tool's constructor when
    given, as smolagents does.
    """
    import os

    if model_repo_id is not None:
        kwargs["model_repo_id"] = model_repo_id
    if os.path.isdir(repo_id):
        return Tool.from_folder(repo_id, trust_remote_code=trust_remote_code, **kwargs)
    return Tool.from_hub(repo_id, token=token, trust_remote_code=trust_remote_code, **kwargs)


class _CallPlan(NamedTuple):
    signature: inspect.Signature | None
    names: tuple[str, ...] | None  # parameters that take positional arguments; None: pass calls through
    defaults: frozenset[str]
    positional_only: tuple[str, ...]
    is_async: bool

    @classmethod
    def of(cls, forward: Any) -> _CallPlan:
        is_async = inspect.iscoroutinefunction(forward)
        try:
            signature = inspect.signature(forward)
        except (TypeError, ValueError):
            return cls(None, None, frozenset(), (), is_async)
        params = list(signature.parameters.values())
        names: tuple[str, ...] | None = tuple(
            p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
        if not params or any(p.kind is p.VAR_POSITIONAL for p in params):
            names = None
        return cls(
            signature,
            names,
            frozenset(p.name for p in params if p.default is not inspect.Parameter.empty),
            tuple(p.name for p in params if p.kind is p.POSITIONAL_ONLY),
            is_async,
        )


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _requirements(code: str) -> list[str]:
    """Top-level third-party modules the code imports (codeloop itself excluded)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return sorted(n for n in names if n not in sys.stdlib_module_names and n != "codeloop")


def get_imports(code: str) -> list[str]:
    """The top-level packages ``code`` needs (smolagents' helper, kept for compatibility): every absolute
    import, except those guarded by ``try:`` or by an ``if is_..._available():`` check (optional ones)."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return []
    names: set[str] = set()

    def optional(node: ast.AST) -> bool:
        if isinstance(node, ast.Try | ast.TryStar):
            return True
        if isinstance(node, ast.If) and isinstance(node.test, ast.Call):
            func = node.test.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            return name.startswith("is_") and name.endswith("_available")
        return False

    def visit(node: ast.AST) -> None:
        if optional(node):
            return
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return sorted(names)
