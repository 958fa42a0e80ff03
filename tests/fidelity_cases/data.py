# Fidelity cases: numbers, strings, f-strings, slicing, containers, sorting, assignment forms, printing.
# Format: see tests/fidelity_cases/__init__.py. Not an importable module.

# %% int_edge_cases
print(-7 // 2, -7 % 3, 7 % -3, divmod(-7, 2), 2 ** -1, 10 ** 20, -(2 ** 63))
print(int("  42 "), int("0x1f", 16), int("1_000"), int(-3.9), round(2.5), round(3.5), round(-0.5))
print(0b101, 0o17, 0xFF, 1_000_000, (255).bit_length(), (-5).bit_length(), abs(-3), int("z", 36))
(2 ** 100) % 97, pow(3, 200, 1000), pow(2, -1, 7), 7 // -2, -(7 // 2), 2 ** 0.5, (-8) ** (1 / 3)

# %% float_edge_cases
import math
print(0.1 + 0.2, 0.1 + 0.2 == 0.3, math.isclose(0.1 + 0.2, 0.3), 1e308 * 10, -1e308 * 10)
nan = float("nan")
print(nan == nan, nan != nan, math.isnan(nan), float("inf") > 1e308, 1 / 3, 2 / 3, 1e16 + 1)
print(round(2.675, 2), 7.0 // 2, 7.5 % 2, -7.5 // 2, (0.1).as_integer_ratio(), (2.5).is_integer())
float("1e-5"), 1e-5, 123456789.0 * 10, 1.0e16, 5e-324 / 2, -0.0, 0.0 == -0.0, float("-inf")

# %% bool_and_none_arithmetic
True + True, True * 3.5, False - 1, sum([True, True, False]), None is None, [None] * 2, bool(0.0), bool(" ")

# %% complex_numbers
z = 3 + 4j
print(z, z.real, z.imag, abs(z), z.conjugate(), z * 1j, complex("1+2j"), z == complex(3, 4))
(1 + 2j) ** 2

# %% str_methods_cleanup worker
s = "  Hello, World!  "
print(s.strip(), s.lstrip(), s.rstrip() + "|", s.lower(), s.upper(), s.title(), s.swapcase())
print(s.split(","), s.strip().split(), "a,b,,c".split(","), "a b  c".split(" "), "x".split("x"))
print("-".join(["a", "b"]), "abc".replace("b", "B"), "aaa".replace("a", "b", 2), "hello".count("l"))
print("hello".find("z"), "hello".index("l"), "hello".rfind("l"), "hello".startswith(("he", "x")), "hello".endswith("lo"))
print("42".zfill(5), "-42".zfill(5), "ab".center(6, "*"), "ab".ljust(4) + "|", "ab".rjust(4), "Tab\tbed".expandtabs(4))
"a=1;b=2".partition(";"), "a.b.c".rsplit(".", 1), "line1\nline2\r\nline3".splitlines(), "prefix_rest".removeprefix("prefix_")

# %% str_predicates_and_unicode_case
print("ab12".isalnum(), "12".isdigit(), "½".isnumeric(), "ab".isalpha(), " ".isspace(), "Ab Cd".istitle())
print("ß".upper(), "ǅ".lower(), "İ".lower(), len("İ".lower()), "ﬁ".upper(), "Straße".casefold())
"ÉCOLE".lower(), "hello world".capitalize(), "x".isidentifier(), "1x".isidentifier(), "\u00e9" == "e\u0301"

# %% str_index_not_found raises=ValueError
"hello".index("z")

# %% str_immutable raises=TypeError
s = "abc"
s[0] = "z"

# %% str_encode_decode_bytes
b = "héllo €".encode("utf-8")
print(b, len(b), b.decode("utf-8"), "é".encode("latin-1"), b"abc".hex(), bytes([104, 105]), bytes.fromhex("4142"))
"naïve".encode("ascii", errors="replace"), "naïve".encode("ascii", "ignore"), bytearray(b"ab") + b"c", b"a,b".split(b",")

# %% str_multiplication_and_membership
"ab" * 3, "-" * 0, "ell" in "hello", "" in "abc", "abc" < "abd", "Z" < "a", "a" * -1, ord("€"), chr(0x1F600)

# %% slicing_lists_and_strings worker
s = list(range(10))
print(s[2:5], s[:3], s[-3:], s[::2], s[::-1], s[-2:1:-3], s[100:], s[5:2])
t = "abcdefgh"
print(t[1::3], t[-1], t[:-1], t[::-2])
s[2:5] = ["x"]
print(s)
s[::3] = [0] * len(s[::3])
print(s)
del s[::2]
s, t[slice(1, 4)], t[slice(None, None, -3)]

# %% extended_slice_assign_wrong_length raises=ValueError
s = list(range(10))
s[::2] = [1, 2]

# %% slice_of_tuple_and_range
r = range(0, 20, 3)
print(r[2:4], list(r[::-2]), (1, 2, 3, 4)[1:3], r[-1], len(r))
[1, 2, 3][-10:10], "abc"[5:], (1, 2, 3)[::-1]

# %% fstring_conversions_and_specs
name = "Zoë"
val = 3.14159
width, prec = 10, 3
print(f"{name!r} {name!s} {name!a} {name:>6}|{name:*^9}|")
print(f"{val:.2f} {val:{width}.{prec}f}| {val:e} {val:+.1%} {1234567.891:,.2f} {255:#x} {255:08b} {-42:+d}")
print(f"{'nested':{'>' if width > 5 else '<'}{width}}|")
print(f"{width * 2 = } {name=} {val = :.1f}")
f"{{literal}} {val!r:>12} {[1, 2]!s:>8} {name!r:^10}"

# %% fstring_with_datetime_and_objects
import datetime
d = datetime.date(2024, 3, 5)
class Pt:
    def __init__(self, x):
        self.x = x
    def __format__(self, spec):
        return f"Pt<{self.x}:{spec}>"
    def __repr__(self):
        return "Pt!"
p = Pt(3)
print(f"{d:%Y/%m/%d} {d!r} {d=}")
f"{p} {p:fancy} {p!r} {p!r:>5}", format(p, "x"), "{:abc}".format(p)

# %% fstring_number_formats
nums = [0, 7, -3.5, 1e-7, 123456789, 0.000123]
rows = [f"{n:>10} | {n:<8g} | {n:^9.2e} | {n:_}" for n in nums]
print("\n".join(rows))
f"{42:c}", f"{0.5:.0%}", f"{1e21}", f"{1234.5:010.2f}", f"{'x':0>3}", f"{True:d}", f"{3:{'+'}}"

# %% str_format_and_percent
print("{} + {} = {}".format(1, 2, 3), "{0}{1}{0}".format("a", "b"), "{x:>4}".format(x=7))
print("%s is %d years, %.1f%%" % ("Bo", 30, 99.5), "%(a)s-%(b)r" % {"a": 1, "b": "2"}, "%5.2f|%-5d|%x" % (3.14159, 42, 255))
format(0.5, ".0%"), "{:,}".format(10 ** 7), "{!r}".format("q"), "{:*<6}".format("ab"), "%c" % 65

# %% format_missing_argument raises=IndexError
"{} {}".format("only one")

# %% sorting_with_key_lambdas worker
people = [("ann", 31), ("bob", 25), ("cy", 31), ("di", 19)]
print(sorted(people, key=lambda p: p[1]))
print(sorted(people, key=lambda p: (-p[1], p[0])))
print(sorted(["b", "A", "c", "B"]), sorted(["b", "A", "c", "B"], key=str.lower))
words = "the quick brown fox jumps over the lazy dog".split()
words.sort(key=len, reverse=True)
print(words)
max(people, key=lambda p: p[1]), min(people, key=lambda p: (p[1], p[0])), sorted("bca", reverse=True)

# %% sort_mixed_types raises=TypeError
print(sorted([(1, "b"), (1, "a"), (0, "z")]))
data = [3, "a", 1]
data.sort()

# %% sort_dict_by_value_and_stability
counts = {"x": 3, "y": 1, "z": 3, "w": 2}
by_val = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
top = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:2])
by_val, top, sorted(counts, key=counts.get)

# %% augmented_assignment_on_subscripts_and_attributes
class Obj:
    pass
o = Obj()
o.n = 1
o.n += 5
o.n *= 2
d = {"k": [1]}
d["k"] += [2]
d["k"][0] -= 10
d.setdefault("z", 0)
d["z"] |= 6
d["z"] ^= 3
d["z"] <<= 2
m = [[1, 2], [3, 4]]
m[1][0] **= 3
m[0][1] //= 2
m[0][0] %= 1
m[1][1] /= 8
s = "ab"
s *= 3
t = (1,)
t += (2,)
o.n, d, m, s, t

# %% augmented_assignment_evaluates_target_once
calls = []
data = [0, 0, 0]
def idx():
    calls.append("idx")
    return 1
data[idx()] += 5
data, calls

# %% augmented_assignment_identity
a = [1]
b = a
a += [2]
c = (1,)
d = c
c += (2,)
a is b, b, d, c is d

# %% augmented_assign_undefined raises=NameError
total += 1

# %% del_statements raises=NameError
x = 1
lst = [0, 1, 2, 3, 4]
dd = {"a": 1, "b": 2}
class O:
    pass
o = O()
o.attr = 5
del lst[1], dd["a"]
del lst[-2:]
del o.attr
del x
print(lst, dd, hasattr(o, "attr"))
x

# %% del_missing_key raises=KeyError
d = {}
del d["nope"]

# %% comprehension_variable_does_not_leak
x = "outer"
squares = [x for x in range(3)]
print(x, squares)
gen = (x for x in "ab")
print(x, list(gen))
{k: v for k, v in zip("ab", range(2))}, {c for c in "hello"} == set("hello")

# %% nested_comprehensions
matrix = [[1, 2, 3], [4, 5, 6]]
print([[row[i] for row in matrix] for i in range(3)])
print([x for row in matrix for x in row if x % 2])
print(sorted({(i, j) for i in range(3) for j in range(i)}))
sum(x * y for x, y in zip(*matrix)), {i: [j for j in range(i)] for i in range(3)}

# %% comprehension_closures
fs = [lambda x=x: x for x in range(3)]
gs = [(lambda: x) for x in range(3)]
[f() for f in fs], [g() for g in gs]

# %% comprehension_sees_enclosing_function_locals
def f(n):
    k = 10
    return [k * i for i in range(n)], {i: k for i in range(2)}, list(k + i for i in range(2))
f(3)

# %% dict_ordering_and_views
d = {}
d["z"] = 1
d["a"] = 2
d["m"] = 3
d["z"] = 10
del d["a"]
d["a"] = 4
keys = d.keys()
d["new"] = 5
print(list(keys), list(d.values()), list(d.items())[:2])
print(keys & {"a", "q"}, "z" in keys, dict(sorted(d.items())))
d.pop("m"), d.popitem(), d.get("none", "dflt"), dict.fromkeys("ab", 0), d

# %% dict_changed_during_iteration raises=RuntimeError
d = {"a": 1, "b": 2}
for k in d:
    d[k + "x"] = 0

# %% dict_comprehension_and_merge_operators
inv = {v: k for k, v in {"a": 1, "b": 2, "c": 1}.items()}
d = {"x": 1}
d |= {"y": 2}
inv, d, {**d, "x": 0}, dict(zip("abc", range(3))), dict([("k", 1)], extra=2)

# %% set_operations
a = {1, 2, 3, 4}
b = {3, 4, 5}
print(a | b, a & b, a - b, a ^ b, a <= b, {3} < a, a.isdisjoint({9}))
fs = frozenset([1, 2])
print(fs | {3}, {fs: "ok"}[frozenset({2, 1})])
a.add(9)
a.discard(100)
a.remove(1)
sorted(a), set(), {1, 1.0, True}

# %% set_remove_missing raises=KeyError
s = {1}
s.remove(2)

# %% list_methods
l = [3, 1, 4, 1, 5]
l.append(9)
l.extend([2, 6])
l.insert(0, 0)
l.remove(1)
print(l, l.index(4), l.count(1), l.pop(), l.pop(0))
l.reverse()
print(l, l * 2, [0] * 3, l + [7], l[:])
l.clear()
l, [1, 2] < [1, 3], [1, 2] == [1, 2.0], [[]] * 2

# %% list_remove_missing raises=ValueError
[1, 2].remove(3)

# %% list_aliasing_multiplication
grid = [[0] * 3] * 2
grid[0][0] = 1
good = [[0] * 3 for _ in range(2)]
good[0][0] = 1
grid, good

# %% tuple_behaviour
t = (1, [2, 3], "x")
t[1].append(4)
print(t, t.count(1), t.index("x"), (1,) * 3, tuple("ab"), () == tuple())
try:
    t[0] = 5
except TypeError as e:
    print("TypeError", e)
t += ([5],)
len(t), t[-1], (1, 2) < (1, 2, 0), hash((1, 2)) == hash((1, 2))

# %% builtins_grab_bag
print(abs(-2.5), all([]), any([]), bin(10), chr(9731), ord("A"), hex(255), oct(8))
print(list(enumerate("ab", start=1)), list(zip("abc", [1, 2])), list(map(str.upper, "ab")))
print(list(filter(None, [0, 1, "", "a", None])), sum([0.1] * 10), sum([[1], [2]], []), min("bca"))
print(isinstance(True, int), bool("False"), int(True) + True, len(range(0, 10, 3)), range(5)[-1], list(range(10, 0, -3)))
print(divmod(17, 5), round(1234.5678, -2), round(1.23456, 3), pow(2, 10), repr("q'\"q"), ascii("é"))
sorted({3: "a", 1: "b"}), list(reversed([1, 2, 3])), callable(len), hash(1) == hash(1.0), max([], default="empty")

# %% builtins_type_and_conversions
print(type(1), type("s"), type(None), type([]) is list, int("101", 2), float("  -1.5 "), str(1.0), str(None))
list("abc"), tuple([1]), set("aa"), dict(a=1), list({"k": 1}), int(3.99), float(7), bool([]), str(b"x")

# %% zip_strict_mismatch raises=ValueError
list(zip([1, 2], [1], strict=True))

# %% iter_next_with_default
it = iter([1, 2])
next(it), next(it), next(it, "done")

# %% next_on_exhausted raises=StopIteration
it = iter([])
next(it)

# %% getattr_setattr_hasattr_delattr
class C:
    a = 1
c = C()
setattr(c, "b", 2)
print(getattr(c, "a"), getattr(c, "b"), getattr(c, "zz", "default"), hasattr(c, "zz"))
delattr(c, "b")
hasattr(c, "b"), getattr("abc", "upper")()

# %% string_building_join
parts = []
for i in range(5):
    parts.append(f"{i}:{'*' * i}")
"\n".join(parts)

# %% string_building_concat_in_loop
out = ""
for word in ["alpha", "beta", "gamma"]:
    out += word[0].upper() + word[1:] + " "
out.strip(), len(out)

# %% print_sep_end_and_star
print("a", "b", sep="-", end="!\n")
print("no newline", end="")
print(" continued")
print()
print(1, 2.0, None, [1, "x"], {"k": (1,)}, sep=" | ")
print(*range(3))
print("x", "y", sep="")
print("end", end="")

# %% print_unknown_keyword_argument raises=TypeError
print("before")
print("a", foo=1)

# %% print_int_over_the_digit_limit_after_other_arguments raises=ValueError
# CPython writes each argument as it converts it: what came before the failing one is printed
print("a", 10 ** 5000, sep=", ")

# %% print_runs_no_hidden_user_code_but_flush_truth_value
class M(type):
    def __hash__(cls):
        print("hash called")
        return 1
class A(metaclass=M):
    def __str__(self):
        return "A"
class Flag:
    def __bool__(self):
        print("bool called")
        return True
print("x", A(), 2)
print("y", flush=Flag())

# %% print_reprs_of_values worker
print("tab\tsep", "new\nline", repr("quote's"))
print(True, False, None, 1e100, 1j, -0.0, b"bytes", 10 ** 25, 1.5e-10, [0.1, 1 / 3])
nested = {"a": [1, (2, 3), {4}], "b": {"c": None}, "e": "str'q"}
print(nested)
str(nested) == repr(nested), repr(frozenset()), repr(set()), repr(()), repr((1,))

# %% print_many_lines_and_unicode
for i in range(20):
    print(f"line {i:02d}", "é" * (i % 3), "😀" if i == 19 else "")
