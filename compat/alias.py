"""The import alias of the compatibility tier: ``smolagents`` and ``smolagents.<module>`` resolve to codeloop.

A migrating user changes ``from smolagents import X`` to ``from codeloop import X``; smolagents' own tests
import from smolagents' module paths (``smolagents.models``, ``smolagents.local_python_executor``), so each
of those paths becomes a view over the codeloop modules that hold the same names. A view reads names from
its modules in order and a write (``unittest.mock.patch``) goes to the first of them that holds the name,
so reads through the view see the patch.

Names that codeloop does not have are not invented here. Two kinds are given a stand-in so that a test file
can still be imported and its other tests run; using a stand-in raises, and the tests that use one are in
``exclusions.txt`` with the same reason:

* names that belong to an open codeloop issue (``PENDING``; none at present);
* smolagents' private internals that codeloop's design replaces (``PRIVATE``), e.g. ``evaluate_subscript``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

# smolagents module -> codeloop modules that hold its public names, home module first
VIEWS: dict[str, tuple[str, ...]] = {
    "smolagents": ("codeloop",),
    "smolagents.agents": (
        "codeloop.agents",
        "codeloop.agents.base",
        "codeloop.agents.prompts",
        "codeloop.memory",
        "codeloop.errors",
        "codeloop.agents.logger",
    ),
    "smolagents.tools": (
        "codeloop.tools",
        "codeloop.tools.base",
        "codeloop.tools.validation",
        "codeloop.ui.tool_demo",
    ),
    "smolagents.models": (
        "codeloop.models",
        "codeloop.models.base",
        "codeloop.models.openai",
        "codeloop.models.convert",
        "codeloop.messages",
    ),
    "smolagents.memory": ("codeloop.memory", "codeloop.messages"),
    "smolagents.monitoring": ("codeloop.agents.logger", "codeloop.messages"),
    "smolagents.utils": (
        "codeloop.errors",
        "codeloop.agents.parsing",
        "codeloop.tools.validation",
        "codeloop.tools.base",
        "codeloop.models.toolcall_parsing",
        "codeloop.executors.compat",
        "codeloop.tools.self_contained",
        "codeloop.agents.sharing",
    ),
    "smolagents.local_python_executor": (
        "codeloop.executors",
        "codeloop.executors.compat",
        "codeloop.executors.session",
        "codeloop.executors.policy",
        "codeloop.errors",
    ),
    "smolagents.default_tools": (
        "codeloop.tools",
        "codeloop.agents.default_tools",
        "codeloop.executors.interpreter_tool",
        "codeloop.executors.session",
    ),
    "smolagents.agent_types": ("codeloop.tools.agent_types", "codeloop.tools.agent_media"),
    "smolagents.tool_validation": ("codeloop.tools.validation", "codeloop.tools.self_contained"),
    "smolagents._function_type_hints_utils": (
        "codeloop.tools.decorator",
        "codeloop.tools.docstrings",
        "codeloop.tools.base",
    ),
    "smolagents.serialization": ("codeloop.executors.serialization",),
    "smolagents.prompts": ("codeloop.agents.prompts",),
}

# names of open issues: the tests that need them wait for that issue
PENDING: dict[str, str] = {}

# smolagents internals that codeloop's executor and memory replace by design (see exclusions.txt)
PRIVATE: frozenset[str] = frozenset(
    {
        "get_safe_module",
        "ALLOWED_DUNDER_METHODS",
        "MethodChecker",
        "CallbackRegistry",
        "instance_to_source",
        "Path",
        "RETRY_WAIT",
        "random",
    }
)


def _stand_in(name: str, why: str) -> Any:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise NotImplementedError(f"{name} is not in codeloop: {why}")

    return type(name, (), {"__init__": refuse, "__new__": refuse, "__call__": refuse, "__reason__": why})


class _View(types.ModuleType):
    """A smolagents module path whose names live in codeloop modules."""

    def __init__(self, name: str, homes: tuple[str, ...]):
        super().__init__(name)
        self.__dict__["_homes"] = homes
        self.__dict__["__path__"] = []  # a package, so that submodule paths import

    def _modules(self) -> list[types.ModuleType]:
        return [importlib.import_module(home) for home in self._homes]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for module in self._modules():
            try:
                return getattr(module, name)
            except AttributeError:
                continue
        if name in PENDING:
            return _stand_in(name, f"belongs to open issue {PENDING[name]}")
        if name in PRIVATE:
            return _stand_in(name, "a smolagents internal that codeloop replaces by design")
        raise AttributeError(f"{self.__name__} (codeloop: {', '.join(self._homes)}) has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("__"):  # the import system's own (__spec__, __package__…) belong to the view,
            super().__setattr__(name, value)  # never to the codeloop module behind it
            return
        for module in self._modules():
            if name in vars(module):
                # the first write keeps the module's own value: deleting the name through the view (how
                # unittest.mock ends a patch of a name not in the view's __dict__) puts it back
                self.__dict__.setdefault("_originals", {}).setdefault((module.__name__, name), vars(module)[name])
                setattr(module, name, value)
                return
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if name in self.__dict__:
            super().__delattr__(name)
            return
        originals = self.__dict__.get("_originals", {})
        for module in self._modules():
            if name in vars(module):
                if (module.__name__, name) in originals:
                    setattr(module, name, originals.pop((module.__name__, name)))
                else:
                    delattr(module, name)
                return
        raise AttributeError(name)


class SmolagentsAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Meta-path finder: ``import smolagents[.module]`` gives the codeloop view of that module."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname == "smolagents" or fullname.startswith("smolagents."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        homes = VIEWS.get(spec.name)
        if homes is None:
            raise ModuleNotFoundError(
                f"{spec.name} has no codeloop counterpart in the compatibility alias", name=spec.name
            )
        return _View(spec.name, homes)

    def exec_module(self, module: types.ModuleType) -> None:
        parent, _, child = module.__name__.rpartition(".")
        if parent:  # like a real submodule import: the parent gets the child as an attribute
            types.ModuleType.__setattr__(sys.modules[parent], child, module)


def install() -> None:
    """Put the alias first on ``sys.meta_path`` (a real smolagents install is then shadowed)."""
    if not any(isinstance(f, SmolagentsAlias) for f in sys.meta_path):
        sys.meta_path.insert(0, SmolagentsAlias())
