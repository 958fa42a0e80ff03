"""The ``codeloop`` command: run an agent on a task from the shell and watch it work.

Layer 7 (faces). ``codeloop run "task"`` builds a model (from the options, else from the environment with
``model_from_env``), builds a CodeAgent with the chosen tools and executor, and renders the agent's typed
event stream live on stderr: thoughts, code, printed logs, tool calls, plans, then usage and time. The
final answer alone goes to stdout, so ``codeloop run "..." > answer.txt`` captures just the answer.

Exit codes: 0 success, 1 the run failed (error, max steps reached, cancelled), 2 configuration error
(no model configured, unknown tool, bad option), 130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from . import __version__
from .errors import CodeloopError, ModelConfigurationError
from .events import (
    ActionParsed,
    CodeOutputEvent,
    ContextCompacted,
    Event,
    FinalAnswerEvent,
    ModelDelta,
    ModelOutput,
    PlanEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    ToolCallFinished,
    ToolCallStarted,
)
from .messages import ChatMessage, MessageRole, TokenUsage
from .usage_limits import UsageLimits

__all__ = [
    "main",
    "build_parser",
    "add_agent_options",
    "build_agent",
    "ConfigError",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_CONFIG",
    "EXIT_INTERRUPTED",
]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130

# Names accepted by --tools (their classes come from codeloop.default_tools, imported only when used).
_BUILTIN_TOOLS = (
    "duckduckgo_search",
    "final_answer",
    "python_interpreter",
    "user_input",
    "visit_webpage",
    "web_search",
    "wikipedia_search",
)
_PREVIEW_LINES = 20  # logs longer than this are cut in the live view unless --verbose


class _ConfigError(Exception):
    """A user-fixable configuration problem: exit code 2 with this message."""


ConfigError = _ConfigError


# ----------------------------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codeloop",
        description="Run a codeloop agent on a task.",
        epilog=(
            "Model selection: --model-type/--model-id/--api-base/--api-key, else the environment "
            "(CODELOOP_MODEL, CODELOOP_API_BASE, OPENAI_API_KEY, ANTHROPIC_API_KEY, HF_TOKEN, or a local "
            "Ollama/llama.cpp/vLLM/LM Studio server). CODELOOP_LOCAL_SERVERS=none disables local probing "
            "(or lists name:port,... to probe)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"codeloop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run a CodeAgent on a task",
        description="Run a CodeAgent on a task.",
        epilog='Give the task first, options after: codeloop run "What is 2**10?" --tools web_search',
    )
    run.add_argument("task", help="the task, in quotes")
    add_agent_options(run)
    run.add_argument("--stream", action="store_true", help="show the model's reply as it is written")
    run.add_argument("--verbose", action="store_true", help="show everything in full (messages, long logs)")
    run.add_argument("--quiet", action="store_true", help="print only the final answer")
    run.add_argument(
        "--verbosity-level",
        type=int,
        choices=[-1, 0, 1, 2],
        default=None,
        help="smolagents-style: -1/0 like --quiet, 1 normal, 2 like --verbose",
    )
    from .evals.command import add_eval_parser
    from .ui.command import add_ui_parser

    add_eval_parser(sub)
    add_ui_parser(sub)
    from .cli_runs import add_run_options, add_runs_parser

    add_run_options(run)
    add_runs_parser(sub)
    from .mcp_server.cli import add_parser as _add_mcp_parser

    _add_mcp_parser(sub)
    return parser


def add_agent_options(parser: argparse.ArgumentParser) -> None:
    """The model, tool and executor options of ``codeloop run`` (also taken by ``eval`` and ``ui``)."""
    parser.add_argument(
        "--model-type",
        help="model class: OpenAIServerModel (any OpenAI-compatible server), AzureOpenAIModel, "
        "InferenceClientModel (Hugging Face), LiteLLMModel / LiteLLMRouterModel (provider/model ids), "
        "AnthropicModel, AmazonBedrockModel, TransformersModel, MLXModel, VLLMModel; default: from the environment",
    )
    parser.add_argument(
        "--model-id",
        "--model",
        dest="model_id",
        help="model name, e.g. gpt-4o-mini, or provider:model such as ollama:llama3.1 or llamacpp:model.gguf",
    )
    parser.add_argument(
        "--api-base", help="base URL of an OpenAI-compatible server, e.g. http://localhost:8000/v1"
    )
    parser.add_argument("--api-key", help="API key for --api-base (default: CODELOOP_API_KEY)")
    parser.add_argument(
        "--tools",
        nargs="*",
        default=[],
        help=f"built-in tools ({', '.join(sorted(_BUILTIN_TOOLS))}) or module:attribute of your own Tool",
    )
    parser.add_argument(
        "--imports", nargs="*", default=[], help="extra modules the agent's code may import ('*': any)"
    )
    parser.add_argument(
        "--executor",
        choices=["local", "inprocess", "docker", "wasm", "e2b", "modal", "blaxel"],
        default="local",
        help="local: isolated worker process (default); inprocess: same policy, in this process (trusted "
        "code); docker, wasm, e2b, modal, blaxel: a remote sandbox (README: Choosing an executor)",
    )
    parser.add_argument(
        "--action-type",
        choices=["code", "tool_calling"],
        default="code",
        help="code: CodeAgent (default); tool_calling: ToolCallingAgent",
    )
    parser.add_argument(
        "--structured-outputs",
        action="store_true",
        help="CodeAgent replies as JSON {thought, code} (use_structured_outputs_internally; grammar-"
        "constrained on llama.cpp)",
    )
    parser.add_argument("--max-steps", type=int, default=20, help="most action steps (default 20)")
    parser.add_argument(
        "--planning-interval", type=int, default=None, help="plan every N steps (default: never)"
    )
    parser.add_argument(
        "--max-context-tokens", type=int, default=None, help="compact memory to keep prompts under N tokens"
    )
    parser.add_argument(
        "--max-cost", type=float, default=None, help="stop before the run would cost more (USD)"
    )


def _split(values: Sequence[str]) -> list[str]:
    """``--tools a b`` and ``--tools a,b`` both work."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


# ----------------------------------------------------------------------------------------------------------
# Model and tools
# ----------------------------------------------------------------------------------------------------------


def _local_servers(environ: Mapping[str, str]) -> list[tuple[str, int]] | None:
    """``CODELOOP_LOCAL_SERVERS``: "none" disables probing; "name:port,..." replaces the default list."""
    spec = environ.get("CODELOOP_LOCAL_SERVERS")
    if spec is None:
        return None
    if spec.strip().lower() in ("", "none", "off", "0"):
        return []
    servers = []
    for item in _split([spec]):
        name, _, port = item.rpartition(":")
        if not port.isdigit():
            raise _ConfigError(
                f"CODELOOP_LOCAL_SERVERS={spec!r}: write name:port,... (e.g. ollama:11434) or none."
            )
        servers.append((name or "local", int(port)))
    return servers


def _openai_model(model_id: str | None, api_base: str | None, api_key: str | None) -> Any:
    from .models.from_env import probe_local_server
    from .models.openai import OpenAIModel

    if not model_id:
        if not api_base:
            raise _ConfigError(
                "--model-id is required with --model-type OpenAIServerModel and no --api-base."
            )
        listed = probe_local_server(api_base, timeout=2.0)
        if not listed:
            raise _ConfigError(f"--api-base {api_base} lists no model: pass --model-id as well.")
        model_id = listed[0]
    return OpenAIModel(model_id, api_base=api_base, api_key=api_key or ("not-needed" if api_base else None))


def build_model(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Any:
    """The model the options (else the environment) describe; raises ModelConfigurationError/_ConfigError."""
    env = os.environ if environ is None else environ
    model_type = (args.model_type or "").strip()
    api_key = args.api_key or env.get("CODELOOP_API_KEY")
    kind = model_type.lower().removesuffix("model")
    if kind in ("openaiserver", "openai", "openai_server"):
        return _openai_model(args.model_id, args.api_base, api_key)
    if kind in ("azureopenai", "azure"):
        from .models.openai import AzureOpenAIModel

        if not args.model_id:
            raise _ConfigError("--model-id (the Azure deployment name) is required with AzureOpenAIModel.")
        return AzureOpenAIModel(args.model_id, azure_endpoint=args.api_base, api_key=args.api_key)
    from .models.from_env import model_from_env

    servers = _local_servers(env)
    if kind in ("inferenceclient", "hf", "huggingface"):
        return model_from_env(f"hf:{args.model_id or ''}", environ=env, local_servers=servers)
    if kind == "litellm" and importlib.util.find_spec("litellm") is not None:
        from .models.litellm import LiteLLMModel

        kwargs = {k: v for k, v in (("api_base", args.api_base), ("api_key", args.api_key)) if v}
        return LiteLLMModel(args.model_id, **kwargs)
    if kind == "litellm":
        # Without litellm, LiteLLM ids ("provider/model") go to the providers' OpenAI-compatible APIs.
        head, sep, rest = (args.model_id or "").partition("/")
        spec = f"{head.removesuffix('_chat')}:{rest}" if sep else (args.model_id or "")
        return model_from_env(spec or None, environ=env, local_servers=servers)
    if kind:
        from . import models

        cls = getattr(models, model_type, None)
        if cls is None:
            raise _ConfigError(
                f"Unknown --model-type {model_type!r}: use OpenAIServerModel, AzureOpenAIModel, "
                "InferenceClientModel, LiteLLMModel, AnthropicModel, AmazonBedrockModel, TransformersModel, "
                "MLXModel or VLLMModel, or leave it out to configure from the environment."
            )
        kwargs = {k: v for k, v in (("api_base", args.api_base), ("api_key", args.api_key)) if v}
        return cls(model_id=args.model_id, **kwargs) if args.model_id else cls(**kwargs)
    if args.api_base:
        return _openai_model(args.model_id, args.api_base, api_key)
    return model_from_env(args.model_id, environ=env, local_servers=servers)


def _load_attribute(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        value = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise _ConfigError(f"--tools {spec}: cannot load it ({type(e).__name__}: {e}).") from e
    return value() if isinstance(value, type) else value


def resolve_tools(names: Sequence[str]) -> list[Any]:
    """Tool objects for built-in names and ``module:attribute`` specs."""
    tools: list[Any] = []
    for name in _split(names):
        if ":" in name:
            tools.append(_load_attribute(name))
            continue
        from .default_tools import BUILTIN_TOOLS

        cls = BUILTIN_TOOLS.get(name)
        if cls is None:
            raise _ConfigError(
                f"Unknown tool {name!r}. Built-in tools available: {', '.join(sorted(BUILTIN_TOOLS))}; "
                "or give module:attribute of your own Tool."
            )
        tools.append(cls() if isinstance(cls, type) else cls)
    return tools


# ----------------------------------------------------------------------------------------------------------
# Live view
# ----------------------------------------------------------------------------------------------------------

_CODE_SPANS = re.compile(r"<code>.*?(?:</code>|$)|```.*?(?:```|$)", re.DOTALL)


def _fmt_usage(usage: TokenUsage | None) -> str:
    if usage is None or not usage.total_tokens:
        return "tokens: n/a"
    text = f"tokens: {usage.input_tokens:,} in"
    if usage.cached_input_tokens:
        text += f" ({usage.cached_input_tokens / max(usage.input_tokens, 1):.0%} cached)"
    text += f" / {usage.output_tokens:,} out"
    if usage.reasoning_tokens:
        text += f" ({usage.reasoning_tokens:,} reasoning)"
    return text + (" · cost unknown" if usage.cost is None else f" · ${usage.cost:.4f}")


class LiveView:
    """Renders run events for a terminal (rich). Knows events only, never the loop."""

    def __init__(self, console: Any, *, verbose: bool = False, stream: bool = False):
        self.console = console
        self.verbose = verbose
        self.stream = stream
        self._streamed = False
        self._step_error: str | None = None  # shown with the code output; not repeated at the step's end
        self._announced: set[str] = set()  # ids of tool calls shown as the step's action (ToolCallingAgent)

    def _cut(self, text: str) -> str:
        lines = text.rstrip().splitlines()
        if self.verbose or len(lines) <= _PREVIEW_LINES:
            return "\n".join(lines)
        return "\n".join(
            lines[:_PREVIEW_LINES] + [f"... ({len(lines) - _PREVIEW_LINES} more lines, --verbose)"]
        )

    def __call__(self, event: Event) -> None:
        from rich.markup import escape
        from rich.panel import Panel
        from rich.syntax import Syntax

        c = self.console
        if isinstance(event, RunStarted):
            c.print(Panel(escape(event.task), title="task", title_align="left", border_style="cyan"))
        elif isinstance(event, ModelDelta):
            content = event.delta.content or ""
            if content:
                self._streamed = True
                c.file.write(content)
                c.file.flush()
        elif isinstance(event, ModelOutput):
            if self._streamed:
                c.file.write("\n")
                self._streamed = False
            elif event.message is not None:
                text = event.message.text if self.verbose else _CODE_SPANS.sub("", event.message.text).strip()
                if text:
                    c.print(f"[italic]{escape(self._cut(text))}[/italic]")
        elif isinstance(event, ActionParsed):
            if event.code:
                c.print(
                    Panel(
                        Syntax(event.code, "python", theme="ansi_dark", word_wrap=True),
                        title="code",
                        title_align="left",
                        border_style="blue",
                    )
                )
            for call in event.tool_calls or []:
                self._announced.add(call.id)
                name, args = escape(call.function.name), escape(_short(call.function.arguments))
                c.print(f"[bold]→ {name}[/bold]({args})")
        elif isinstance(event, ToolCallStarted):
            if event.call_id not in self._announced:  # a call made from inside code
                c.print(f"  [dim]↳ {escape(event.tool_name)}({escape(_short(event.arguments))})[/dim]")
        elif isinstance(event, ToolCallFinished):
            took = f" [dim]{event.duration:.2f}s[/dim]" if event.duration is not None else ""
            if event.error:
                c.print(f"  [red]✗ {escape(event.tool_name)}: {escape(event.error)}[/red]{took}")
            elif (self.verbose or event.call_id in self._announced) and event.tool_name != "final_answer":
                # A tool-calling step's result is its observation; code shows its results in its logs.
                c.print(f"  [dim]← {escape(_short(event.result))}[/dim]{took}")
            self._announced.discard(event.call_id)
        elif isinstance(event, CodeOutputEvent):
            if event.logs.strip():
                c.print(
                    Panel(escape(self._cut(event.logs)), title="logs", title_align="left", border_style="dim")
                )
            if event.error:
                self._step_error = event.error
                c.print(f"[red]{escape(self._cut(event.error))}[/red]")
            elif event.output is not None and not event.is_final_answer:
                c.print(f"[dim]out:[/dim] {escape(_short(event.output))}")
        elif isinstance(event, PlanEvent):
            title = "updated plan" if event.is_update else "plan"
            c.print(
                Panel(escape(self._cut(event.plan)), title=title, title_align="left", border_style="magenta")
            )
        elif isinstance(event, StepFinished):
            took = f"{event.duration:.2f}s" if event.duration is not None else "?"
            if event.error and not (self._step_error and self._step_error in event.error):
                c.print(f"[red]{escape(self._cut(event.error))}[/red]")
            self._step_error = None
            c.rule(f"[dim]step {event.step_number} · {took} · {_fmt_usage(event.usage)}[/dim]", style="dim")
        elif isinstance(event, ContextCompacted):
            folded = (
                f", steps {event.folded_steps[0]}-{event.folded_steps[-1]} summarized"
                if event.folded_steps
                else ""
            )
            c.print(
                f"[dim]context compacted: ~{event.tokens_before:,} -> ~{event.tokens_after:,} tokens "
                f"(budget {event.max_context_tokens:,}){folded}[/dim]"
            )
        elif isinstance(event, RunFinished):
            took = f"{event.duration:.2f}s" if event.duration is not None else "?"
            ok = event.state == "success"
            mark = "[green]✓ done[/green]" if ok else f"[yellow]! {escape(event.state)}[/yellow]"
            c.print(f"{mark} in {event.steps} step(s) · {took} · {_fmt_usage(event.usage)}")
        elif isinstance(event, RunFailed):
            took = f"{event.duration:.2f}s" if event.duration is not None else "?"
            c.print(f"[red]✗ {escape(event.error_type)}: {escape(event.error)}[/red]")
            c.print(f"after {event.steps} step(s) · {took} · {_fmt_usage(event.usage)}")


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------------


def _code_agent_class(action_type: str = "code") -> Any:
    """CodeAgent (or ToolCallingAgent) when the agents package provides it (None before it exists)."""
    try:
        module = importlib.import_module("codeloop.agents")
    except ImportError:
        return None
    return getattr(module, "ToolCallingAgent" if action_type == "tool_calling" else "CodeAgent", None)


def make_agent(agent_cls: Any, args: argparse.Namespace, model: Any, tools: list[Any], **extra: Any) -> Any:
    """The agent the options of ``add_agent_options`` describe, with verbosity off (faces render events)."""
    code_options: dict[str, Any] = {}
    if args.action_type == "code":
        code_options = {"additional_authorized_imports": _split(args.imports), "executor_type": args.executor}
        if getattr(args, "structured_outputs", False):
            code_options["use_structured_outputs_internally"] = True
    from .cli_runs import agent_run_kwargs

    return agent_cls(
        tools=tools,
        model=model,
        **code_options,
        **agent_run_kwargs(args),
        max_steps=args.max_steps,
        planning_interval=args.planning_interval,
        stream_outputs=getattr(args, "stream", False),
        max_context_tokens=getattr(args, "max_context_tokens", None),
        usage_limits=UsageLimits(max_cost_usd=args.max_cost)
        if getattr(args, "max_cost", None) is not None
        else None,
        verbosity_level=-1,  # LogLevel.OFF: the CLI renders the events itself
        **extra,
    )


def build_agent(args: argparse.Namespace, **extra: Any) -> Any:
    """Model, tools and agent from the options; raises ModelConfigurationError or ConfigError."""
    if args.max_steps < 1:
        raise _ConfigError("--max-steps must be at least 1.")
    if args.planning_interval is not None and args.planning_interval < 1:
        raise _ConfigError("--planning-interval must be at least 1.")
    agent_cls = _code_agent_class(args.action_type)
    return make_agent(agent_cls, args, build_model(args), resolve_tools(args.tools), **extra)


async def _run_agent(
    agent_cls: Any, args: argparse.Namespace, model: Any, tools: list[Any], view: Any
) -> int:
    agent = make_agent(agent_cls, args, model, tools)
    finished: RunFinished | None = None
    answer: Any = None
    try:
        async for event in agent.astream(args.task, run_id=args.run_id):
            if not isinstance(event, Event):
                continue
            if view is not None:
                view(event)
            if isinstance(event, FinalAnswerEvent):
                answer = event.output
            elif isinstance(event, RunFinished):
                finished = event
    except Exception as e:  # the RunFailed event was shown; the error ends the run
        if view is None:
            print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    if finished is None:
        return EXIT_FAILED
    if finished.state == "awaiting_approval":
        from .cli_runs import report

        return report(agent.last_run.result())
    output = finished.output if finished.output is not None else answer
    if output is not None:
        print(output if isinstance(output, str) else repr(output), flush=True)
    return EXIT_OK if finished.state == "success" else EXIT_FAILED


async def _single_call(args: argparse.Namespace, model: Any, console: Any) -> int:
    """Before CodeAgent existed the CLI asked the model once; kept for agents-less installs."""
    start = time.perf_counter()
    messages = [ChatMessage(role=MessageRole.USER, content=[{"type": "text", "text": args.task}])]
    message = await model.agenerate(messages)
    print(message.text, flush=True)
    if console is not None:
        console.print(
            f"[dim]single model call · {time.perf_counter() - start:.2f}s · {_fmt_usage(message.token_usage)}[/dim]"
        )
    return EXIT_OK


def _run_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    if args.verbosity_level is not None:
        args.quiet = args.quiet or args.verbosity_level <= 0
        args.verbose = args.verbose or args.verbosity_level >= 2
    console = None if args.quiet else Console(stderr=True, highlight=False, soft_wrap=False)
    try:
        if args.max_steps < 1:
            raise _ConfigError("--max-steps must be at least 1.")
        if args.planning_interval is not None and args.planning_interval < 1:
            raise _ConfigError("--planning-interval must be at least 1.")
        model = build_model(args)
        tools = resolve_tools(args.tools)
    except (ModelConfigurationError, _ConfigError) as e:
        print(f"codeloop: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    agent_cls = _code_agent_class(args.action_type)
    view = LiveView(console, verbose=args.verbose, stream=args.stream) if console is not None else None
    try:
        if agent_cls is None:
            return asyncio.run(_single_call(args, model, console))
        return asyncio.run(_run_agent(agent_cls, args, model, tools, view))
    except KeyboardInterrupt:
        print("codeloop: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CodeloopError as e:
        print(f"codeloop: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``codeloop`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and not argv[0].startswith("-") and argv[0] not in ("run", "runs", "eval", "ui", "mcp"):
        argv = ["run", *argv]  # ``codeloop "task"`` is short for ``codeloop run "task"``
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on bad options and 0 on --help/--version
        return int(e.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    if args.command == "mcp":
        from .mcp_server.cli import run_command

        return run_command(args)
    if args.command != "run":
        return args.handler(args)
    return _run_command(args)


if __name__ == "__main__":
    sys.exit(main())
