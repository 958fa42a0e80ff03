"""Escape attempts against the in-process executor.

Each test tries one way around the policy and asserts two things: the forbidden effect did not
happen (a marker unchanged, a secret not leaked, no file created) and a clean InterpreterError came
back naming the broken rule.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from codeloop.errors import InterpreterError
from codeloop.executors import InProcessExecutor

SECRET = "s3cr3t-marker-9f1c"


def secret_tool(x: int = 0) -> int:
    """A host tool whose module globals hold a secret."""
    return x + 1


class Marker:
    value = "untouched"


MARKER = Marker()


def run(code: str, **kwargs):
    ex = InProcessExecutor(**kwargs)
    ex.send_tools({"secret_tool": secret_tool})
    ex.send_variables({"marker": MARKER})
    return ex, ex(code)


def refused(code: str, rule_words: str, **kwargs) -> InterpreterError:
    """Run code that must fail with an InterpreterError whose message contains ``rule_words``."""
    ex = InProcessExecutor(**kwargs)
    ex.send_tools({"secret_tool": secret_tool})
    ex.send_variables({"marker": MARKER})
    with pytest.raises(InterpreterError) as info:
        ex(code)
    message = str(info.value)
    assert SECRET not in message
    assert SECRET not in getattr(info.value, "logs", "")
    assert rule_words in message, message
    assert MARKER.value == "untouched"
    return info.value


# ---- dunder and internals walks ----------------------------------------------------------------
def test_subclasses_walk_is_refused():
    # x.__class__ is type(x) and may be read; every step after it stays refused
    err = refused("().__class__.__bases__[0].__subclasses__()", "dunder attribute: __bases__")
    assert err.exc_type == "PolicyViolation"
    assert "line 1" in str(err)
    refused("{}.__class__.__base__.__subclasses__()", "dunder attribute: __base__")
    refused("t = ().__class__\nt.__mro__[-1].__subclasses__()", "dunder attribute: __mro__")
    refused("t = type(())\nt.__subclasses__()", "dunder attribute: __subclasses__")
    refused("c = getattr((), '__class__')\ngetattr(c, '__ba' + 'se__')", "dunder attribute: __base__")
    refused("c = (1).__class__.__class__\nc.__subclasses__(c)", "dunder attribute: __subclasses__")
    refused("def f(): pass\nf.__class__.__getattribute__(f, '__globals__')", "'__getattribute__'")
    refused("def f(): pass\nf.__class__.__dict__['__globals__']", "'__dict__'")


def test_a_refused_import_before_a_static_offence_is_reported_first():
    # the compiler refuses the whole action before it runs; a module-level import that precedes the
    # offence would have been refused first, so that refusal is the one reported (with its line)
    code = "x = 1\nimport sys\nb = sys._getframe().f_builtins"
    err = refused(code, "Import of sys is not allowed")
    assert err.lineno == 2 and "line 2" in str(err) and err.exc_type == "PolicyViolation"
    refused("import json; from os import path; f = (lambda: 0).__globals__", "Import of os is not allowed")
    # an import after the offence, or one inside a function that may never run, does not move it
    err = refused("g = (lambda: 0).__globals__\nimport sys", "'__globals__'")
    assert err.lineno == 1
    refused("def f():\n    import os\ng = (lambda: 0).__globals__", "'__globals__'")
    refused("import sys\ng = (lambda: 0).__globals__", "'__globals__'", additional_authorized_imports=["sys"])


def test_class_attribute_reads_as_type_and_cannot_be_written():
    ex = InProcessExecutor()
    code = (
        "class A:\n    pass\n"
        "a = A()\n"
        "checks = [a.__class__ is type(a) is A, (1).__class__ is int, getattr([], '__class__') is list,\n"
        "          hasattr(a, '__class__'), '{0.__class__.__name__}'.format(a) == 'A']\n"
        "checks"
    )
    assert ex(code).output == [True, True, True, True, True]
    refused("x = []\nx.__class__ = dict", "Forbidden write of dunder attribute '__class__'")
    refused("class A:\n    pass\na = A()\na.__class__ = int", "Forbidden write of dunder attribute '__class__'")
    refused("setattr(marker, '__class__', int)", "Forbidden write of dunder attribute '__class__'")
    refused("class A:\n    pass\ndelattr(A(), '__class__')", "Forbidden write of dunder attribute '__class__'")
    refused("del marker.__class__", "Forbidden write of dunder attribute '__class__'")
    refused("class A:\n    __class__ = int", "dunder name '__class__'")
    assert type(MARKER) is Marker


def test_subclasses_through_type_and_getattr():
    refused("t = type(())\nsubs = getattr(object, '__subclasses__')()", "dunder attribute: __subclasses__")


def test_tool_globals_are_unreachable():
    refused("secret_tool.__globals__['SECRET']", "'__globals__'")
    refused("getattr(secret_tool, '__glob' + 'als__')", "'__globals__'")


def test_builtins_via_self_of_builtin_method():
    refused("b = print.__self__", "'__self__'")
    refused("b = len.__self__", "'__self__'")
    refused("__builtins__", "dunder name '__builtins__'")


def test_generator_frame_walk_is_refused():
    code = "def g():\n    yield 1\nit = g()\nf = it.gi_frame\nf.f_back.f_globals"
    err = refused(code, "gi_frame")
    assert "line 4" in str(err)


def test_generator_frame_walk_through_getattr():
    code = "def g():\n    yield 1\nit = g()\nf = getattr(it, 'gi_' + 'frame')"
    refused(code, "gi_frame")


def test_coroutine_and_traceback_internals():
    refused("async def c():\n    pass\nx = c()\nx.cr_frame", "cr_frame")
    refused("try:\n    1/0\nexcept Exception as e:\n    tb = e.__traceback__", "'__traceback__'")
    refused("try:\n    1/0\nexcept Exception as e:\n    tb = getattr(e, '__traceback__')", "'__traceback__'")


def test_code_object_internals():
    refused("def f(): pass\nf.__code__.co_consts", "'__code__'")
    refused("x = (lambda: 0)\ny = getattr(x, 'func_globals', None)", "func_globals")


def test_format_traversal_is_refused():
    refused("'{0.__class__.__mro__}'.format(1)", "'.__mro__' in a format string")
    refused("'{0.__class__.__base__}'.format(1)", "'.__base__' in a format string")
    refused("s = '{0.__glo' + 'bals__}'\ns.format(secret_tool)", "format string")
    refused("s = '{f.__globals__}'\ns.format_map({'f': secret_tool})", "format string")
    refused("fmt = str.format\nfmt('{0.__class__.__base__}', 1)", "'.__base__' in a format string")
    refused("s = '{0:{1.__class__.__bases__}}'\ns.format(1, 2)", "'.__bases__' in a format string")
    refused("import string\nstring.Formatter().format('{0.__class__.__base__}', 1)", "'__base__'")


def test_string_formatter_traversal_is_refused():
    refused("import string\nstring.Formatter().format('{0.__globals__}', secret_tool)", "'__globals__'")


def test_userstring_format_traversal_is_refused():
    refused(
        "from collections import UserString\nUserString('{0.__globals__}').format(secret_tool)",
        "format string",
    )


def test_attrgetter_and_methodcaller_are_guarded():
    refused("import operator\noperator.attrgetter('__globals__')(secret_tool)", "'__globals__'")
    refused("import operator\noperator.methodcaller('__reduce_ex__', 2)(1)", "'__reduce_ex__'")
    refused("from operator import attrgetter\nattrgetter('gi_frame')((x for x in []))", "gi_frame")


def test_partial_and_map_getattr_tricks():
    refused("import functools\nfunctools.partial(getattr, secret_tool)('__globals__')", "'__globals__'")
    refused("list(map(getattr, [secret_tool], ['__globals__']))", "'__globals__'")


def test_getattribute_bypass_is_refused():
    refused("object.__getattribute__(secret_tool, '__globals__')", "'__getattribute__'")
    refused("type.__getattribute__(int, '__subclasses__')", "'__getattribute__'")


def test_class_dict_descriptor_trick_is_refused():
    refused("d = type.__dict__", "'__dict__'")
    refused("d = vars(type)", "vars")


# ---- modules ---------------------------------------------------------------------------------
def test_import_os_is_refused():
    err = refused("import os\nos.system('touch /tmp/x')", "Import of os is not allowed")
    assert "additional_authorized_imports" in str(err)


@pytest.mark.parametrize(
    ("code", "module"),
    [
        ("import random\nrandom._os", "_os"),
        ("import typing\ntyping.sys.modules", "sys"),
        ("import dataclasses\ndataclasses.sys", "sys"),
        ("import json\njson.decoder.re.sre_compile", "sre_compile"),
        ("import re\nre.copyreg", "copyreg"),
        ("import dataclasses\ndataclasses.inspect", "inspect"),
        ("import dataclasses\ndataclasses.builtins.open", "builtins"),
        ("import collections\ncollections._sys", "_sys"),
        ("from typing import sys", "sys"),
    ],
)
def test_module_reexports_are_refused(code, module):
    refused(code, module)


def test_module_private_attributes_via_getattr():
    refused("import random\ngetattr(random, '_os')", "'_os'")
    refused("import random\nrandom.__dict__", "'__dict__'")


@pytest.mark.parametrize(
    "mod", ["importlib", "ctypes", "pickle", "marshal", "subprocess", "sys", "builtins", "gc"]
)
def test_dangerous_modules_are_refused(mod):
    refused(f"import {mod}", f"Import of {mod} is not allowed")


def test_importlib_when_authorized_still_applies_policy():
    refused(
        "import importlib\nimportlib.import_module('os')",
        "Import of os is not allowed",
        additional_authorized_imports=["importlib"],
    )


def test_builtins_module_when_authorized_gives_guarded_builtins():
    refused("import builtins\nbuiltins.eval('1')", "eval", additional_authorized_imports=["builtins"])


def test_relative_and_private_imports_are_refused():
    refused("from . import x", "Relative imports")
    refused("import _thread", "Import of _thread is not allowed")
    refused("from random import _os", "private name '_os'")


def test_forbidden_builtins_are_missing():
    for name in ["exec", "eval", "compile", "open", "input", "breakpoint", "globals", "locals", "vars"]:
        refused(f"{name}", f"name '{name}' is not defined")
    refused("__import__('os')", "dunder name '__import__'")


def test_open_cannot_create_file(tmp_path):
    target = tmp_path / "created.txt"
    refused(f"open({str(target)!r}, 'w').write('x')", "name 'open' is not defined")
    assert not target.exists()


# ---- string annotations evaluated later ---------------------------------------------------------
def test_string_annotation_escape_is_refused():
    refused("def f(x: '().__class__'):\n    pass", "'__class__'")


def test_runtime_forward_ref_escape_is_refused():
    code = (
        "import typing\n"
        "s = '().__cla' + 'ss__'\n"
        "def f(x: typing.List[s]):\n"
        "    pass\n"
        "typing.get_type_hints(f)"
    )
    refused(code, "'__class__'")


def test_singledispatch_forward_ref_escape_is_refused():
    code = (
        "import functools, typing\n"
        "@functools.singledispatch\n"
        "def f(x):\n"
        "    return 0\n"
        "def g(x: typing.List['().__class__']):\n"
        "    return 1\n"
        "f.register(g)"
    )
    refused(code, "'__class__'")


# ---- tools and final_answer are read-only --------------------------------------------------------
@pytest.mark.parametrize(
    "code",
    [
        "secret_tool = 1",
        "final_answer = print",
        "secret_tool += 1",
        "del secret_tool",
        "import math as final_answer",
        "from math import sqrt as secret_tool",
        "def secret_tool():\n    pass",
        "class final_answer:\n    pass",
        "try:\n    1/0\nexcept Exception as secret_tool:\n    pass",
        "for secret_tool in range(3):\n    pass",
        "with open as secret_tool:\n    pass",
        "(secret_tool := 5)",
        "def f():\n    global secret_tool\n    secret_tool = 2",
        "def f(final_answer):\n    return final_answer",
        "lambda secret_tool: 1",
        "[1 for final_answer in range(3)]",
        "match 1:\n    case secret_tool:\n        pass",
        "match {}:\n    case {**final_answer}:\n        pass",
    ],
)
def test_tools_cannot_be_rebound(code):
    ex = InProcessExecutor()
    ex.send_tools({"secret_tool": secret_tool})
    with pytest.raises(InterpreterError, match="tools are read-only"):
        ex(code)
    assert ex("secret_tool(1)").output == 2
    assert ex("final_answer(7)").is_final_answer


def test_import_star_does_not_shadow_tools():
    ex = InProcessExecutor()
    ex.send_tools({"sqrt": lambda x: "tool"})
    out = ex("from math import *\nsqrt(4)")
    assert out.output == "tool"


# ---- process-level escapes -------------------------------------------------------------------
@pytest.mark.parametrize("exc", ["SystemExit", "KeyboardInterrupt", "GeneratorExit", "SystemExit(0)"])
def test_system_exit_does_not_end_the_host(exc):
    ex = InProcessExecutor()
    with pytest.raises(InterpreterError) as info:
        ex(f"print('before')\nraise {exc}")
    assert info.value.logs == "before\n"
    assert info.value.exc_type in ("SystemExit", "KeyboardInterrupt", "GeneratorExit")
    assert ex("1 + 1").output == 2  # the session still works


def test_recursion_bomb_ends_cleanly():
    ex = InProcessExecutor()
    with pytest.raises(InterpreterError, match="RecursionError"):
        ex("def f(n):\n    return f(n + 1) + 1\nf(0)")
    assert ex("2 * 3").output == 6


def test_output_flood_is_capped():
    ex = InProcessExecutor(max_print_outputs_length=1000)
    out = ex("for i in range(100000):\n    print('x' * 50, i)")
    assert len(out.logs) < 1300
    assert out.logs.startswith("x" * 50 + " 0\n")
    assert out.logs.rstrip().endswith("99999")
    assert "truncated" in out.logs


def test_operation_budget_stops_infinite_loop():
    ex = InProcessExecutor(max_operations=50_000)
    t = time.perf_counter()
    with pytest.raises(InterpreterError, match="max_operations") as info:
        ex("n = 0\nwhile True:\n    n += 1")
    assert info.value.exc_type == "OperationLimit"
    assert time.perf_counter() - t < 5
    assert 49_000 <= ex.state["n"] <= 50_000


def test_operation_budget_cannot_be_swallowed():
    ex = InProcessExecutor(max_operations=10_000)
    code = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"
    with pytest.raises(InterpreterError, match="max_operations"):
        ex(code)


def test_deadline_stops_slow_loop():
    ex = InProcessExecutor(timeout_seconds=0.5, max_operations=None)
    t = time.perf_counter()
    with pytest.raises(InterpreterError, match="timeout_seconds") as info:
        ex("x = 0\nwhile True:\n    x = sum(range(1000))")
    assert info.value.exc_type == "Timeout"
    assert time.perf_counter() - t < 3


def test_deadline_stops_recursion_without_loops():
    ex = InProcessExecutor(timeout_seconds=0.5, max_operations=None)
    t = time.perf_counter()
    with pytest.raises(InterpreterError, match="timeout_seconds"):
        ex("def f(n):\n    return 1 if n == 0 else f(n - 1) + f(n - 1)\nf(60)")
    assert time.perf_counter() - t < 3


def test_deadline_stops_sleep():
    ex = InProcessExecutor(timeout_seconds=0.3)
    t = time.perf_counter()
    with pytest.raises(InterpreterError, match="timeout_seconds"):
        ex("import time\ntime.sleep(30)")
    assert time.perf_counter() - t < 3


def test_deadline_stops_slow_iterations_with_watchdog():
    ex = InProcessExecutor(timeout_seconds=0.5, max_operations=None)
    t = time.perf_counter()
    with pytest.raises(InterpreterError, match="timeout_seconds"):
        ex("import time\nfor i in range(100):\n    time.sleep(0.1)")
    assert time.perf_counter() - t < 3


# A for loop counts through its iterator at module and class level, through a tick in its body in a
# function: each test runs its code in both places.
def _in_scope(code: str, scope: str) -> str:
    """``code`` at module level, in a class body, or in the body of a function that is then called."""
    if scope == "module":
        return code
    body = "".join(f"    {line}\n" for line in code.splitlines())
    if scope == "class":
        return f"class K:\n{body}"
    return f"def f():\n{body}f()"


LOOP_SCOPES = pytest.mark.parametrize("scope", ["module", "class", "function"])


@LOOP_SCOPES
def test_operation_budget_counts_for_loop_iterations(scope):
    ex = InProcessExecutor(max_operations=20_000)
    ex("import itertools\nprogress = []")
    with pytest.raises(InterpreterError, match="max_operations") as info:
        ex(_in_scope("for i in itertools.count():\n    progress.append(i)", scope))
    assert info.value.exc_type == "OperationLimit"
    assert 19_000 <= len(ex.state["progress"]) <= 20_000
    # and a loop within the budget runs to its end, else clause included
    code = "seen = 0\nfor i in range(15_000):\n    seen += 1\nelse:\n    seen = -seen\nprogress.append(seen)"
    ex(_in_scope(code, scope))
    assert ex.state["progress"][-1] == -15_000


@LOOP_SCOPES
def test_operation_budget_in_for_loop_cannot_be_swallowed(scope):
    ex = InProcessExecutor(max_operations=10_000)
    code = (
        "import itertools\nafter = 0\n"
        "for k in range(3):\n    try:\n        for i in itertools.count():\n            pass\n"
        "    except BaseException:\n        after += 1\n"
        "result = 'escaped'"
    )
    with pytest.raises(InterpreterError, match="max_operations"):
        ex(_in_scope(code, scope) + "\nescaped = 1")
    assert ex.state.get("escaped") is None


@LOOP_SCOPES
def test_deadline_stops_for_loop_of_slow_c_calls_with_watchdog(scope):
    # each iteration is one long C call: only the watchdog can stop the loop between two of them
    ex = InProcessExecutor(timeout_seconds=0.5, max_operations=None)
    ex("done = []")
    t = time.perf_counter()
    with pytest.raises(InterpreterError, match="timeout_seconds") as info:
        ex(_in_scope("for i in range(1000):\n    sum(range(2_000_000))\n    done.append(i)", scope))
    assert info.value.exc_type == "Timeout"
    assert time.perf_counter() - t < 3
    assert len(ex.state["done"]) < 1000


def test_loop_started_in_an_earlier_run_counts_against_the_current_run():
    ex = InProcessExecutor(max_operations=50_000)
    ex(
        "import itertools\n"
        "def g():\n    for i in itertools.count():\n        if i == 0 or i > 10**15:\n            yield i\n"
        "it = g()\nfirst = next(it)"
    )
    t = time.perf_counter()
    with pytest.raises(InterpreterError, match="max_operations"):
        ex("next(it)")  # the generator's loop, started in the first run, spins on in this one
    assert time.perf_counter() - t < 5
    assert ex("1 + 1").output == 2


def test_limit_of_an_earlier_run_does_not_follow_its_loops_into_the_next_run():
    # the outer loop meets the limit while the generator's loop is suspended (both count on the same
    # run's budget); resumed in the next run, the generator's loop draws on that run's budget
    ex = InProcessExecutor(max_operations=1001)
    code = (
        "import itertools\n"
        "def g():\n    for i in itertools.count():\n        yield i\n"
        "it = g()\nfor v in it:\n    pass"
    )
    with pytest.raises(InterpreterError, match="max_operations"):
        ex(code)
    assert ex("next(it)").output == 501


def test_for_loop_run_by_the_host_after_the_run_is_bounded():
    ex = InProcessExecutor()
    out = ex(
        "import itertools\nclass X:\n    def __repr__(self):\n        for i in itertools.count():\n            pass\nX()"
    )
    with pytest.raises(InterpreterError, match="outside a run"):
        repr(out.output)
    with pytest.raises(InterpreterError, match="outside a run"):
        repr(out.output)  # still spent until the next run
    assert ex("total = 0\nfor i in range(30_000):\n    total += i\ntotal").output == sum(range(30_000))


def test_deadline_cannot_be_swallowed():
    ex = InProcessExecutor(timeout_seconds=0.3, max_operations=None)
    code = (
        "def f():\n    return 1\n"
        "while True:\n    try:\n        while True:\n            f()\n    except BaseException:\n        pass"
    )
    with pytest.raises(InterpreterError, match="timeout_seconds"):
        ex(code)


# ---- writes to host objects ------------------------------------------------------------------
def test_private_and_dunder_writes_on_host_objects_are_refused():
    refused("marker._value = 'pwned'", "private attribute '_value'")
    refused("setattr(marker, '__class__', int)", "'__class__'")
    refused("import json\njson.JSONEncoder.__init__ = None", "Forbidden write of dunder attribute '__init__'")
    refused("import json\nsetattr(json.JSONEncoder, '__init__', None)", "'__init__'")
    refused("import json\njson.JSONEncoder.encode = None", "no writes to classes the code did not define")
    refused(
        "class A:\n    def f(self):\n        self.x = 1\nimport json\nA.f(json.JSONEncoder)",
        "no writes to classes",
    )
    import json

    assert not hasattr(json.JSONEncoder, "x")


# A method remembers the owned class of its last ``self`` (astnodes.self_check): warm that cache with
# the code's own instances first, then hand the method a foreign ``self`` in the same run.
_WARM_SELF_CACHE = (
    "import json, random\n"
    "class A:\n"
    "    _randbelow = 7\n"
    "    def store(self):\n"
    "        self.pwned = 1\n"
    "    def peek(self):\n"
    "        return self._randbelow\n"
    "    def peek_bits(self):\n"
    "        return self._randbelow_with_getrandbits\n"
    "class B(A):\n"
    "    _randbelow_with_getrandbits = 8\n"
    "class Meta(type):\n"
    "    def __eq__(cls, other):\n"
    "        return True\n"
    "    def __hash__(cls):\n"
    "        return hash(A)\n"
    "    def __instancecheck__(cls, obj):\n"
    "        return True\n"
    "    def __subclasscheck__(cls, sub):\n"
    "        return True\n"
    "Fake = Meta('Fake', (random.Random,), {})\n"
    "Sneaky = type('Sneaky', (random.Random,), {'__class__': property(lambda s: A)})\n"
    "for _ in range(50):\n"
    "    A().store(); B().store(); A().peek(); B().peek(); B().peek_bits()\n"
    "    try:\n"
    "        A.peek(random.Random())\n"
    "    except BaseException:\n"
    "        pass\n"
)


@pytest.mark.parametrize(
    ("attack", "rule_words"),
    [
        ("A.store(json.JSONEncoder)", "no writes to classes"),
        ("B.store(json.JSONEncoder)", "no writes to classes"),
        ("A.peek(random.Random())", "'_randbelow'"),
        ("A.peek(Fake())", "'_randbelow'"),
        ("A.peek(Sneaky())", "'_randbelow'"),
        ("class R(A, random.Random):\n    pass\nR().peek_bits()", "'_randbelow_with_getrandbits'"),
    ],
)
def test_warm_self_check_still_refuses_a_foreign_self(attack, rule_words):
    refused(_WARM_SELF_CACHE + attack, rule_words)
    import json

    assert not hasattr(json.JSONEncoder, "pwned")


def test_metaclass_or_decorator_returning_host_class_gets_no_ownership():
    refused(
        "import json\nclass X(metaclass=lambda *a: json.JSONEncoder):\n    pass\nX._one_shot", "'_one_shot'"
    )
    refused("import json\n@lambda c: json.JSONEncoder\nclass X:\n    pass\nX._one_shot", "'_one_shot'")


def test_private_names_of_foreign_bases_are_refused():
    code = "import random\nclass R(random.Random):\n    pass\nR._randbelow"
    refused(code, "'_randbelow'")


def test_reserved_helper_names_are_refused():
    refused("__codeloop_priv__ = lambda o, n: o", "reserved")
    refused("x = __codeloop_tick__", "reserved")


def test_match_class_cannot_read_dunders():
    # reading __class__ through a pattern is type(x); the next step of the walk is refused
    refused("match 1:\n    case int(__class__=type(__base__=b)):\n        pass", "'__base__'")
    refused("match 1:\n    case int(__dict__=d):\n        pass", "'__dict__'")
    refused("class P:\n    __match_args__ = ('__class__', '__base__')", "'__base__'")
    code = (
        "class P:\n    __match_args__ = ('x',)\n    def __init__(self):\n        self.x = type\n"
        "match P():\n    case P(type(__subclasses__=s)):\n        pass"
    )
    refused(code, "'__subclasses__'")


def test_host_process_untouched():
    """Sanity: after all of the above, the host's own state is intact."""
    assert os.path.exists(sys.executable)
    assert MARKER.value == "untouched"


def test_update_wrapper_cannot_read_or_write_arbitrary_attributes():
    sink = (
        "import functools\n"
        "got = []\n"
        "class Sink:\n"
        "    def __setattr__(self, name, value):\n"
        "        got.append(value)\n"
    )
    refused(
        sink + "functools.update_wrapper(Sink(), secret_tool, assigned=['__globals__'], updated=[])",
        "'__globals__'",
    )
    refused(sink + "functools.wraps(secret_tool, assigned=('__globals__',))(Sink())", "'__globals__'")
    refused("import functools\nfunctools.update_wrapper(secret_tool, len)", "objects the code did not define")
    assert not hasattr(secret_tool, "__wrapped__")


def test_class_rewriting_decorators_refuse_host_classes():
    import json

    before = json.JSONEncoder.__init__
    refused("import dataclasses, json\ndataclasses.dataclass(json.JSONEncoder)", "dataclasses.dataclass")
    refused("import functools, json\nfunctools.total_ordering(json.JSONEncoder)", "functools.total_ordering")
    assert json.JSONEncoder.__init__ is before


def test_dunder_and_internals_in_fstrings_are_refused():
    refused("f'{secret_tool.__globals__}'", "'__globals__'")
    refused("def g():\n    yield 1\nx = g()\nf'{x.gi_frame}'", "gi_frame")


def test_swallowed_limit_still_ends_the_action():
    ex = InProcessExecutor(max_operations=1000)
    code = "try:\n    while True:\n        pass\nexcept BaseException:\n    pass\nresult = 'escaped'\nresult"
    with pytest.raises(InterpreterError, match="max_operations"):
        ex(code)


def test_copy_reduce_gadget_is_refused():
    # copy._reconstruct would setattr whatever the reducer names onto whatever object it returns
    code = (
        "import copy, json\n"
        "class G:\n"
        "    def __reduce_ex__(self, proto):\n"
        "        return (lambda: json.JSONEncoder, (), (None, {'pwned': 1}))\n"
        "copy.copy(G())"
    )
    refused(code, "no pickling hooks")
    refused("import copy\ncopy.dispatch_table[int] = print", "dispatch_table")
    import json

    assert not hasattr(json.JSONEncoder, "pwned")


def test_match_args_gadget_is_refused():
    code = (
        "class Meta(type):\n"
        "    def __instancecheck__(cls, inst):\n"
        "        return True\n"
        "M = Meta('M', (), {'__match_args__': ('gi_frame',)})\n"
        "def g():\n"
        "    yield 1\n"
        "match g():\n"
        "    case M(f):\n"
        "        leaked = f\n"
    )
    err = refused(code, "gi_frame")
    assert "line 8" in str(err)
    refused("class C:\n    pass\nC.__match_args__ = ('gi_frame',)", "Forbidden write of dunder attribute")
    refused(
        "class C:\n    pass\nsetattr(C, '__match_args__', ('f_back',))", "Forbidden write of dunder attribute"
    )


def test_code_run_by_the_host_after_the_run_is_bounded():
    ex = InProcessExecutor()
    out = ex("class X:\n    def __repr__(self):\n        while True:\n            pass\nX()")
    with pytest.raises(InterpreterError, match="outside a run"):
        repr(out.output)
    assert ex("1 + 1").output == 2  # a new run starts with a fresh budget


def test_copy_reduce_gadget_through_type_call_is_refused():
    gadget = (
        "import copy, dataclasses, json\n"
        "def red(self, proto):\n"
        "    return (lambda: json.JSONEncoder, (), (None, {'pwned': 1}))\n"
        "G = type('G', (), {'__reduce_ex__': red})\n"
    )
    refused(gadget + "copy.copy(G())", "no pickling hooks")
    refused(gadget + "copy.deepcopy([G()])", "no pickling hooks")
    refused(
        gadget + "@dataclasses.dataclass\nclass D:\n    g: object\ndataclasses.asdict(D(G()))",
        "no pickling hooks",
    )
    import json

    assert not hasattr(json.JSONEncoder, "pwned")


def test_names_a_host_adds_to_builtins_are_not_exposed(monkeypatch):
    import builtins

    monkeypatch.setattr(builtins, "get_ipython", lambda: "host shell", raising=False)
    refused("get_ipython()", "name 'get_ipython' is not defined")
    refused("help", "name 'help' is not defined")
