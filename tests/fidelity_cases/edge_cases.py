# Fidelity cases aimed at what a guarding compiler / capturing executor can get wrong: shadowed
# builtins, print's keyword arguments, module identity, str.format traversal, descriptors and
# metaclasses, name mangling, syntax errors at top level, tools raising inside code, final_answer edges.
# Format: see tests/fidelity_cases/__init__.py. Not an importable module.

# %% shadow_builtins_with_variables
sum = 0
for x in [1, 2, 3]:
    sum += x
max = "not a function"
list = [sum, max]
id = 7
type = "kind"
input = "user text"
list, id, type, input

# %% shadow_builtin_then_del_restores
len = lambda x: -1
print(len("abc"))
del len
len("abc")

# %% shadow_print_with_function
printed = []
def print(*args, **kwargs):
    printed.append(args)
print("captured by my print", 1)
printed

# %% print_keyword_arguments
print("a", "b", sep=None, end=None)
print("x", flush=True)
print(*"abc", sep=", ")
print(1, 2, 3, sep="\n")
print("", end="")
print("tail", end="\t|\n")

# %% print_bad_sep_type raises=TypeError
print("ok")
print("a", "b", sep=1)

# %% print_str_raises_midway raises=ValueError
class Bad:
    def __str__(self):
        raise ValueError("cannot render")
print("first line")
print("second", Bad(), "never")

# %% print_returns_none
r = print("side effect")
r, [print(i) for i in range(2)]

# %% dunder_main_guard
def main():
    print("running main")
    return 0
if __name__ == "__main__":
    status = main()
__name__, status

# %% type_name_of_exception
try:
    {}["k"]
except Exception as e:
    print(type(e).__name__, e)
[type(x).__name__ for x in (1, "s", None, [], {}, 1.5, range(1))]

# %% module_identity_and_from_import
import json
import json as j2
from json import loads
import collections.abc
import collections
json is j2, loads is json.loads, isinstance({}, collections.abc.Mapping), collections.abc.Sequence is collections.abc.Sequence

# %% module_repr_prefix
import math
str(math).startswith("<module 'math'"), repr(math) == str(math)

# %% import_submodule_forms
import collections.abc as cabc
from collections.abc import Iterable, Mapping
from collections import abc
isinstance([], Iterable), isinstance({}, Mapping), abc.Sized is cabc.Sized, issubclass(dict, cabc.MutableMapping)

# %% str_format_field_traversal
class Pt:
    def __init__(self):
        self.x = 3
        self.y = [10, 20]
p = Pt()
d = {"k": "v", "n": {"m": 1}}
print("{0.x} {0.y[1]} {1[k]} {1[n]}".format(p, d))
print("{p.x:>4}|{d[k]!r}".format(p=p, d=d))
print("{:>{w}}|{:.{prec}f}".format("a", 3.14159, w=5, prec=2))
"{x}-{y}".format_map({"x": 1, "y": 2}), "{0}{0}".format("ab")

# %% string_formatter_and_template
import string
f = string.Formatter()
print(f.format("{a} and {b!r}", a=1, b="two"))
string.Template("${x}y $z").safe_substitute(x="X"), list(f.parse("a{b}c"))[0][:2]

# %% top_level_return_is_syntax_error raises=SyntaxError
x = 1
return x

# %% top_level_yield_is_syntax_error raises=SyntaxError
yield 5

# %% await_in_sync_function_is_syntax_error raises=SyntaxError
async def f():
    return 1
def g():
    return await f()

# %% indentation_error raises=IndentationError
def f():
return 1

# %% syntax_error_reports_line raises=SyntaxError
x = 1
y = 2
z = (3 +
print(x)
w = [1, 2

# %% global_statement_at_module_level
global counter
counter = 1
def bump():
    global counter
    counter += 1
bump()
counter

# %% global_del_from_function raises=NameError
temp = 5
def drop():
    global temp
    del temp
drop()
temp

# %% nonlocal_without_binding_is_syntax_error raises=SyntaxError
def outer():
    def inner():
        nonlocal missing
        missing = 1
    return inner

# %% name_mangling_private_attributes
class Secret:
    def __init__(self):
        self.__hidden = "mangled"
        self._soft = "soft"
    def reveal(self):
        return self.__hidden
class Child(Secret):
    def peek(self):
        try:
            return self.__hidden
        except AttributeError as e:
            return "AttributeError"
s = Child()
s.reveal(), s.peek(), s._soft, s._Secret__hidden

# %% private_class_attribute_registry
class Registry:
    _items = {}
    @classmethod
    def add(cls, key, value):
        cls._items[key] = value
        return cls
    @classmethod
    def get(cls, key):
        return cls._items.get(key)
Registry.add("a", 1).add("b", 2)
Registry.get("b"), sorted(Registry._items)

# %% descriptor_protocol
class Positive:
    def __set_name__(self, owner, name):
        self.name = "_" + name
    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return getattr(obj, self.name, 0)
    def __set__(self, obj, value):
        if value <= 0:
            raise ValueError(f"{self.name[1:]} must be positive")
        setattr(obj, self.name, value)
class Order:
    qty = Positive()
    price = Positive()
    def __init__(self, qty, price):
        self.qty = qty
        self.price = price
o = Order(2, 5)
try:
    o.qty = -1
except ValueError as e:
    print(e)
o.qty * o.price, o._qty

# %% getattr_fallback_method
class Config:
    def __init__(self, **values):
        self._values = values
    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no setting {name!r}") from None
c = Config(debug=True, level=3)
print(c.debug, c.level, hasattr(c, "missing"), getattr(c, "missing", "dflt"))
c.level

# %% getattr_fallback_raises raises=AttributeError
class Config:
    def __getattr__(self, name):
        raise AttributeError(f"no setting {name!r}")
Config().verbose

# %% init_subclass_registry
plugins = []
class Plugin:
    def __init_subclass__(cls, kind="generic", **kwargs):
        plugins.append((cls.label, kind))
class A(Plugin, kind="alpha"):
    label = "a"
class B(Plugin):
    label = "b"
plugins

# %% simple_metaclass
class Upper(type):
    def __new__(mcs, name, bases, ns):
        extra = {k.upper(): v for k, v in ns.items() if not k.startswith("_")}
        return super().__new__(mcs, name, bases, {**ns, **extra})
class Thing(metaclass=Upper):
    color = "red"
    def hello(self):
        return "hi"
Thing.COLOR, Thing().HELLO(), isinstance(Thing, Upper)

# %% dynamic_class_with_type
Dyn = type("Dyn", (), {"x": 1, "double": lambda self: self.x * 2})
d = Dyn()
d.x = 21
d.double(), Dyn.x, type(d) is Dyn

# %% slots_class raises=AttributeError
class P:
    __slots__ = ("x", "y")
    def __init__(self, x, y):
        self.x, self.y = x, y
p = P(1, 2)
print(p.x + p.y)
p.z = 3

# %% dict_subclass_missing_and_str_subclass
class Default(dict):
    def __missing__(self, key):
        return f"<{key}>"
class Shout(str):
    def shout(self):
        return self.upper() + "!"
d = Default(a=1)
d["a"], d["zz"], "zz" in d, Shout("hey").shout(), Shout("a") + "b", isinstance(Shout("x"), str)

# %% list_subclass_private_state
class Stack(list):
    def __init__(self, *a):
        super().__init__(a)
        self._pushes = 0
    def push(self, v):
        self._pushes += 1
        self.append(v)
        return self
s = Stack(1).push(2).push(3)
s, s._pushes, len(s), s[-1]

# %% exception_subclass_private_attr
class ToolError(Exception):
    def __init__(self, msg, code):
        super().__init__(msg)
        self._code = code
    @property
    def code(self):
        return self._code
try:
    raise ToolError("quota exceeded", 429)
except ToolError as e:
    print(e, e.code, e._code, e.args)

# %% functools_cached_property
import functools
class Data:
    def __init__(self, n):
        self.n = n
        self.calls = 0
    @functools.cached_property
    def total(self):
        self.calls += 1
        return sum(range(self.n))
d = Data(10)
d.total, d.total, d.calls

# %% dataclass_extras
from dataclasses import dataclass, field, KW_ONLY
@dataclass(slots=True)
class Pt:
    x: int
    y: int = 0
@dataclass
class Opts:
    name: str
    _: KW_ONLY
    verbose: bool = False
    secret: str = field(default="s", repr=False, compare=False)
print(Pt(1), Opts("n", verbose=True))
Opts("a", secret="x") == Opts("a", secret="y"), Pt(1, 2) == Pt(1, 2)

# %% enum_missing_hook_and_members
from enum import Enum
class Status(Enum):
    OK = "ok"
    FAIL = "fail"
    @classmethod
    def _missing_(cls, value):
        if isinstance(value, str):
            for m in cls:
                if m.value == value.lower():
                    return m
        return None
print(Status("OK"), list(Status.__members__))
Status("Fail").name

# %% generic_alias_and_union_types
def f(x: list[int] | None = None) -> dict[str, int]:
    return {"n": len(x or [])}
print(list[int], dict[str, int] == dict[str, int], int | str)
isinstance(3, int | str), isinstance("a", (int, float)), f([1, 2])

# %% sentinel_object_identity
MISSING = object()
def get(d, k, default=MISSING):
    v = d.get(k, MISSING)
    if v is MISSING:
        return "no default" if default is MISSING else default
    return v
get({}, "a"), get({}, "a", 5), get({"a": None}, "a")

# %% dir_of_own_object
class Node:
    kind = "node"
    def __init__(self):
        self.value = 1
    def run(self):
        return 1
[n for n in dir(Node()) if not n.startswith("_")]

# %% recursive_container_repr
a = [1]
a.append(a)
d = {"self": None}
d["self"] = d
print(a, d)
repr(a)

# %% recursion_depth_three_hundred
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)
def build(n):
    return [] if n == 0 else [build(n - 1)]
def nest(x):
    return 1 + max((nest(y) for y in x), default=0)
depth(300), nest(build(150))

# %% tool_raising_caught_in_code worker
try:
    search_tool(12345)
except TypeError as e:
    print("tool failed:", e)
out = [search_tool(q) for q in ("a", "bb") if q]
out[1], search_tool(*["x"]), list(map(search_tool, ["m"]))[0][:11]

# %% tool_error_escapes raises=TypeError worker
print("calling tool")
search_tool(None)

# %% final_answer_not_caught_by_except_exception
try:
    final_answer("escaped the except")
except Exception:
    print("swallowed!")
print("after")

# %% final_answer_with_keyword_and_structure
result = {"items": [1, 2], "ok": True}
final_answer(answer=result)

# %% final_answer_from_nested_generator
def gen():
    yield 1
    final_answer("from generator")
    yield 2
for v in gen():
    print("got", v)

# %% time_sleep_and_asyncio_sleep imports=asyncio
import time, asyncio
t = time.time()
r = time.sleep(0.001)
async def nap():
    await asyncio.sleep(0.001)
    return "napped"
r, asyncio.run(nap()), time.time() >= t

# %% walrus_at_top_level_if_and_while
if (n := len("hello")) > 3:
    print("long", n)
buf = [5, 4, 3]
while buf and (top := buf.pop()) < 5:
    print("popped", top)
n, top, buf

# %% lambda_recursion_via_name
fact = lambda n: 1 if n <= 1 else n * fact(n - 1)
fact(10), (lambda f, n: f(f, n))(lambda s, k: 1 if k <= 1 else k * s(s, k - 1), 5)

# %% chained_assignment_with_subscripts_order
calls = []
class D(dict):
    def __setitem__(self, k, v):
        calls.append(k)
        super().__setitem__(k, v)
d = D()
d["a"] = d["b"] = 1
calls, d

# %% conditional_import_and_try_import
try:
    import json as parser
except ImportError:
    parser = None
parser.loads("[1]") if parser else None

# %% string_methods_with_unicode_and_bytes_formatting
b"%s-%d" % (b"x", 5), "%-6s|" % "ab", "%+.2e" % 12345.678, "%o %X %#o" % (8, 255, 8), "%r" % [1]

# %% integer_division_and_rounding_consistency
[(a, b, a // b, a % b, divmod(a, b)) for a in (7, -7) for b in (2, -2)], round(0.5), round(1.5), round(-1.5), round(2.5, 0)

# %% operations_on_large_loop
total = 0
for i in range(50000):
    total += i & 7
total

# %% deep_generator_chain
g = range(100)
for _ in range(50):
    g = (x + 1 for x in g)
sum(g)

# %% nested_functions_three_levels_with_defaults
def a(x=1):
    def b(y=x + 1):
        def c(z=y * 2):
            return x, y, z
        return c
    return b
a()()(), a(5)(10)(), a()(y=0)(z=-1)

# %% format_private_attr_own_object
# Private attributes are allowed on the code's own objects (policy), through str.format too.
class P:
    def __init__(self):
        self._x = 5
p = P()
"{0._x}".format(p), p._x, f"{p._x}"

# ---- regression cases from probing (all matched CPython when added) ----

# %% class_body_module_and_qualname
class A:
    where = __module__
    name = __qualname__
A.where, A.name

# %% classes_defined_inside_function_with_super
def factory():
    class Base:
        def hi(self):
            return "base"
    class Sub(Base):
        def hi(self):
            return "sub+" + super().hi()
    return Sub()
factory().hi()

# %% comparison_returning_notimplemented
class V:
    def __init__(self, v):
        self.v = v
    def __eq__(self, other):
        if not isinstance(other, V):
            return NotImplemented
        return self.v == other.v
    def __lt__(self, other):
        if not isinstance(other, V):
            return NotImplemented
        return self.v < other.v
V(1) == 1, V(1) == V(1), V(1) != "x", V(1) < V(2)

# %% print_file_none
print("to stdout", file=None)

# %% getattr_setattr_private_on_own_object
class O:
    def __init__(self):
        self._x = 1
o = O()
getattr(o, "_x"), hasattr(o, "_x"), setattr(o, "_y", 2), o._y

# %% typing_get_type_hints
import typing
def f(a: int, b: "str" = "x") -> list:
    return []
typing.get_type_hints(f)

# %% enum_generate_next_value_hook
from enum import Enum, auto
class Lower(Enum):
    def _generate_next_value_(name, start, count, last_values):
        return name.lower()
    ALPHA = auto()
    BETA = auto()
[m.value for m in Lower]

# %% nonlocal_inside_generator
def outer():
    total = 0
    def gen():
        nonlocal total
        for i in range(3):
            total += i
            yield i
    return list(gen()), total
outer()

# %% star_import_math
from math import *
pi > 3, floor(2.5), sqrt(4)

# %% finally_prints_inside_comprehension_calls
def f():
    try:
        return 1
    finally:
        print("finally in f")
[f() for _ in range(2)]

# %% lru_cache_eviction_and_info
import functools
@functools.lru_cache(maxsize=2)
def sq(n):
    print("miss", n)
    return n * n
sq(1); sq(2); sq(1); sq(3); sq(2)
sq.cache_info()

# %% dataclasses_introspection
import dataclasses
@dataclasses.dataclass
class P:
    x: int
p = P(1)
dataclasses.is_dataclass(p), [f.name for f in dataclasses.fields(P)], dataclasses.astuple(p)

# %% format_dunder_with_spec
class Celsius:
    def __init__(self, t):
        self.t = t
    def __format__(self, spec):
        return format(self.t, spec) + "C"
f"{Celsius(21.456):.1f}", "{:>8}".format(Celsius(3))

# %% metaclass_init_registry
class Meta(type):
    registry = []
    def __init__(cls, name, bases, ns):
        super().__init__(name, bases, ns)
        Meta.registry.append(name)
class A(metaclass=Meta): pass
class B(A): pass
Meta.registry

# %% global_loop_target_in_function
x = 0
def f():
    global x
    for x in range(3):
        pass
f()
x

# %% print_argument_whose_str_prints
# print() writes each argument as it goes, so output from inside __str__ lands between them.
class A:
    def __str__(self):
        print("inside str")
        return "A"
print("x", A(), "y")

# %% print_and_str_translate_bytes
table = str.maketrans("abc", "xyz", "d")
def noisy(v):
    print("eval", v)
    return v
print(noisy(1), noisy(2), sep=noisy("|"))
"abcd-abcd".translate(table), (1024).to_bytes(2, "big"), int.from_bytes(b"\x04\x00", "big"), sum([1, 2], start=10)

# %% dir_of_own_class_has_no_extra_names
class A:
    x = 1
    def m(self):
        return 1
dunders = [n for n in dir(A) if n.startswith("__")]
len(dir(A)), len(dir(A())), len(dunders)

# %% print_to_own_file_like_object
class Buf:
    def __init__(self):
        self.parts = []
    def write(self, s):
        self.parts.append(s)
b = Buf()
print("hello", "world", file=b)
print("visible")
b.parts

# %% print_as_first_class_function
import functools
r = list(map(print, [1, 2]))
say = functools.partial(print, "say:", sep="")
say("hi")
pr = print
pr("alias works", end="!\n")
def call(fn, *a, **k):
    return fn(*a, **k)
call(print, 1, 2, sep="-")
r, callable(print)

# %% json_dump_to_own_writer
import json
out = []
class W:
    def write(self, s):
        out.append(s)
json.dump({"a": [1, 2]}, W(), indent=1)
"".join(out)

# %% final_value_with_hostile_dunders
# The executor must hand back the value without comparing, truth-testing or iterating it.
class Trap:
    def __bool__(self):
        raise RuntimeError("no bool")
    def __eq__(self, o):
        raise RuntimeError("no eq")
    def __len__(self):
        raise RuntimeError("no len")
    def __iter__(self):
        raise RuntimeError("no iter")
    __hash__ = None
    def __repr__(self):
        return "Trap()"
Trap()

# %% final_answer_with_hostile_dunders
class Trap:
    def __bool__(self):
        raise RuntimeError("no bool")
    def __eq__(self, o):
        raise RuntimeError("no eq")
    __hash__ = None
    def __repr__(self):
        return "Trap()"
final_answer(Trap())

# %% unicode_identifiers_nfkc
café = 1
ﬁle = 2
café, file

# %% decorator_arbitrary_expressions
class Btn:
    def __init__(self):
        self.handlers = []
    def connect(self, f):
        self.handlers.append(f)
        return f
buttons = [Btn()]
@buttons[0].connect
def on_click():
    return "clicked"
@(lambda f: f)
def ident():
    return 1
buttons[0].handlers[0](), ident()

# %% star_expressions_in_subscripts
class Grid:
    def __getitem__(self, key):
        return key
idx = (1, 2)
g = Grid()
g[*idx], g[0, *idx], g[1:2, ...]

# %% parenthesized_context_managers
class CM:
    def __init__(self, n):
        self.n = n
    def __enter__(self):
        return self.n
    def __exit__(self, *a):
        pass
with (
    CM(1) as a,
    CM(2) as b,
):
    total = a + b
total

# %% walrus_and_nesting_in_fstrings
f"{(x := 5)} {x * 2}", f"{'nested ' + f'{x!r}'}", f"{x:{'>'}{x}}"

# %% full_signature_with_annotations
def f(a, b, /, c=3, *, d=4, **kw) -> "ret":
    return a, b, c, d, kw
f(1, 2, d=5, e=6), f.__name__

# %% walrus_in_ternary_and_filter
x = 5
y = x if x > 3 else (z := 0)
[i for i in range(3) if (j := i) > 0], j

# %% generator_bare_yield_receives
def gen():
    received = yield
    yield received * 2
g = gen()
next(g)
g.send(21)

# %% match_star_with_guard
nums = [1, 2, 3]
match nums:
    case [1, *rest] if sum(rest) == 5:
        out = ("one and five", rest)
    case _:
        out = None
out

# %% numeric_literals_with_underscores
print(0x_ff if False else 0xff, 1_0.5_0, 0o7_7, 1e1_0)

# %% walrus_in_assert
assert (x := 3) == 3
x

# %% tuple_display_forms
t = 1,
u = *range(2), 5
t, u

# %% slice_assign_from_generator
a = [1, 2, 3, 4]
a[1:3] = (v * 10 for v in a[1:3])
a[::-1][0], a

# %% walrus_in_augmented_assignment
x = 0
x += (y := 5)
x, y
