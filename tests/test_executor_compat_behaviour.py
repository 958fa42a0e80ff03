"""Executor behaviour added for smolagents compatibility (#16): error hints in smolagents' words, the
``sys.modules`` view, process functions of an authorized ``os``, and what ``SafeSerializer`` carries."""

from __future__ import annotations

import base64
import dataclasses
import json
import pathlib

import pytest

from codeloop.errors import InterpreterError
from codeloop.executors import InProcessExecutor, create_executor, evaluate_python_code
from codeloop.executors.serialization import SafeSerializer, SerializationError


def _error(code: str, **kwargs: object) -> str:
    with pytest.raises(InterpreterError) as info:
        evaluate_python_code(code, {}, state={}, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


@pytest.mark.parametrize(
    "code, phrase",
    [
        ("x = {'key': 1}\ndel x['key']\nx['key']", "KeyError: 'key' (Could not index {} with 'key')"),
        ("lst = [1, 2]\nlst[5]", "IndexError: list index out of range (Could not index [1, 2] with '5')"),
        ("v = 3\nv[0]", "Could not index 3 with '0'"),
        ("class C:\n    pass\no = C()\no[2]", "Could not index <C object> with '2'"),
        ("def f(d):\n    return d['zz']\nf({'za': 1})", "Could not index {'za': 1} with 'zz'"),
        ('caps = {"Bhutan": "Thimphu"}\ncaps["Butan"]', "Maybe you meant one of these indexes instead: ['Bhutan']"),
        ("def f(**k):\n    return k\nf(**[1])", "Cannot unpack non-dict value in **kwargs: list"),
        ("a, b = 1, 2, 3", "ValueError: too many values to unpack (expected 2) (Cannot unpack tuple of wrong size)"),
        ("del x", "Cannot delete name 'x': name is not defined"),
        ("assert 1 == 1\nassert 1 == 2", "AssertionError: Assertion failed: 1 == 2"),
        ("counts = [1]\ncounts += 1", "Cannot add non-list value 1 to a list."),
    ],
)
def test_python_errors_carry_smolagents_phrase_and_stay_themselves(code: str, phrase: str) -> None:
    message = _error(code)
    assert phrase in message
    assert message.startswith("Code execution failed at line")


def test_hints_never_run_the_codes_methods() -> None:
    # the container is the code's own object: only its type name is shown, its __repr__ never runs
    code = (
        "class Loud:\n    def __repr__(self):\n        print('repr ran')\n        return 'L'\n"
        "o = Loud()\no[1]"
    )
    with pytest.raises(InterpreterError) as info:
        InProcessExecutor()(code)
    assert "Could not index <Loud object> with '1'" in str(info.value)
    assert "repr ran" not in info.value.logs  # type: ignore[attr-defined]


def test_a_syntax_error_shows_the_line_and_pointer_indented() -> None:
    assert "SyntaxError: invalid syntax\n    a = ;\n        ^" in _error("a = ;")


@pytest.fixture(params=["inprocess", "local"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def _run(kind: str, imports: list[str], code: str, tools: dict | None = None) -> object:
    with create_executor(kind, additional_authorized_imports=imports) as ex:
        if tools:
            ex.send_tools(tools)
        return ex(code).output


def test_sys_modules_shows_only_authorized_modules(kind: str) -> None:
    with pytest.raises(InterpreterError, match="Forbidden access to module: os"):
        _run(kind, ["sys"], "import sys\nsys.modules['os']")
    assert _run(kind, ["sys", "math"], "import sys\n('os' in sys.modules, sys.modules['math'].sqrt(4))") == (False, 2.0)
    assert _run(kind, ["sys", "os"], "import sys\nsys.modules['os'].sep") == "/"


def test_authorized_os_still_refuses_process_functions_unless_named(kind: str) -> None:
    for code in ("import os\nos.system", "from os import popen", "import os\nos.execv"):
        with pytest.raises(InterpreterError, match="Forbidden access to function: "):
            _run(kind, ["os"], code)
    assert _run(kind, ["os"], "import os\nos.getcwd() != ''") is True  # the rest of os is there
    assert _run(kind, ["os", "os.system"], "import os\nos.system('true')") == 0
    assert _run(kind, ["*"], "import os\nos.system('true')") == 0


def test_a_tool_of_that_name_grants_the_function() -> None:
    import os

    ex = InProcessExecutor(additional_authorized_imports=["os", "builtins"])
    ex.send_tools({"popen": os.popen, "exec": exec})
    assert ex("import os\nos.popen").output is os.popen
    assert ex("import builtins\nbuiltins.exec").output is exec


@dataclasses.dataclass
class _Address:
    street: str


@dataclasses.dataclass
class _Person:
    name: str
    address: _Address


def test_safe_serializer_carries_paths_numpy_scalars_and_dataclasses() -> None:
    np = pytest.importorskip("numpy")
    value = {"p": pathlib.Path("/tmp/x y.txt"), "i": np.int32(4), "f": np.float64(0.5), "b": np.bool_(True)}
    text = SafeSerializer.dumps(value)
    assert text.startswith("safe:") and "pickle" not in text
    back = SafeSerializer.loads(text)
    assert back == {"p": pathlib.Path("/tmp/x y.txt"), "i": 4, "f": 0.5, "b": True}
    assert type(back["i"]) is int and isinstance(back["p"], pathlib.Path)
    person = SafeSerializer.loads(SafeSerializer.dumps(_Person("Bob", _Address("Main St"))))
    assert person == {
        "__dataclass__": "_Person",
        "__module__": __name__,
        "name": "Bob",
        "address": {"__dataclass__": "_Address", "__module__": __name__, "street": "Main St"},
    }


def test_safe_serializer_reads_smolagents_json_and_refuses_bad_data() -> None:
    written_by_smolagents = {
        "b": {"__type__": "bytes", "data": base64.b64encode(b"hi").decode()},
        "t": {"__type__": "tuple", "data": [1, {"__type__": "Path", "data": "/tmp"}]},
        "k": {"__type__": "dict_with_complex_keys", "data": [[{"__type__": "tuple", "data": [1, 2]}, "v"]]},
        "c": {"__type__": "complex", "real": 1.0, "imag": 2.0},
        "u": {"__type__": "no_such_type", "data": 1},
    }
    back = SafeSerializer.loads("safe:" + json.dumps(written_by_smolagents))
    assert back == {
        "b": b"hi",
        "t": (1, pathlib.Path("/tmp")),
        "k": {(1, 2): "v"},
        "c": 1 + 2j,
        "u": {"__type__": "no_such_type", "data": 1},
    }
    with pytest.raises(SerializationError):
        SafeSerializer.loads("safe:" + json.dumps({"__type__": "bytes", "data": "not-valid-base64!!!"}))
    with pytest.raises(SerializationError):
        SafeSerializer.loads("safe:" + json.dumps({"__type__": "ndarray", "data": [1], "dtype": "object"}))


def test_worker_results_carry_paths_and_numpy_scalars() -> None:
    pytest.importorskip("numpy")
    out = _run("local", ["pathlib", "numpy"], "import pathlib, numpy\n(pathlib.Path('/a/b'), numpy.int64(7))")
    assert out == (pathlib.Path("/a/b"), 7)
