"""What code run by an executor may do: the policy shared by every executor.

Layer 3 (executors). This module holds data and pure checks only; the compiler (``compiler.py``)
applies the static rules to the AST and the guards (``guards.py``, ``modules.py``) apply the same
rules at run time. Keeping the rules here means the in-process executor, the isolated worker and
any remote sandbox refuse exactly the same things with exactly the same messages.

Attribute rules (documented for users in ``InProcessExecutor``'s docstring):

* Dunder attributes (``__x__``) are refused, except the harmless ones in ``ALLOWED_DUNDERS`` that
  ordinary code needs (``super().__init__(...)``, ``f.__name__``, ``x.__len__()``, ...). Reading
  ``x.__class__`` is allowed: it gives ``type(x)``, which code can call anyway (writing it stays
  refused). Everything that leads on to interpreter internals (``__base__``, ``__bases__``,
  ``__mro__``, ``__subclasses__``, ``__dict__``, ``__globals__``, ``__code__``, ``__closure__``,
  ``__self__``, ``__func__``, ``__builtins__``, ``__getattribute__``, ``__reduce__``,
  ``__traceback__``...) is not in it, so an escape chain such as
  ``().__class__.__base__.__subclasses__()`` is refused at its next step.
* Private attributes (``_x``, and name-mangled ``__x``) are allowed only on instances and classes
  that the sandboxed code defined itself (``self._cache`` works), plus the public-by-convention
  names in ``ALLOWED_PRIVATE`` (``namedtuple._asdict``...). On anything else (modules, library
  objects, tools) they are refused.
* Frame, code, generator, coroutine and traceback internals (``gi_frame``, ``f_globals``,
  ``tb_frame``, ``co_code``...) are refused on every object, whatever its type.
* Writes: dunders may be written only from ``ALLOWED_DUNDER_STORES`` (``wrapper.__name__ = ...``);
  no attribute may be written on a class the code did not define; classes may not define
  ``__reduce__``/``__reduce_ex__`` (copy would obey them); ``__match_args__`` names used by a
  ``case C(x)`` pattern follow the attribute rules.

The same rules hold wherever a name arrives as a string: ``getattr``/``setattr``/``hasattr``/
``delattr``, ``str.format``/``format_map`` fields, ``string.Formatter``, ``operator.attrgetter``/
``methodcaller``, ``functools.update_wrapper``/``wraps``, string annotations that
``typing.get_type_hints`` or ``functools.singledispatch`` would evaluate.
"""

from __future__ import annotations

import _string  # type: ignore[import-not-found]  # C helpers behind str.format's parser
import importlib.util
import types
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InterpreterError

__all__ = [
    "DEFAULT_AUTHORIZED_IMPORTS",
    "DANGEROUS_MODULES",
    "DANGEROUS_FUNCTIONS",
    "ALLOWED_DUNDERS",
    "ALLOWED_PRIVATE",
    "ALLOWED_DUNDER_STORES",
    "FORBIDDEN_ATTRIBUTES",
    "FORBIDDEN_BUILTINS",
    "Policy",
    "PolicyViolation",
    "OperationLimitExceeded",
    "ExecutionTimeout",
    "attribute_violation",
    "format_attributes",
    "format_attribute_violation",
    "dunder_store_violation",
    "needs_owner_check",
    "is_dunder",
]

DEFAULT_AUTHORIZED_IMPORTS: frozenset[str] = frozenset(
    {
        "abc",
        "bisect",
        "collections",
        "copy",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "fractions",
        "functools",
        "heapq",
        "itertools",
        "json",
        "math",
        "operator",
        "queue",
        "random",
        "re",
        "stat",
        "statistics",
        "string",
        "textwrap",
        "time",
        "typing",
        "unicodedata",
    }
)

# Authorizing one of these hands the code a way around the policy (files, processes, raw
# memory, interpreter internals). They can still be authorized explicitly; the docs say so.
DANGEROUS_MODULES: frozenset[str] = frozenset(
    {
        "asyncio", "builtins", "ctypes", "gc", "importlib", "inspect", "io", "marshal", "multiprocessing", "os",
        "pathlib", "pickle", "posix", "pty", "shutil", "signal", "socket", "subprocess", "sys",
        "threading", "types", "_thread",
    }
)  # fmt: skip

# Dunders that normal code needs and that give no way into interpreter internals.
# Functions refused even when their module is authorized (the list smolagents publishes under this name;
# codeloop's guards refuse them, and more, by rule: see FORBIDDEN_BUILTINS and the module gate).
DANGEROUS_FUNCTIONS: tuple[str, ...] = (
    "builtins.compile",
    "builtins.eval",
    "builtins.exec",
    "builtins.globals",
    "builtins.locals",
    "builtins.__import__",
    "os.popen",
    "os.system",
    "posix.system",
)

ALLOWED_DUNDERS: frozenset[str] = frozenset(
    {
        # identity and documentation (strings)
        "__name__", "__qualname__", "__doc__", "__module__", "__version__", "__all__",
        # construction, so super().__init__(...) and Base.__new__(cls) work
        "__init__", "__new__", "__post_init__",
        # protocols a class defines and code sometimes calls directly
        "__enter__", "__exit__", "__aenter__", "__aexit__", "__iter__", "__next__", "__aiter__",
        "__anext__", "__len__", "__contains__", "__getitem__", "__setitem__", "__delitem__",
        "__missing__", "__call__", "__str__", "__repr__", "__format__", "__hash__", "__bool__",
        "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__reversed__", "__copy__",
        "__deepcopy__", "__sizeof__",
        "__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__", "__pow__",
        "__matmul__", "__divmod__", "__lshift__", "__rshift__", "__and__", "__or__", "__xor__",
        "__radd__", "__rsub__", "__rmul__", "__rtruediv__", "__rfloordiv__", "__rmod__", "__rpow__",
        "__rmatmul__", "__rdivmod__", "__rlshift__", "__rrshift__", "__rand__", "__ror__", "__rxor__",
        "__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__", "__ipow__",
        "__imatmul__", "__ilshift__", "__irshift__", "__iand__", "__ior__", "__ixor__",
        "__neg__", "__pos__", "__abs__", "__invert__", "__int__", "__float__", "__complex__",
        "__index__", "__round__", "__trunc__", "__floor__", "__ceil__",
        # class-level data that is plain data
        "__slots__", "__match_args__", "__members__",
        # x.__class__ is type(x) (read only: ALLOWED_DUNDER_STORES leaves it out)
        "__class__",
        # exception chaining (the traceback itself stays refused)
        "__cause__", "__context__", "__suppress_context__", "__notes__",
    }
)  # fmt: skip

# Dunders code may also write (``wrapper.__name__ = f.__name__``). Writing the others after a class
# exists (``C.__match_args__ = ...``, ``C.__eq__ = ...``) is refused: define them in the class body.
ALLOWED_DUNDER_STORES: frozenset[str] = frozenset({"__name__", "__qualname__", "__doc__", "__module__"})

# Dunder names (not attributes) code may write as plain names. ``__name__`` reads "__main__". The bare
# name ``__class__`` (a method's implicit class cell) stays out: the attribute rule is about ``x.__class__``.
ALLOWED_DUNDER_NAMES: frozenset[str] = (ALLOWED_DUNDERS - {"__class__"}) | {"__debug__", "__annotations__"}

# Private-looking names that are public API by convention.
ALLOWED_PRIVATE: frozenset[str] = frozenset(
    {"_asdict", "_replace", "_fields", "_make", "_field_defaults", "_name_", "_value_", "_missing_"}
)


def _internal_attribute_names() -> frozenset[str]:
    """Names of frame/code/generator/coroutine/traceback internals, read off the real types."""
    names: set[str] = {"func_globals", "func_code", "func_closure", "im_func", "im_self", "cell_contents"}

    def gen():
        yield

    async def coro():
        pass

    async def agen():
        yield

    c = coro()
    c.close()
    samples: list[Any] = [gen(), c, agen(), (lambda: 0).__code__]
    try:
        raise ValueError
    except ValueError as exc:
        tb = exc.__traceback__
        samples += [tb, tb.tb_frame] if tb is not None else []
    for obj in samples:
        for name in dir(obj):
            if name.startswith(("gi_", "cr_", "ag_", "co_", "f_", "tb_")):
                names.add(name)
    # names that are not on every type but must stay refused if a future version adds them
    names.update({"gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "cr_origin"})
    names.update({"ag_frame", "ag_code", "ag_await", "f_locals", "f_globals", "f_back", "f_builtins"})
    names.update({"f_code", "f_trace", "tb_frame", "tb_next", "co_code", "co_consts"})
    return frozenset(names)


FORBIDDEN_ATTRIBUTES: frozenset[str] = _internal_attribute_names()

# Builtins code never gets (unless the caller passes a tool or function with that name).
FORBIDDEN_BUILTINS: frozenset[str] = frozenset(
    {
        "exec", "eval", "compile", "open", "input", "breakpoint", "globals", "locals", "vars",
        "__import__", "help", "exit", "quit", "copyright", "credits", "license",
    }
)  # fmt: skip


class PolicyViolation(BaseException):
    """Code broke a policy rule. A BaseException so ``except Exception`` in the code cannot hide it."""

    exc_type = "PolicyViolation"


class OperationLimitExceeded(BaseException):
    """The operation budget is spent. Sticky: every later check raises again."""

    exc_type = "OperationLimit"


class ExecutionTimeout(BaseException):
    """The wall-clock deadline passed. Sticky: every later check raises again."""

    exc_type = "Timeout"


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def attribute_violation(name: str, *, private_ok: bool = False) -> str | None:
    """The message for reading/writing attribute ``name``, or None when the name itself is fine.

    ``private_ok`` says the object belongs to the sandboxed code, so ``_x`` names are allowed on it.
    """
    if name.startswith("_"):
        if is_dunder(name):
            if name in ALLOWED_DUNDERS:
                return None
            return f"Forbidden access to dunder attribute: {name} (reading '{name}' is refused; rule: no dunder attributes)"
        if private_ok or name in ALLOWED_PRIVATE:
            return None
        return (
            f"Forbidden access to private attribute '{name}' (rule: private attributes are only "
            "allowed on objects the code defined itself)"
        )
    if name in FORBIDDEN_ATTRIBUTES:
        return f"Forbidden access to interpreter internals '{name}' (rule: no frame/code/generator internals)"
    return None


def dunder_store_violation(name: str) -> str | None:
    """The message for writing or deleting attribute ``name`` when it is a dunder code may not write,
    else None (``x.__class__ = C`` is refused like every dunder outside ``ALLOWED_DUNDER_STORES``)."""
    if not is_dunder(name) or name in ALLOWED_DUNDER_STORES:
        return None
    hint = "" if name == "__class__" else ": define it in the class body instead"
    return f"Forbidden write of dunder attribute '{name}'{hint} (rule: no dunder attributes)"


def format_attributes(fmt: str) -> Iterator[str]:
    """The attribute names a ``str.format`` string reads, in order, nested specs included
    (``"{0.a[1].b:{x.c}}"`` gives a, b, c). Malformed parts give nothing: str.format raises for them."""
    try:
        parsed = list(_string.formatter_parser(fmt))
    except ValueError:
        return
    for _literal, field, spec, _conv in parsed:
        if field:
            try:
                rest = list(_string.formatter_field_name_split(field)[1])
            except ValueError:
                rest = []
            for is_attr, key in rest:
                if is_attr:
                    yield str(key)
        if spec and "{" in spec:
            yield from format_attributes(spec)


def format_attribute_violation(name: str) -> str | None:
    """``attribute_violation`` for a name read through a format string. Private names are not judged
    here: they are allowed on the code's own objects, which only the run-time check can see."""
    if name.startswith("_") and not is_dunder(name):
        return None
    if attribute_violation(name) is None:
        return None
    return (
        f"Forbidden attribute access '.{name}' in a format string (rule: no dunder attributes or "
        "interpreter internals, also through str.format)"
    )


def needs_owner_check(name: str) -> bool:
    """A private name that is allowed only on objects the code defined itself."""
    return name.startswith("_") and not is_dunder(name) and name not in ALLOWED_PRIVATE


def _normalize_imports(names: Any) -> frozenset[str]:
    if names is None:
        return frozenset()
    if isinstance(names, str):
        names = [names]
    return frozenset(str(n).strip() for n in names if str(n).strip())


# import name -> the distribution to install, where they differ
PIP_NAMES = {
    "PIL": "pillow",
    "cv2": "opencv-python",
    "sklearn": "scikit-learn",
    "bs4": "beautifulsoup4",
    "yaml": "pyyaml",
    "skimage": "scikit-image",
    "Bio": "biopython",
    "dateutil": "python-dateutil",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "fitz": "pymupdf",
    "dotenv": "python-dotenv",
}


def check_installed(imports: Any) -> None:
    """Raise ``InterpreterError`` naming the authorized modules (top-level names) that are not installed."""
    missing = sorted(
        {
            top
            for name in _normalize_imports(imports)
            if name != "*" and (top := name.split(".")[0]) and importlib.util.find_spec(top) is None
        }
    )
    if missing:
        install = " ".join(PIP_NAMES.get(m, m) for m in missing)
        raise InterpreterError(
            f"Non-installed authorized modules: {', '.join(missing)}. Please install these modules "
            f"(pip install {install}) or remove them from the authorized imports list "
            "(additional_authorized_imports)."
        )

@dataclass(frozen=True)
class Policy:
    """The rules one executor applies. Frozen: build a new one with ``Policy.from_args`` or ``replace``.

    ``authorized_imports`` holds module names; a name also authorizes its submodules, ``"pkg.*"``
    is the same as ``"pkg"``, and ``"*"`` authorizes every module. ``None`` for a limit disables it.
    """

    authorized_imports: frozenset[str] = DEFAULT_AUTHORIZED_IMPORTS
    max_operations: int | None = 10_000_000
    timeout_seconds: float | None = 30.0
    max_print_outputs_length: int | None = 50_000
    max_recursion_depth: int = 500

    def __post_init__(self) -> None:
        object.__setattr__(self, "authorized_imports", _normalize_imports(self.authorized_imports))
        if self.max_operations is not None and self.max_operations <= 0:
            raise ValueError("max_operations must be a positive integer or None")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive or None")

    @classmethod
    def from_args(
        cls,
        additional_authorized_imports: Any = None,
        *,
        max_operations: int | None = 10_000_000,
        timeout_seconds: float | None = 30.0,
        max_print_outputs_length: int | None = 50_000,
        max_recursion_depth: int = 500,
        base_imports: Any = DEFAULT_AUTHORIZED_IMPORTS,
    ) -> Policy:
        """Build a policy the way smolagents' executors take their arguments.

        Raises ``InterpreterError`` when an added import names a module that is not installed (as
        smolagents does): the agent would otherwise be told it may use a module it cannot import.
        """
        check_installed(additional_authorized_imports)
        imports = _normalize_imports(base_imports) | _normalize_imports(additional_authorized_imports)
        return cls(
            authorized_imports=imports,
            max_operations=max_operations,
            timeout_seconds=timeout_seconds,
            max_print_outputs_length=max_print_outputs_length,
            max_recursion_depth=max_recursion_depth,
        )

    def with_imports(self, *names: str) -> Policy:
        return replace(self, authorized_imports=self.authorized_imports | _normalize_imports(names))

    @property
    def allows_all_imports(self) -> bool:
        return "*" in self.authorized_imports

    def is_import_authorized(self, module: str) -> bool:
        """True when ``module`` (dotted) or one of its parent packages is authorized."""
        auth = self.authorized_imports
        if "*" in auth:
            return True
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in auth or f"{prefix}.*" in auth:
                return True
        return False

    def import_refusal(self, module: str) -> str:
        listed = sorted(n for n in self.authorized_imports)
        return (
            f"Import of {module} is not allowed. Authorized imports are: {listed}. "
            "Add it to additional_authorized_imports to allow it (rule: authorized imports)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data, so the isolated worker can rebuild the same policy in the child process."""
        return {
            "authorized_imports": sorted(self.authorized_imports),
            "max_operations": self.max_operations,
            "timeout_seconds": self.timeout_seconds,
            "max_print_outputs_length": self.max_print_outputs_length,
            "max_recursion_depth": self.max_recursion_depth,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        return cls(
            authorized_imports=frozenset(data.get("authorized_imports", DEFAULT_AUTHORIZED_IMPORTS)),
            max_operations=data.get("max_operations", 10_000_000),
            timeout_seconds=data.get("timeout_seconds", 30.0),
            max_print_outputs_length=data.get("max_print_outputs_length", 50_000),
            max_recursion_depth=data.get("max_recursion_depth", 500),
        )


# Types whose objects are never handed to code from a module (they lead to raw bytecode or frames).
DANGEROUS_VALUE_TYPES: tuple[type, ...] = (types.CodeType, types.FrameType, types.TracebackType)
