# Fidelity cases: scopes, arguments, closures, decorators, recursion, generators.
# Format: see tests/fidelity_cases/__init__.py. Not an importable module.

# %% global_counter
counter = 0
def inc():
    global counter
    counter += 1
    return counter
for _ in range(5):
    inc()
counter

# %% nonlocal_counter
def make():
    count = 0
    def step():
        nonlocal count
        count += 1
        return count
    return step
s1 = make()
s2 = make()
s1()
s1()
s2()
(s1(), s2())

# %% nonlocal_two_levels
def outer():
    x = "outer"
    def middle():
        def inner():
            nonlocal x
            x = "changed by inner"
        inner()
    middle()
    return x
outer()

# %% global_declared_in_function_creates_name
def setit():
    global brand_new
    brand_new = 42
setit()
brand_new

# %% function_reads_later_global
def read():
    return later_value
later_value = "defined after the function"
read()

# %% local_shadows_global
x = "global"
def f():
    x = "local"
    return x
f(), x

# %% default_args_evaluated_once
def append_to(x, acc=[]):
    acc.append(x)
    return acc
append_to(1)
append_to(2)
append_to(3)

# %% kw_only_and_defaults worker
def f(a, b=2, *args, c, d=4, **kw):
    return (a, b, args, c, d, sorted(kw.items()))
print(f(1, c=3))
print(f(1, 5, 6, 7, c=8, e=9, d=0))
f(*[1, 2, 3], **{"c": 4, "z": 5})

# %% kw_only_passed_positionally raises=TypeError
def f(a, *, b):
    return a + b
print(f(1, b=2))
f(1, 2)

# %% missing_positional_argument raises=TypeError
def f(a, b):
    return a
f(1)

# %% unexpected_keyword_argument raises=TypeError
def f(a):
    return a
f(a=1, b=2)

# %% positional_only_params raises=TypeError
def p(a, b, /, c, *, d):
    return a, b, c, d
print(p(1, 2, 3, d=4))
print(p(1, 2, c=3, d=4))
p(1, b=2, c=3, d=4)

# %% positional_only_and_kwargs_same_name
def q(name, /, **kw):
    return name, kw
q("pos", name="kw")

# %% lambda_default_capture
fs = [lambda x, n=n: x ** n for n in range(4)]
[f(2) for f in fs]

# %% late_binding_closures_classic worker
fs = [lambda: i for i in range(3)]
[f() for f in fs]

# %% late_binding_closure_in_loop
fns = []
for i in range(3):
    def g():
        return i * 10
    fns.append(g)
i = 7
[f() for f in fns]

# %% lambda_kwonly_defaults_and_varkw
f = lambda a, *, b=10, **rest: (a, b, rest)
f(1), f(1, b=2, c=3)

# %% lambda_in_sorted_and_map
pairs = [(1, "b"), (2, "a"), (3, "c")]
list(map(lambda p: p[1] * p[0], pairs)), sorted(pairs, key=lambda p: p[1]), (lambda *a: sum(a))(1, 2, 3)

# %% star_unpacking_assignment
first, *middle, last = range(6)
a, (b, *c), d = 1, "xyz", 4
print(first, middle, last)
print(a, b, c, d)
[*middle, *"ab"], (*c,)

# %% star_and_dict_unpacking_literals
base = {"a": 1, "b": 2}
over = {**base, "b": 20, **{"c": 3}}
merged = base | {"d": 4}
print(over, merged)
{*[1, 2], *(2, 3)} == {1, 2, 3}, [*range(3), *[9]], (*"ab", *[1])

# %% unpack_too_many_values raises=ValueError
a, b = [1, 2, 3]

# %% unpack_too_few_values raises=ValueError
a, b, *c, d = [1, 2]

# %% unpack_non_iterable raises=TypeError
a, b = 5

# %% star_call_mixed
def f(*args, **kwargs):
    return args, kwargs
f(1, *[2, 3], 4, *(), x=1, **{"y": 2}, z=3)

# %% duplicate_keyword_via_unpacking raises=TypeError
def f(**kw):
    return kw
f(a=1, **{"a": 2})

# %% multiple_assignment_targets
a = b = c = []
a.append(1)
x, y = y, x = 1, 2
a is b is c, c, x, y

# %% swap_and_tuple_assignment_order
lst = [0, 1, 2]
i = 0
i, lst[i] = 2, "set"
lst, i

# %% recursion_fib
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
[fib(i) for i in range(15)]

# %% recursion_with_memo_dict
memo = {}
def fib(n):
    if n in memo:
        return memo[n]
    r = n if n < 2 else fib(n - 1) + fib(n - 2)
    memo[n] = r
    return r
fib(90)

# %% mutual_recursion
def is_even(n):
    return True if n == 0 else is_odd(n - 1)
def is_odd(n):
    return False if n == 0 else is_even(n - 1)
is_even(10), is_odd(7), is_even(7)

# %% recursion_hanoi_prints
def hanoi(n, src, dst, via):
    if n == 0:
        return 0
    moves = hanoi(n - 1, src, via, dst)
    print(f"move {n} {src}->{dst}")
    return moves + 1 + hanoi(n - 1, via, dst, src)
hanoi(3, "A", "C", "B")

# %% infinite_recursion_caught
def down(n):
    return down(n + 1)
try:
    down(0)
except RecursionError:
    print("too deep")

# %% decorator_simple
def shout(fn):
    def wrapper(*a, **k):
        return fn(*a, **k).upper()
    return wrapper

@shout
def greet(name):
    return f"hello {name}"
greet("ann")

# %% decorator_with_arguments
def repeat(n):
    def deco(fn):
        def wrapper(*a):
            return [fn(*a) for _ in range(n)]
        return wrapper
    return deco

@repeat(3)
def roll(x):
    return x * 2
roll(4)

# %% decorator_stacking_order
log = []
def tag(name):
    def deco(fn):
        log.append(f"apply {name}")
        def w():
            log.append(f"enter {name}")
            return fn()
        return w
    return deco

@tag("outer")
@tag("inner")
def body():
    log.append("body")
    return "result"
body(), log

# %% decorator_functools_wraps_keeps_behaviour
import functools
calls = []
def traced(fn):
    @functools.wraps(fn)
    def w(*a, **k):
        calls.append(a)
        return fn(*a, **k)
    return w
@traced
def add(a, b=1):
    return a + b
add(1), add(2, b=5), calls

# %% decorator_registering_into_dict
handlers = {}
def on(event):
    def deco(fn):
        handlers[event] = fn
        return fn
    return deco
@on("start")
def start():
    return "starting"
@on("stop")
def stop():
    return "stopping"
sorted(handlers), handlers["stop"]()

# %% class_decorator
registry = {}
def register(cls):
    registry[cls.name] = cls
    return cls

@register
class Plugin:
    name = "plug"
    def run(self):
        return "running"
registry["plug"]().run()

# %% class_decorator_with_arguments
def with_attrs(**attrs):
    def deco(cls):
        for k, v in attrs.items():
            setattr(cls, k, v)
        return cls
    return deco

@with_attrs(color="red", size=3)
class Box:
    pass
Box.color, Box().size

# %% closure_counter_factory_with_state
def make_acc(start):
    total = start
    def add(x):
        nonlocal total
        total += x
        return total
    def get():
        return total
    return add, get
add, get = make_acc(10)
add(5)
add(-2)
get()

# %% generator_basic
def countdown(n):
    while n > 0:
        yield n
        n -= 1
list(countdown(4)), sum(countdown(10))

# %% generator_expression_is_lazy
log = []
def src():
    for i in range(3):
        log.append(i)
        yield i
g = (x * 10 for x in src())
first = next(g)
print(first, log)
list(g), log

# %% yield_from_returns_value worker
def inner():
    yield 1
    yield 2
    return "inner-done"
def outer():
    result = yield from inner()
    yield result
list(outer())

# %% generator_send
def acc():
    total = 0
    while True:
        x = yield total
        if x is None:
            break
        total += x
g = acc()
print(next(g))
print(g.send(5))
print(g.send(10))
try:
    g.send(None)
except StopIteration:
    print("stopped")

# %% generator_send_to_unstarted raises=TypeError
def gen():
    yield 1
gen().send(5)

# %% generator_throw
def worker():
    try:
        yield "ready"
        yield "still"
    except ValueError as e:
        yield f"caught {e}"
    yield "after"
g = worker()
print(next(g))
print(g.throw(ValueError("boom")))
print(next(g))
list(g)

# %% generator_throw_unhandled raises=KeyError
def gen():
    yield 1
    yield 2
g = gen()
next(g)
g.throw(KeyError("thrown in"))

# %% generator_close_runs_finally
events = []
def gen():
    try:
        yield 1
        yield 2
    finally:
        events.append("cleanup")
g = gen()
next(g)
g.close()
g.close()
events, list(g)

# %% generator_close_sees_generatorexit
def gen():
    try:
        yield 1
    except GeneratorExit:
        print("got GeneratorExit")
        raise
g = gen()
next(g)
g.close()
print("closed")

# %% generator_raises_midway raises=ZeroDivisionError
def gen():
    yield 1
    yield 1 / 0
    yield 3
for v in gen():
    print(v)

# %% generator_exception_caught_by_consumer
def gen():
    for i in range(5):
        if i == 3:
            raise KeyError(i)
        yield i
got = []
try:
    for v in gen():
        got.append(v)
except KeyError as e:
    print("KeyError", e)
got

# %% stopiteration_inside_generator_becomes_runtimeerror raises=RuntimeError
def gen():
    yield 1
    raise StopIteration
list(gen())

# %% yield_from_delegates_send
def sub():
    x = yield "sub-start"
    yield f"sub got {x}"
def main():
    yield from sub()
    yield "main-end"
g = main()
[next(g), g.send("hi"), next(g)]

# %% generator_return_value_in_stopiteration
def gen():
    yield 1
    return "the value"
g = gen()
next(g)
try:
    next(g)
except StopIteration as e:
    print("returned:", e.value)

# %% generator_as_iter_method
class Range3:
    def __iter__(self):
        yield from (1, 2, 3)
list(Range3()), 2 in Range3(), sorted(Range3(), reverse=True)

# %% infinite_generator_with_islice
import itertools
def naturals():
    n = 0
    while True:
        yield n
        n += 1
list(itertools.islice((x * x for x in naturals() if x % 2), 5))

# %% generator_pipeline
def read(lines):
    for line in lines:
        yield line.strip()
def non_empty(it):
    return (x for x in it if x)
def numbered(it):
    for i, x in enumerate(it, 1):
        yield f"{i}. {x}"
list(numbered(non_empty(read(["  a ", "", " b", "   ", "c"]))))

# %% generator_state_after_exhaustion
def g():
    yield 1
it = g()
list(it), list(it), next(it, "exhausted")

# %% tool_called_in_loop worker
results = []
for q in ["cats", "dogs"]:
    results.append(search_tool(q))
print(results[0])
len(results), search_tool(query="kw")

# %% final_answer_top_level
print("working")
final_answer(42)
print("never printed")

# %% final_answer_inside_function_and_loop worker
def solve(items):
    for i, x in enumerate(items):
        if x > 10:
            final_answer({"index": i, "value": x})
    return None
print("start")
solve([3, 7, 12, 40])
print("unreachable")

# %% final_answer_runs_finally
try:
    final_answer("done")
finally:
    print("cleanup ran")

# %% tool_returning_structured_data worker
info = lookup_tool("alpha", limit=4)
print(info["meta"]["ok"], info["values"][-1], sorted(info))
rows = [lookup_tool(k)["key"].upper() for k in ("x", "y")]
total = sum(info["values"]) + info["meta"]["score"]
rows, total, info["meta"]["tags"][0], len(info["meta"]["tags"])
