# Fidelity cases: loops, else clauses, walrus, comparisons, boolean operators, match statements.
# Format: see tests/fidelity_cases/__init__.py. Not an importable module.

# %% for_else_no_break
for i in range(3):
    print(i)
else:
    print("else ran")
i

# %% for_else_with_break
for i in range(5):
    if i == 2:
        break
    print(i)
else:
    print("not reached")
i

# %% while_else_no_break
n = 0
while n < 3:
    n += 1
else:
    print("done", n)

# %% while_true_break_then_else
n = 10
while True:
    n -= 3
    if n < 0:
        break
print(n)
while n < 5:
    n += 2
    if n == 3:
        break
else:
    print("no break")
n

# %% while_continue_else
i = 0
total = 0
while i < 10:
    i += 1
    if i % 3 == 0:
        continue
    total += i
else:
    total *= -1
total

# %% nested_loops_break_continue
out = []
for i in range(4):
    for j in range(4):
        if j > i:
            break
        if (i + j) % 2:
            continue
        out.append((i, j))
    else:
        out.append("inner-else")
out

# %% loop_variable_survives
for k in range(5):
    pass
k

# %% empty_for_keeps_previous_value
k = "before"
for k in []:
    pass
k

# %% for_over_dict_and_tuple_unpack
scores = {"ann": 3, "bob": 5}
for name, score in scores.items():
    print(f"{name}={score}")
for idx, (a, b) in enumerate([(1, 2), (3, 4)]):
    print(idx, a + b)

# %% for_target_attribute_and_subscript
class Holder:
    pass
h = Holder()
slots = [0, 0, 0]
for h.value in range(3):
    slots[h.value] = h.value * 10
for slots[0] in "xy":
    pass
h.value, slots

# %% while_with_complex_condition
a, b = 0, 10
steps = 0
while a < b and not (a == 4 and b == 6) or steps == 0:
    a += 1
    b -= 1
    steps += 1
a, b, steps

# %% walrus_in_while
data = [3, 1, 4, 1, 5, 9, 2, 6]
it = iter(data)
seen = []
while (x := next(it, None)) is not None and x != 9:
    seen.append(x)
seen, x

# %% walrus_in_comprehension_binds_outer worker
vals = [y := v * 2 for v in range(4)]
vals, y

# %% walrus_filter_in_comprehension
def f(v):
    return v * v - 10
res = [r for v in range(6) if (r := f(v)) > 0]
res, r

# %% walrus_any_witness
nums = [4, 8, 15, 16, 23, 42]
if any((w := n) % 2 for n in nums):
    print("first odd", w)

# %% walrus_in_function_scope
def g(items):
    if (n := len(items)) > 2:
        return f"long list ({n})"
    return f"short ({n})"
g([1, 2, 3]), g([])

# %% walrus_rebind_iteration_variable raises=SyntaxError
[i := 0 for i in range(3)]

# %% chained_comparisons
a, b, c = 1, 2, 3
print(a < b < c, a < b > c, 1 == 1.0 < 2, a < b == 2 != c)
calls = []
def v(x):
    calls.append(x)
    return x
print(v(3) < v(2) < v(1))
calls

# %% chained_is_and_in
x = [1]
y = x
1 in x is not None, x is y is x, 2 not in x in [x], None is not None

# %% boolean_operators_return_operands
print(0 or "", [] or [1], 3 and 4, 0 and 1 / 0, None or 0 or "x")
not [], not [0], (1 if [] else 2), ("yes" if "0" else "no")

# %% conditional_expression_nesting
def sign(n):
    return "neg" if n < 0 else "zero" if n == 0 else "pos"
[sign(n) for n in (-2, 0, 5)]

# %% if_elif_else_chain
def grade(s):
    if s >= 90:
        return "A"
    elif s >= 80:
        return "B"
    elif s >= 70:
        return "C"
    else:
        return "F"
"".join(grade(s) for s in (95, 85, 75, 10, 90, 80))

# %% pass_and_ellipsis
def todo():
    ...
class Empty:
    pass
todo(), ..., Ellipsis is ...

# %% match_literal_patterns
def describe(x):
    match x:
        case 0:
            return "zero"
        case 1 | 2 | 3:
            return "small"
        case "hello":
            return "greeting"
        case None:
            return "none"
        case True:
            return "true"
        case _:
            return "other"
[describe(v) for v in (0, 2, "hello", None, True, 1.0, 99, False)]

# %% match_capture_and_sequence worker
def f(cmd):
    match cmd.split():
        case []:
            return "empty"
        case [verb]:
            return f"verb {verb}"
        case ["go", direction]:
            return f"go {direction}"
        case ["take", *items] if len(items) > 1:
            return f"many {items}"
        case ["take", *items]:
            return f"take {items}"
        case [first, *_, last]:
            return f"{first}..{last}"
[f(c) for c in ["", "look", "go north", "take a b", "take x", "a b c d"]]

# %% match_mapping_patterns
def g(ev):
    match ev:
        case {"type": "click", "pos": (x, y)}:
            return ("click", x, y)
        case {"type": "key", **rest}:
            return ("key", sorted(rest))
        case {}:
            return "any-mapping"
    return "not a mapping"
[g(e) for e in [{"type": "click", "pos": (1, 2), "extra": 0}, {"type": "key", "k": 1, "m": 2}, {"zzz": 1}, {}, [1]]]

# %% match_class_patterns
from dataclasses import dataclass

@dataclass
class Point:
    x: int
    y: int

def where(p):
    match p:
        case Point(x=0, y=0):
            return "origin"
        case Point(x=0, y=yy):
            return f"y-axis {yy}"
        case Point(x, 0):
            return f"x-axis {x}"
        case Point():
            return "somewhere"
        case int(n) | float(n):
            return f"number {n}"
        case str() as s:
            return f"string {s!r}"
    return "no match"
[where(v) for v in [Point(0, 0), Point(0, 5), Point(3, 0), Point(1, 1), 7, 2.5, "hi", []]]

# %% match_class_pattern_without_match_args raises=TypeError
class Plain:
    def __init__(self, a):
        self.a = a
match Plain(1):
    case Plain(a=1):
        print("keyword pattern works")
match Plain(1):
    case Plain(1):
        print("positional needs __match_args__")

# %% match_guard_and_as
def h(v):
    match v:
        case (a, b) as pair if a == b:
            return f"same {pair}"
        case (a, b):
            return f"diff {a} {b}"
        case [*xs] if not xs:
            return "empty"
        case _:
            return "?"
[h(x) for x in [(1, 1), (1, 2), [], "ab", [3, 3]]]

# %% match_value_pattern_dotted_enum
import enum
class Color(enum.Enum):
    RED = 1
    GREEN = 2
def name(c):
    match c:
        case Color.RED:
            return "r"
        case Color.GREEN:
            return "g"
    return "none"
name(Color.GREEN), name(Color.RED), name(1)

# %% match_no_case_matches
x = 5
match x:
    case str(s):
        print("str", s)
print("after")

# %% match_or_pattern_with_captures
def k(v):
    match v:
        case [x, 0] | [0, x]:
            return x
        case _:
            return None
k([5, 0]), k([0, 7]), k([1, 1]), k((0, 0))

# %% match_nested_structures
def parse(msg):
    match msg:
        case {"op": "add", "args": [int(a), int(b)]}:
            return a + b
        case {"op": "neg", "args": [int(a)]}:
            return -a
        case {"op": str(op)}:
            return f"unknown op {op}"
        case [("x" | "y") as axis, float(v) | int(v)]:
            return f"{axis}={v}"
    return "bad"
[parse(m) for m in [{"op": "add", "args": [1, 2]}, {"op": "neg", "args": [4]}, {"op": "mul"}, ["y", 2.5], ["z", 1]]]

# %% match_star_capture_in_middle
match [1, 2, 3, 4, 5]:
    case [first, *mid, last]:
        print(first, mid, last)
match (1,):
    case (only,):
        print("one-tuple", only)
