"""InProcessExecutor: the policy without a process boundary, for trusted code and for speed.

Layer 3 (executors).
"""

from __future__ import annotations

from typing import Any

from .base import CodeOutput, PythonExecutor
from .policy import Policy
from .session import ExecutionSession

__all__ = ["InProcessExecutor"]


_POLICIES: dict[tuple[Any, ...], Policy] = {}


def _policy_for(imports: Any, max_operations: Any, timeout_seconds: Any, max_print: Any) -> Policy:
    """Policy.from_args, shared between executors with the same arguments (an agent makes one executor
    per run, all alike; a Policy is frozen)."""
    names = [imports] if isinstance(imports, str) else list(imports or ())
    if not all(isinstance(n, str) for n in names):
        return Policy.from_args(
            imports,
            max_operations=max_operations,
            timeout_seconds=timeout_seconds,
            max_print_outputs_length=max_print,
        )
    key = (tuple(names), max_operations, timeout_seconds, max_print)
    policy = _POLICIES.get(key)
    if policy is None:
        policy = Policy.from_args(
            names,
            max_operations=max_operations,
            timeout_seconds=timeout_seconds,
            max_print_outputs_length=max_print,
        )
        if len(_POLICIES) >= 64:
            _POLICIES.clear()
        _POLICIES[key] = policy
    return policy


class InProcessExecutor(PythonExecutor):
    """Runs code in this process under the same policy as the isolated worker. For trusted code and
    for speed: code runs as real CPython bytecode (parsed, checked and rewritten with guards first),
    at about CPython's speed.

    What it enforces (see ``policy.py`` for the lists):

    * imports: only authorized modules (a safe stdlib set + ``additional_authorized_imports``, "*" for
      all); code gets per-session module proxies that never hand out an unauthorized module
      (``typing.sys``, ``random._os`` are refused) and whose attribute-by-name helpers are checked
      versions (``operator.attrgetter``, ``string.Formatter``, ``functools.wraps``...);
    * attributes: no dunders except a small harmless allowlist (``__init__``, ``__name__``,
      ``__doc__``, operator methods, reading ``__class__``, which is ``type(x)``...); private ``_x``
      names only on objects the code defined; no frame/code/generator/coroutine/traceback internals;
      the same rules through ``getattr``,
      ``str.format``/``format_map`` traversal, ``attrgetter``... ; no writes to classes the code did
      not define;
    * builtins: no ``exec``, ``eval``, ``compile``, ``open``, ``input``, ``globals``, ``vars``...;
      tool names and ``final_answer`` cannot be rebound or shadowed;
    * limits: an operation budget (loop iterations), a deadline (also for calls, awaits and
      ``time.sleep``), a cap on printed output; ``SystemExit``/``KeyboardInterrupt`` end the action.

    What it cannot do, being in-process: stop one long C call (``sum(range(10**12))``, a huge
    ``"x" * n``), limit memory, or stop a call that blocks forever (``queue.Queue().get()``); tools
    run with this process's rights; public attributes of objects handed to the code (tools included)
    can be read and set, and shared mutable state of authorized modules can be changed. Use the
    isolated ``LocalPythonExecutor`` for code you do not trust. ``aexecute`` runs the code in a code
    thread (``ExecutionSession.arun``, via ``codeloop._sync.hand_off``) so the event loop stays free; the loop first waits up to
    ``handoff_wait`` seconds (2 ms), without the GIL, for the code to finish, which makes short code
    nearly as cheap as running it in the loop's thread; longer code goes on in its thread while the loop
    runs. After an action that took longer than that, the next one is handed off without waiting (code
    that calls slow tools every step does not stall the loop each time). ``offload_to_thread=False``
    runs code in the loop's thread (the loop waits for all of it); ``__call__`` runs it in the calling
    thread.
    """

    isolation = {"process": False, "policy": True}

    def __init__(
        self,
        additional_authorized_imports: list[str] | None = None,
        max_print_outputs_length: int | None = None,
        additional_functions: dict[str, Any] | None = None,
        timeout_seconds: float | None = 30.0,
        max_operations: int | None = 10_000_000,
        policy: Policy | None = None,
        offload_to_thread: bool = True,
        handoff_wait: float = 0.002,
        **kwargs: Any,
    ):
        if policy is None:
            policy = _policy_for(
                additional_authorized_imports,
                max_operations,
                timeout_seconds,
                max_print_outputs_length if max_print_outputs_length else 50_000,
            )
        self.policy = policy
        self.additional_authorized_imports = list(additional_authorized_imports or [])
        self.authorized_imports = sorted(policy.authorized_imports)
        self.additional_functions = dict(additional_functions or {})
        self.offload_to_thread = offload_to_thread
        self.session = ExecutionSession(
            policy, tools=self.additional_functions, offload=offload_to_thread, handoff_wait=handoff_wait
        )

    def send_tools(self, tools: dict[str, Any]) -> None:
        self.session.add_tools(dict(tools))

    def send_variables(self, variables: dict[str, Any]) -> None:
        self.session.add_variables(dict(variables))

    def __call__(self, code: str) -> CodeOutput:
        return self.session.run(code)

    async def aexecute(self, code: str) -> CodeOutput:
        return await self.session.arun(code)

    @property
    def state(self) -> dict[str, Any]:
        return self.session.state

    def set_tape(self, spec: dict[str, Any] | None) -> None:
        self.session.set_tape(spec)

    def take_tape(self) -> dict[str, Any] | None:
        return self.session.take_tape()

    @property
    def static_tools(self) -> dict[str, Any]:
        return self.session.tools
