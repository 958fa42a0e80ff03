"""ExecutionSession: the engine that runs agent code under the policy, step after step.

Layer 3 (executors). Used as is by ``InProcessExecutor`` and, inside the child process, by the
isolated worker; it depends on nothing host-specific (tools are plain callables).

One run: ``compile_code`` (cached) -> reset the print capture and the budget -> ``eval`` of the code
object in the session namespace, inside a copy of the current ``contextvars`` context (so changes
the code makes to context variables, e.g. the ``decimal`` context, stay inside) -> if the code has a
top-level ``await`` the result is a coroutine, which ``arun`` awaits and ``run`` drives on an event
loop -> a ``CodeOutput`` or an ``InterpreterError`` naming the line.

The namespace holds only the code's variables; tools, the guarded builtins and the compiler's
helpers live in a per-session builtins dict, so code cannot rebind them, and ``state`` stays clean.
"""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import inspect
import sys
import threading
import time
import types
from types import CodeType
from typing import Any

from ..errors import ExecutionTimeoutError, InterpreterError
from . import guards, hints, names, patches
from .base import CodeOutput
from .capture import PrintCapture
from .compiler import FILENAME, StaticViolation, compile_code
from .limits import Budget
from .modules import ModuleGate
from .policy import (
    FORBIDDEN_BUILTINS,
    ExecutionTimeout,
    OperationLimitExceeded,
    Policy,
    PolicyViolation,
    is_dunder,
)
from .tape import Tape

__all__ = ["ExecutionSession", "FinalAnswerSignal"]

_UNSET: Any = object()
_NO_SELF_TYPES = (None,) * names.SELF_TYPE_SLOTS


def _is_interpreter_builtin(value: Any) -> bool:
    """Only what CPython itself puts in builtins: not what site or a host (IPython's get_ipython,
    display...) added to the builtins module."""
    if value is None or value is Ellipsis or value is NotImplemented or isinstance(value, bool):
        return True
    if isinstance(value, type | types.BuiltinFunctionType):
        return getattr(value, "__module__", None) == "builtins"
    return False


# builtins code gets as they are (CPython's own public builtins, less FORBIDDEN_BUILTINS)
_PLAIN_BUILTINS: dict[str, Any] = {
    k: v
    for k, v in vars(builtins).items()
    if not k.startswith("_") and k not in FORBIDDEN_BUILTINS and _is_interpreter_builtin(v)
}
for _k in ("getattr", "hasattr", "setattr", "delattr", "print"):
    _PLAIN_BUILTINS.pop(_k, None)
_PLAIN_BUILTINS.update(
    {
        "getattr": guards.safe_getattr,
        "hasattr": guards.safe_hasattr,
        "setattr": guards.safe_setattr,
        "delattr": guards.safe_delattr,
        "__build_class__": builtins.__build_class__,
        names.PRIV: guards.priv_guard,
        names.STORE: guards.store_guard,
        names.ATTR: guards.attr_guard,
        names.MARK: guards.mark_class,
        names.SEAL: guards.seal_class,
        names.MATCH_CLASS: patches.match_class,
        names.MATCH_ERROR: patches.match_error,
        names.OWNED_IDS: guards.owned_ids,
        names.CLAIM_SELF: guards.claim_self,
        names.TOKEN: guards.TOKEN,
        names.TYPE: type,
        names.ID: id,
        names.SOURCE: patches.keep_source,
    }
)
# real builtins a caller may pass in tools that would undo the guards: use ours instead
_REPLACED_BY_GUARDS = {
    id(builtins.getattr): "getattr",
    id(builtins.hasattr): "hasattr",
    id(builtins.setattr): "setattr",
    id(builtins.delattr): "delattr",
    id(builtins.print): "print",
}


class FinalAnswerSignal(BaseException):
    """Raised by final_answer() to end the code at once; never seen by the caller."""

    def __init__(self, value: Any):
        super().__init__("final_answer")
        self.value = value


class ExecutionSession:
    """Runs code under ``policy``; variables persist across ``run``/``arun`` calls.

    Not re-entrant: one run at a time per session (several sessions may run at once in threads or
    tasks of one process).
    """

    def __init__(
        self,
        policy: Policy | None = None,
        tools: dict[str, Any] | None = None,
        variables: dict[str, Any] | None = None,
        *,
        own_process: bool = False,
        offload: bool = True,
        handoff_wait: float = 0.002,
        count_operations: tuple[int, int] | None = None,
    ):
        """``own_process=True`` (the isolated worker) lets each run set the interpreter's recursion
        limit to ``policy.max_recursion_depth`` frames above the caller; in a shared process the
        limit is process-wide, so the in-process executor leaves CPython's limit alone.

        ``offload=True``: ``arun`` runs the code in a worker thread, so the event loop stays free
        and the code may call ``asyncio.run``; ``False`` runs it in the loop's thread (saves the
        thread hand-off, tens of microseconds, but the loop waits for the code). ``handoff_wait``: see
        ``arun``.

        ``count_operations=(max_operations, max_while_iterations)``: count operations as smolagents'
        evaluator does (opcount.py; ``operations_count``) and stop code past those limits. For
        ``evaluate_python_code`` only: it costs a call per node."""
        self.policy = policy or Policy()
        self._own_process = own_process
        self._offload = offload
        self.handoff_wait = handoff_wait
        self._last_duration = 0.0  # seconds the last arun action ran in its code thread
        self._capture = PrintCapture(self.policy.max_print_outputs_length)
        self._builtins: dict[str, Any] = dict(_PLAIN_BUILTINS)
        self._builtins["print"] = self._capture.make_print()
        self._modules = ModuleGate(self.policy, self)
        # clock and random values of a run, recorded for a stored run's replay (see tape.py)
        self.tape = Tape(on_seed=lambda: self._modules.refresh("random"))
        self._tape_spec: dict[str, Any] | None = None
        self._last_tape: dict[str, Any] | None = None
        self._builtins["__import__"] = self._modules.import_
        self._builtins[names.RESULT] = self._set_result
        self._builtins[names.IMPORT_STAR] = self._import_star
        # the compiled methods' cache of owned classes (see astnodes.self_check): per session, and
        # emptied after each run so that it keeps no class alive longer than the run that used it
        self._self_types: list[type | None] = [None] * names.SELF_TYPE_SLOTS
        self._builtins[names.SELF_TYPES] = self._self_types
        self._namespace: dict[str, Any] = {
            "__builtins__": self._builtins,
            "__name__": "__main__",
            "__doc__": None,
        }
        self._budget = Budget(self.policy, self._builtins, self._namespace, own_process=own_process)
        self._tools: dict[str, Any] = {}
        self._guarded_tools: set[str] = set()  # tools that are guarded builtins (print...): read-only too
        self._protected: frozenset[str] = frozenset({"final_answer"})
        self._builtins["final_answer"] = self._wrap_final_answer(None)
        self._result: Any = None
        self._source: str | None = None  # the code of the current run, for the hints of its errors
        self._final: Any = _UNSET
        self._running = False
        self._saved_recursion_limit: int | None = None
        self._decimal_ctx: Any = None
        self._lock = threading.Lock()
        self._counting = count_operations
        self.operations_count = 0
        if count_operations is not None:
            self._loop_iterations: dict[int, int] = {}
            self._builtins[names.COUNT] = self._count
            self._builtins[names.COUNT_WHILE] = self._count_while
        if tools:
            self.add_tools(tools)
        if variables:
            self.add_variables(variables)

    # ---- configuration -------------------------------------------------------------------
    @property
    def protected_names(self) -> frozenset[str]:
        return self._protected

    @property
    def tools(self) -> dict[str, Any]:
        return dict(self._tools)

    def add_tools(self, mapping: dict[str, Any]) -> None:
        """Make callables available by name. They cannot be rebound or shadowed by the code."""
        for name, fn in mapping.items():
            if not isinstance(name, str) or not name.isidentifier() or name.startswith(names.RESERVED_PREFIX):
                raise ValueError(f"Invalid tool name {name!r}: tool names must be Python identifiers")
            if is_dunder(name):
                raise ValueError(f"Invalid tool name {name!r}: dunder names are reserved")
            if not callable(fn):
                raise TypeError(f"Tool {name!r} is not callable")
            guarded = _REPLACED_BY_GUARDS.get(id(fn))
            if guarded is not None and guarded == name:
                self._guarded_tools.add(name)  # still a tool: code may not rebind it
                continue  # the guarded builtin of that name is already there
            self._tools[name] = fn
            self._builtins[name] = self._wrap_final_answer(fn) if name == "final_answer" else fn
            self._namespace.pop(name, None)  # a variable of that name would shadow the tool
        self._protected = frozenset(self._tools) | self._guarded_tools | {"final_answer"}

    def add_variables(self, mapping: dict[str, Any]) -> None:
        """Define variables in the code's namespace (they persist, and code may reassign them)."""
        for name, value in mapping.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"Invalid variable name {name!r}: variable names must be Python identifiers")
            if name in self._protected:
                raise ValueError(f"Cannot define variable {name!r}: a tool has that name")
            if is_dunder(name) or name.startswith(names.RESERVED_PREFIX):
                raise ValueError(f"Cannot define variable {name!r}: dunder names are reserved")
            self._namespace[name] = value

    def namespace_keys(self) -> list[Any]:
        """The names in the code's namespace, the executor's own (dunder) entries included."""
        return list(self._namespace)

    @property
    def state(self) -> dict[str, Any]:
        """The code's variables (a copy of the namespace without the executor's entries)."""
        return {k: v for k, v in self._namespace.items() if not is_dunder(k)}

    def builtins_for_module(self, with_tools: bool = False) -> dict[str, Any]:
        """What ``import builtins`` shows code (only when authorized): the guarded builtins (``with_tools``:
        and the tools, which code may call by name anyway: ``builtins.exec`` when ``exec`` is a tool)."""
        return {
            k: v for k, v in self._builtins.items() if not k.startswith("_") and (with_tools or k not in self._tools)
        }

    def set_tape(self, spec: dict[str, Any] | None) -> None:
        """Record (``spec["replay"]``: replay) the clock and random values of the next run; ``spec["seed"]``
        seeds the session's random module once (see tape.py). None: the next run reads live values."""
        self._tape_spec = spec

    def take_tape(self) -> dict[str, Any] | None:
        """What the last run recorded: {"values": [[kind, value]...], "diverged": bool}, or None."""
        tape, self._last_tape = self._last_tape, None
        return tape

    # ---- helpers called by compiled code --------------------------------------------------
    def _set_result(self, value: Any) -> Any:
        self._result = value
        return value  # an assignment's value passes through (``x = __codeloop_result__(v)``)

    def _count(self, value: Any, n: int, loop: int | None = None) -> Any:
        self.operations_count += n
        if loop is not None:
            self._loop_iterations[loop] = 0
        limit = self._counting[0]  # type: ignore[index]
        if self.operations_count > limit:
            raise OperationLimitExceeded(
                f"Reached the max number of operations of {limit}. Maybe there is an infinite loop somewhere in "
                "the code, or you're just asking too many calculations. (rule: max_operations)"
            )
        return value

    def _count_while(self, loop: int, test: Any) -> Any:
        if test:
            done = self._loop_iterations.get(loop, 0) + 1
            self._loop_iterations[loop] = done
            limit = self._counting[1]  # type: ignore[index]
            if done > limit:
                raise OperationLimitExceeded(
                    f"Maximum number of {limit} iterations in While loop exceeded (rule: max_while_iterations)"
                )
        return test

    def _import_star(self, module: str, level: int) -> None:
        self._modules.import_star(module, level, self._namespace)

    def _wrap_final_answer(self, tool: Any) -> Any:
        def final_answer(*args: Any, **kwargs: Any) -> Any:
            if tool is not None:
                value = tool(*args, **kwargs)
            elif len(args) + len(kwargs) != 1 or (kwargs and "answer" not in kwargs):
                raise TypeError("final_answer() takes exactly one argument: the answer")
            else:
                value = args[0] if args else kwargs["answer"]
            self._final = value
            raise FinalAnswerSignal(value)

        if tool is not None:
            final_answer.__doc__ = getattr(tool, "__doc__", None)
        return final_answer

    def sleep(self, secs: Any) -> None:
        """``time.sleep`` for code: never sleeps past the deadline."""
        remaining = self._budget.remaining_time()
        if remaining is not None and isinstance(secs, int | float) and secs > remaining:
            time.sleep(remaining)
            self._budget.expire_now()
            raise ExecutionTimeout(
                f"Code execution exceeded the maximum execution time of {self.policy.timeout_seconds} seconds "
                "(rule: timeout_seconds)"
            )
        time.sleep(secs)

    # ---- running --------------------------------------------------------------------------
    def _compile(self, code: str) -> CodeType:
        if not isinstance(code, str):
            raise InterpreterError(f"Code must be a string, got {type(code).__name__}")
        try:
            return compile_code(code, self._protected, self._counting is not None)
        except SyntaxError as exc:
            text = (exc.text or "").rstrip("\n")
            pointer = ""
            if text and exc.offset:  # indented like the source lines of a Python traceback
                pointer = "\n    " + " " * (max(exc.offset, 1) - 1) + "^"
            err = InterpreterError(
                f"Code parsing failed at line {exc.lineno}: {type(exc).__name__}: {exc.msg}\n    {text}{pointer}"
            )
            _annotate(err, "", type(exc).__name__, exc.lineno)
            raise err from None
        except StaticViolation as exc:
            err = InterpreterError(_located(exc.lineno, exc.message))
            _annotate(err, "", exc.exc_type, exc.lineno)
            raise err from None

    def _begin(self) -> None:
        with self._lock:
            if self._running:
                raise InterpreterError("This execution session is already running code; runs cannot overlap")
            self._running = True
        self._capture.reset()
        self._result = None
        self._final = _UNSET
        spec, self._tape_spec = self._tape_spec, None
        self._last_tape = None
        if spec is not None or self.tape.active:
            self.tape.begin(spec)
        if self._own_process:
            depth = 0
            frame = sys._getframe()
            while frame is not None:
                depth += 1
                frame = frame.f_back  # type: ignore[assignment]
            self._saved_recursion_limit = sys.getrecursionlimit()
            sys.setrecursionlimit(depth + self.policy.max_recursion_depth + 8)
        self._budget.start()

    def _end(self) -> None:
        self._budget.stop()
        if self.tape.active:
            self._last_tape = self.tape.end()
        self._self_types[:] = _NO_SELF_TYPES
        if self._saved_recursion_limit is not None:
            sys.setrecursionlimit(self._saved_recursion_limit)
            self._saved_recursion_limit = None
        self._running = False

    def _eval(self, code: CodeType) -> Any:
        guards.ACTIVE_SESSION.set(self)
        dec = sys.modules.get("decimal")
        if dec is not None:  # the decimal context is an object shared through contextvars: use our own
            if self._decimal_ctx is None:
                self._decimal_ctx = dec.Context()
            dec.setcontext(self._decimal_ctx)
        return eval(code, self._namespace)  # noqa: S307 - policy-checked, rewritten code object

    def run(self, code: str) -> CodeOutput:
        """Run ``code`` and return its CodeOutput; raises InterpreterError on failure."""
        code_obj = self._compile(code)
        self._begin()
        self._source = code
        try:
            ctx = contextvars.copy_context()
            value = ctx.run(self._eval, code_obj)
            if inspect.iscoroutine(value):
                self._drive(value, ctx)
        except BaseException as exc:  # noqa: BLE001 - everything the code raises ends the action
            return self._failed(exc)
        finally:
            self._end()
        return self._output()

    async def arun(self, code: str) -> CodeOutput:
        """Like ``run``, without blocking the event loop: the code runs in a code thread (so it may itself
        call ``asyncio.run``); a top-level-``await`` coroutine is then awaited on this loop.

        The loop first waits up to ``handoff_wait`` seconds, without the GIL, for short code to finish
        (see ``codeloop._sync.hand_off``); after an action that ran longer, the next one is handed off
        without waiting, so code that calls slow tools every step does not stall the loop each time."""
        from .._sync import hand_off  # here, not at the top: the worker process never needs it

        code_obj = self._compile(code)
        self._begin()
        self._source = code
        ctx = contextvars.copy_context()

        def timed() -> Any:
            start = time.perf_counter()
            try:
                return ctx.run(self._eval, code_obj)
            finally:
                self._last_duration = time.perf_counter() - start

        future: asyncio.Future[tuple[bool, Any]] | None = None
        try:
            if self._offload:
                wait = self.handoff_wait if self._last_duration <= self.handoff_wait else 0.0
                pending = hand_off(timed, wait=wait)
                if isinstance(pending, asyncio.Future):
                    future = pending
                    # shielded: cancelling us must not mark the future done while its thread runs the code
                    ok, value = await asyncio.shield(future)
                else:
                    ok, value = pending
            else:  # in the loop's thread: no hand-off, but the loop waits for the code
                try:
                    ok, value = True, timed()
                except BaseException as exc:  # noqa: BLE001 - handled below like code-thread errors
                    ok, value = False, exc
            if not ok:
                raise value
            if inspect.iscoroutine(value):  # top-level await: the coroutine runs on this loop
                await asyncio.get_running_loop().create_task(self._with_deadline(value), context=ctx)
        except asyncio.CancelledError:
            if _is_outer_cancel():
                if future is None:
                    self._end()
                else:
                    self._cancelled(future)
                raise
            return self._failed_and_end(asyncio.CancelledError())
        except BaseException as exc:  # noqa: BLE001 - everything the code raises ends the action
            return self._failed_and_end(exc)
        self._end()
        return self._output()

    def _failed_and_end(self, exc: BaseException) -> CodeOutput:
        try:
            return self._failed(exc)
        finally:
            self._end()

    def _cancelled(self, fut: asyncio.Future[Any]) -> None:
        """The caller cancelled arun: stop the code at its next tick, end the run when it has stopped."""
        if fut.done():
            self._end()
            return
        self._budget.cancel()

        def finished(f: asyncio.Future[Any]) -> None:
            if not f.cancelled():
                f.exception()  # retrieved: the caller was told by the CancelledError
            self._end()

        fut.add_done_callback(finished)

    async def _with_deadline(self, coro: Any) -> Any:
        remaining = self._budget.remaining_time()
        try:
            return await asyncio.wait_for(coro, remaining)
        except TimeoutError:
            raise ExecutionTimeout(
                f"Code execution exceeded the maximum execution time of {self.policy.timeout_seconds} seconds "
                "(rule: timeout_seconds)"
            ) from None

    def _drive(self, coro: Any, ctx: contextvars.Context) -> None:
        """Run a top-level-await coroutine from sync code, in a fresh loop (another thread if one runs here)."""

        def runner() -> Any:
            return ctx.run(asyncio.run, self._with_deadline(coro))

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            runner()
            return
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                runner()
            except BaseException as exc:  # noqa: BLE001 - handed back to the calling thread
                box["exc"] = exc

        t = threading.Thread(target=target, name="codeloop-await", daemon=True)
        t.start()
        t.join()
        if "exc" in box:
            raise box["exc"]

    def _output(self) -> CodeOutput:
        logs = self._capture.getvalue()
        if self._final is not _UNSET:
            return CodeOutput(output=self._final, logs=logs, is_final_answer=True)
        tripped = self._budget.tripped
        if tripped is not None:  # the code swallowed a limit and ended quietly: the limit still ends it
            return self._failed(tripped)
        return CodeOutput(output=self._result, logs=logs, is_final_answer=False)

    def _failed(self, exc: BaseException) -> CodeOutput:
        if self._final is not _UNSET:  # final_answer was called, even if the code swallowed the signal
            return self._output()
        logs = self._capture.getvalue()
        lineno = _code_line(exc)
        tripped = self._budget.tripped
        if tripped is not None:  # whatever the code made of it, the limit is the cause
            exc = tripped if not isinstance(exc, ExecutionTimeout | OperationLimitExceeded) else exc
        if isinstance(exc, PolicyViolation | ExecutionTimeout | OperationLimitExceeded):
            exc_type = getattr(exc, "exc_type", type(exc).__name__)
            message = _located(lineno, str(exc))
        else:
            exc_type = type(exc).__name__
            detail = _text_of(exc) + self._modules.refusal_hint(exc)
            if type(exc) is NameError and isinstance(exc.name, str):  # smolagents' wording, kept
                detail += f" (The variable `{exc.name}` is not defined.)"
            hint = hints.explain(exc, self._source, FILENAME)
            if hint:
                detail = f"{detail} ({hint})" if detail else hint
            message = _located(lineno, f"{exc_type}: {detail}" if detail else exc_type)
        err = (ExecutionTimeoutError if isinstance(exc, ExecutionTimeout) else InterpreterError)(message)
        _annotate(err, logs, exc_type, lineno)
        raise err from (exc if isinstance(exc, Exception) else None)


def _text_of(exc: BaseException) -> str:
    """str(exc), which runs the code's own __str__: it may raise or stall; never let that escape."""
    try:
        text = str(exc)
    except BaseException as inner:  # noqa: BLE001
        try:
            args = ", ".join(repr(a)[:200] for a in exc.args if isinstance(a, str | int | float))
        except BaseException:  # noqa: BLE001
            args = ""
        return f"{args} (str() of the exception failed: {type(inner).__name__})".strip()
    return text if isinstance(text, str) else ""


def _is_outer_cancel() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _located(lineno: int | None, message: str) -> str:
    if lineno is None:
        return f"Code execution failed: {message}"
    return f"Code execution failed at line {lineno}: {message}"


def _annotate(err: InterpreterError, logs: str, exc_type: str, lineno: int | None) -> None:
    err.logs = logs  # type: ignore[attr-defined]
    err.exc_type = exc_type  # type: ignore[attr-defined]
    err.lineno = lineno  # type: ignore[attr-defined]


def _code_line(exc: BaseException) -> int | None:
    """Line of the innermost frame of agent code in the traceback."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is None and isinstance(exc, SyntaxError) and exc.filename == FILENAME:
        line = exc.lineno
    return line


BASE_PYTHON_TOOLS: dict[str, Any] = dict(_PLAIN_BUILTINS)
"""The builtins agent code gets (smolagents' name, kept for compatibility; read-only by convention)."""
