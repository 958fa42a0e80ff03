"""Imports for sandboxed code: the authorization check and the module proxies code receives.

Layer 3 (executors). Code never holds a real module object. ``import json`` binds a proxy: a
plain ``types.ModuleType`` filled with a snapshot of the real module's public attributes, where

* private and dunder names are left out (``random._os`` is refused);
* an attribute that is a module becomes that module's proxy only if the module is itself
  authorized (``json.decoder`` is there; ``typing.sys``, ``dataclasses.sys``, ``random.os`` are
  not: reading one is an AttributeError whose message, when it ends the run, names the rule);
* callables that look attributes up by name, evaluate strings or block are swapped for checked
  versions (``operator.attrgetter``, ``string.Formatter``, ``typing.get_type_hints``,
  ``time.sleep``, ``importlib.import_module``...), see ``_patches``.

A proxy has no PEP 562 ``__getattr__`` when it can do without one: CPython (3.11, 3.12) does not
specialize attribute reads on a module that has one, and ``math.sqrt`` then costs three times as
much (a third of a loop like ``[math.sqrt(i) for i in ...]``). The proxy of a module met as an
attribute is filled on first use (a ``__getattr__`` that fills the proxy and removes itself), so
importing a package does not snapshot everything it can reach. A ``__getattr__`` stays on proxies
that need one: of a module that has its own (lazy attributes), of a package that is not authorized
itself (only its authorized submodules are reachable), and of ``builtins``. A submodule imported
later is added to its parent's proxy by the import. Proxies are per session (code may set
attributes on its ``math`` without touching the host's).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import guards, patches, safecopy
from .policy import (
    DANGEROUS_FUNCTIONS,
    DANGEROUS_VALUE_TYPES,
    PIP_NAMES,
    ExecutionTimeout,
    Policy,
    PolicyViolation,
)

if TYPE_CHECKING:
    from .session import ExecutionSession

__all__ = ["ModuleGate", "PIP_NAMES"]


_COPIED_DUNDERS = ("__version__", "__all__", "__doc__")
_HIDDEN: Any = object()  # a patch value meaning: this attribute is not shown to code
# Functions of an authorized os that start other programs: refused unless authorized by their full name
# ("os.system") or by "*", or handed to the code as a tool of that name (smolagents' rule for its
# DANGEROUS_FUNCTIONS).
_PROCESS_FUNCTIONS = frozenset(
    {n.rpartition(".")[2] for n in DANGEROUS_FUNCTIONS if n.startswith(("os.", "posix."))}
    | {"execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe", "posix_spawn",
       "posix_spawnp", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe"}
)  # fmt: skip


class _Refused:
    """A patch value: reading this module attribute is refused with ``message``."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


class SysModulesView(Mapping[str, types.ModuleType]):
    """``sys.modules`` as code sees it when ``sys`` is authorized: the loaded modules it may import, as
    its proxies; reading another one is refused (``Forbidden access to module: os``)."""

    def __init__(self, gate: ModuleGate):
        self._gate = gate

    def __getitem__(self, name: str) -> types.ModuleType:
        if not isinstance(name, str):
            raise KeyError(name)
        if not self._gate.policy.is_import_authorized(name):
            raise PolicyViolation(
                f"Forbidden access to module: {name} (through sys.modules; '{name}' is not an authorized "
                "import (rule: authorized imports))"
            )
        real = sys.modules.get(name)
        if not isinstance(real, types.ModuleType):
            raise KeyError(name)
        return self._gate.proxy(real)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._gate.policy.is_import_authorized(name) and name in sys.modules

    def __iter__(self) -> Iterator[str]:
        allowed = self._gate.policy.is_import_authorized
        return iter([n for n, m in list(sys.modules.items()) if isinstance(m, types.ModuleType) and allowed(n)])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class ModuleGate:
    """Per-session import function and proxy cache."""

    def __init__(self, policy: Policy, session: ExecutionSession):
        self.policy = policy
        self.session = session
        self._proxies: dict[tuple[str, bool], types.ModuleType] = {}
        self._unfilled: set[int] = set()  # ids of proxies still waiting for their first read

    # ---- the __import__ code's import statements call ----------------------------------
    def import_(
        self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> types.ModuleType:
        if type(fromlist) is list:
            # Only C code calls us with a list (PyImport_Import, e.g. time.strptime importing
            # _strptime): it imports for itself and takes the module from sys.modules, never hands
            # our return value to the code. Import statements pass None or a tuple.
            return importlib.__import__(name, globals, locals, fromlist, level)
        if level:
            raise PolicyViolation("Relative imports are not allowed (rule: authorized imports)")
        if not isinstance(name, str) or not name:
            raise ValueError("Empty module name")
        real = self._load(name)
        if "." in name:
            self._bind_submodules(name)
        if not fromlist:
            top = name.partition(".")[0]
            if top == name:
                return self.proxy(real)
            return self.proxy(sys.modules[top], partial=not self.policy.is_import_authorized(top))
        for item in fromlist:
            if item == "*" or not isinstance(item, str) or item.startswith("_"):
                continue
            if not hasattr(real, item) and hasattr(real, "__path__"):
                sub = f"{name}.{item}"
                if self.policy.is_import_authorized(sub) and importlib.util.find_spec(sub) is not None:
                    self._load(sub)
                    self._bind_submodules(sub)
            value = vars(real).get(item)
            if isinstance(value, types.ModuleType) and not self.policy.is_import_authorized(value.__name__):
                raise PolicyViolation(
                    f"Forbidden import of module '{value.__name__}' through 'from {name} import {item}': "
                    f"'{value.__name__}' is not an authorized import (rule: authorized imports)"
                )
        return self.proxy(real)

    def refusal(self, name: str) -> str | None:
        """Why an import of module ``name`` is refused, or None when it is authorized."""
        if name == "__future__":
            return None
        private = any(part.startswith("_") for part in name.split("."))
        if not self.policy.is_import_authorized(name) or (
            private and name not in self.policy.authorized_imports and not self.policy.allows_all_imports
        ):
            return self.policy.import_refusal(name)
        return None

    def refused_before(self, source: str, line: int, col: int) -> tuple[int, str] | None:
        """The first module-level import statement of ``source`` that ends before ``(line, col)`` and
        is refused, as (its line, the refusal). The compiler refuses a whole action before it runs;
        an import statement that precedes the offence at module level would have been refused first,
        so that is the refusal to report (the first offence in reading order)."""
        try:
            body = ast.parse(source).body
        except SyntaxError:
            return None
        for stmt in body:
            if (stmt.end_lineno or stmt.lineno, stmt.end_col_offset or 0) > (line, col):
                break
            if isinstance(stmt, ast.Import):
                modules = [alias.name for alias in stmt.names]
            elif isinstance(stmt, ast.ImportFrom) and not stmt.level and stmt.module:
                modules = [stmt.module]
            else:
                continue
            for name in modules:
                if message := self.refusal(name):
                    return stmt.lineno, message
        return None

    def _load(self, name: str) -> types.ModuleType:
        if name == "__future__":
            return importlib.import_module(name)
        if message := self.refusal(name):
            raise PolicyViolation(message)
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            missing = exc.name or name
            if name == missing or name.startswith(missing + "."):
                top = missing.partition(".")[0]
                package = PIP_NAMES.get(top, top)
                raise ModuleNotFoundError(
                    f"Module '{name}' is authorized but not installed in this environment: install it "
                    f"with `pip install {package}`",
                    name=missing,
                ) from None
            raise
        if type(module) is not types.ModuleType:
            # A module object of another class may be a lazy stand-in (the worker loads asyncio so)
            # that becomes the real module at its first attribute read: read one, then snapshot that.
            getattr(module, "__all__", None)
            module = sys.modules.get(name, module)
        return module

    def import_star(self, module: str, level: int, namespace: dict[str, Any]) -> None:
        proxy = self.import_(module, fromlist=("*",), level=level)
        names = vars(proxy).get("__all__")
        if not isinstance(names, list | tuple):
            names = [n for n in vars(proxy) if not n.startswith("_")]
        protected = self.session.protected_names
        for n in names:
            if isinstance(n, str) and not n.startswith("_") and n not in protected:
                namespace[n] = getattr(proxy, n)

    # ---- proxies ---------------------------------------------------------------------------
    def proxy(self, real: types.ModuleType, partial: bool = False, lazy: bool = False) -> types.ModuleType:
        """The session's proxy of ``real`` (``partial``: of a package code may not import itself).
        ``lazy``: it may stay empty until code first reads an attribute of it."""
        key = (real.__name__, partial)
        p = self._proxies.get(key)
        if p is None:
            p = types.ModuleType(real.__name__)
            self._proxies[key] = p  # before filling: modules that reach each other get one proxy
            if lazy:
                p.__dict__["__getattr__"], p.__dict__["__dir__"] = self._make_filler(p, real, partial)
                return p
            self._fill(p, real, partial)
        elif not lazy and id(p) in self._unfilled:
            self._fill(p, real, partial)
        return p

    def _make_filler(self, proxy: types.ModuleType, real: types.ModuleType, partial: bool) -> tuple[Any, Any]:
        """``__getattr__`` and ``__dir__`` of a proxy not filled yet: fill it, then answer."""
        self._unfilled.add(id(proxy))

        def fill() -> None:
            if id(proxy) in self._unfilled:
                self._fill(proxy, real, partial)

        def fill_then_get(name: str) -> Any:
            fill()
            if name in proxy.__dict__:
                return proxy.__dict__[name]
            getattr_ = proxy.__dict__.get("__getattr__")
            if getattr_ is not None and getattr_ is not fill_then_get:
                return getattr_(name)
            raise AttributeError(f"module '{real.__name__}' has no attribute '{name}'")

        def fill_then_dir() -> list[str]:
            fill()
            return sorted(proxy.__dict__)

        return fill_then_get, fill_then_dir

    def _fill(self, p: types.ModuleType, real: types.ModuleType, partial: bool) -> None:
        self._unfilled.discard(id(p))
        d = p.__dict__
        d.pop("__getattr__", None)
        d.pop("__dir__", None)
        if real.__name__ == "builtins":
            source: dict[str, Any] = dict(self.session.builtins_for_module())
        else:
            source = dict(vars(real)) if not partial else {}
        patches = self._patches(real.__name__) if not partial else {}
        authorized = self.policy.is_import_authorized
        for k, v in source.items():
            if k.startswith("_") or isinstance(v, DANGEROUS_VALUE_TYPES):
                continue
            if isinstance(v, types.ModuleType):
                if authorized(v.__name__):
                    d.setdefault(k, self.proxy(v, lazy=True))
                continue
            d[k] = patches.get(k, v)
        for k, v in patches.items():
            if k in source or hasattr(real, k):
                d[k] = v
            if v is _HIDDEN or isinstance(v, _Refused):
                d.pop(k, None)
        if not partial:
            for k in _COPIED_DUNDERS:
                v = source.get(k)
                if isinstance(v, str) or (isinstance(v, list | tuple) and all(isinstance(x, str) for x in v)):
                    d[k] = v
        # (see the module docstring: only where the snapshot cannot be the whole story)
        if (
            partial
            or real.__name__ == "builtins"
            or callable(source.get("__getattr__"))
            or type(real) is not types.ModuleType  # its attributes may not all be in its __dict__
            or any(isinstance(v, _Refused) for v in patches.values())  # refused with a message
        ):
            d["__getattr__"] = self._make_getattr(real, partial, p)

    def refresh(self, name: str) -> None:
        """Fill the proxy of module ``name`` again (its stand-ins changed), if code imported it already."""
        p = self._proxies.get((name, False))
        real = sys.modules.get(name)
        if p is not None and real is not None and id(p) not in self._unfilled:
            self._fill(p, real, False)

    def _bind_submodules(self, name: str) -> None:
        """After ``import a.b.c``: ``b`` in the proxy of ``a``, ``c`` in that of ``a.b`` (those made before
        the submodule was loaded; a proxy made later finds it in its snapshot)."""
        parts = name.split(".")
        for i in range(1, len(parts)):
            parent = self._proxies.get((".".join(parts[:i]), False))
            if parent is None or id(parent) in self._unfilled or parts[i] in parent.__dict__:
                continue
            child = sys.modules.get(".".join(parts[: i + 1]))
            if isinstance(child, types.ModuleType) and self.policy.is_import_authorized(child.__name__):
                parent.__dict__[parts[i]] = self.proxy(child, lazy=True)

    def refusal_hint(self, exc: BaseException) -> str:
        """Why a module attribute that code read is missing from its proxy, when the policy is the
        reason (for the message of an AttributeError that ends the run), else ""."""
        if type(exc) is not AttributeError:  # (a subclass from code could compute obj and name)
            return ""
        obj, name = getattr(exc, "obj", None), getattr(exc, "name", None)
        if type(obj) is not types.ModuleType or not isinstance(name, str) or name.startswith("_"):
            return ""
        modname = vars(obj).get("__name__")
        if not isinstance(modname, str) or obj not in (
            self._proxies.get((modname, False)),
            self._proxies.get((modname, True)),
        ):
            return ""  # not one of this session's proxies
        real = sys.modules.get(modname)
        if real is None:
            return ""
        full = f"{real.__name__}.{name}"
        value = vars(real).get(name)  # no getattr: a module's own __getattr__ could import
        if isinstance(value, types.ModuleType) and not self.policy.is_import_authorized(value.__name__):
            return (
                f" (Forbidden access to module: {value.__name__}: '{full}' is not an authorized import "
                "(rule: authorized imports))"
            )
        if isinstance(value, DANGEROUS_VALUE_TYPES):
            return f" (access to '{full}' is forbidden (rule: no frame/code internals))"
        if self._patches(real.__name__).get(name) is _HIDDEN:
            return f" ('{full}' is hidden from code)"
        return ""

    def _make_getattr(self, real: types.ModuleType, partial: bool, proxy: types.ModuleType) -> Any:
        modname = real.__name__
        policy = self.policy

        def module_getattr(name: str) -> Any:
            if name.startswith("_"):
                # The code cannot get here (the compiler and the guards refuse these names first);
                # the interpreter itself asks for __spec__, __loader__... (module repr): not there.
                raise AttributeError(f"module '{modname}' has no attribute '{name}'")
            full = f"{modname}.{name}"
            if modname == "builtins":  # only the guarded builtins exist for code (and its tools)
                if name in self.session.protected_names:
                    return self.session.builtins_for_module(with_tools=True)[name]
                raise PolicyViolation(
                    f"Forbidden access to function: {name} ('builtins.{name}' is not available to code; "
                    "rule: forbidden builtins)"
                )
            if partial and not (
                policy.is_import_authorized(full)
                or any(a.startswith(full + ".") for a in policy.authorized_imports)
            ):
                raise PolicyViolation(policy.import_refusal(full))
            refused = self._patches(modname).get(name)
            if isinstance(refused, _Refused):
                raise PolicyViolation(refused.message)
            try:
                value = getattr(real, name)
            except AttributeError:
                raise AttributeError(f"module '{modname}' has no attribute '{name}'") from None
            if isinstance(value, types.ModuleType):
                # granting "os.path" grants the module Python registers under that name (posixpath)
                granted = sys.modules.get(full) is value and policy.is_import_authorized(full)
                if not granted and not policy.is_import_authorized(value.__name__):
                    raise PolicyViolation(
                        f"Forbidden access to module: {value.__name__} (through '{full}'; '{value.__name__}' is "
                        f"not an authorized import (rule: authorized imports))"
                    )
                return self.proxy(value)
            if isinstance(value, DANGEROUS_VALUE_TYPES):
                raise PolicyViolation(f"Forbidden access to '{full}' (rule: no frame/code internals)")
            patched = self._patches(modname).get(name, value)
            if patched is _HIDDEN:
                raise AttributeError(f"module '{modname}' has no attribute '{name}' (hidden from code)")
            return patched

        return module_getattr

    def _patches(self, modname: str) -> dict[str, Any]:
        """Replacements for callables that would step around the policy."""
        if modname == "operator":
            return {"attrgetter": guards.safe_attrgetter, "methodcaller": guards.safe_methodcaller}
        if modname == "string":
            return {"Formatter": guards.SafeFormatter}
        if modname == "collections":
            return {"UserString": guards.SafeUserString, "UserDict": safecopy.SafeUserDict}
        if modname == "typing":
            return {"get_type_hints": patches.safe_get_type_hints}
        if modname == "functools":
            import functools

            return {
                "singledispatch": patches.safe_singledispatch,
                "singledispatchmethod": patches.SafeSingledispatchmethod,
                "update_wrapper": patches.safe_update_wrapper,
                "wraps": patches.safe_wraps,
                "total_ordering": patches.owned_class_only(
                    functools.total_ordering, "functools.total_ordering"
                ),
            }
        if modname == "dataclasses":
            import dataclasses

            return {
                "dataclass": patches.owned_class_only(dataclasses.dataclass, "dataclasses.dataclass"),
                "asdict": safecopy.safe_asdict,
                "astuple": safecopy.safe_astuple,
            }
        if modname == "abc":
            import abc

            return {
                "update_abstractmethods": patches.owned_class_only(
                    abc.update_abstractmethods, "abc.update_abstractmethods"
                )
            }
        if modname == "copy":
            # a private instance of the module (see safecopy.py); the process-wide copyreg table
            # stays hidden: an entry added by code would run on copies the host makes too
            private = safecopy.private_copy_module()
            return {"copy": private.copy, "deepcopy": private.deepcopy, "dispatch_table": _HIDDEN}
        if modname == "time":
            return {"sleep": self.session.sleep, **self.session.tape.time_patches()}
        if modname == "random":
            return self.session.tape.random_patches()
        if modname == "secrets":
            return self.session.tape.secrets_patches()
        if modname == "uuid":
            return self.session.tape.uuid_patches()
        if modname == "importlib":
            return {"import_module": self._import_module}
        if modname == "sys":
            return {"modules": SysModulesView(self)}
        if modname in ("os", "posix", "nt"):
            return self._process_functions(modname)
        return {}

    def _process_functions(self, modname: str) -> dict[str, Any]:
        if self.policy.allows_all_imports:  # "*" grants everything, these too
            return {}
        granted = self.policy.authorized_imports
        tools = self.session.protected_names
        return {
            fn: _Refused(
                f"Forbidden access to function: {fn} ('{modname}.{fn}' starts other programs; "
                f"authorize it by name, e.g. additional_authorized_imports=[..., 'os.{fn}'] (rule: dangerous "
                "functions))"
            )
            for fn in _PROCESS_FUNCTIONS
            if f"os.{fn}" not in granted and f"{modname}.{fn}" not in granted and fn not in tools
        }

    def _import_module(self, name: str, package: str | None = None) -> types.ModuleType:
        if name.startswith("."):
            raise PolicyViolation("Relative imports are not allowed (rule: authorized imports)")
        try:
            real = self._load(name)
        except PolicyViolation as exc:  # smolagents' phrase for a module reached through a call
            raise PolicyViolation(f"Forbidden access to module: {name} ({exc})") from None
        if "." in name:
            self._bind_submodules(name)
        return self.proxy(real)


_ = ExecutionTimeout  # re-exported for the time.sleep patch living in session.py
