# Fidelity cases: the default authorized standard-library modules, as agents use them.
# Format: see tests/fidelity_cases/__init__.py. Not an importable module.

# %% itertools_usage
import itertools as it
print(list(it.chain([1, 2], "ab")), list(it.islice(it.count(5, 2), 3)), list(it.repeat("x", 2)))
print(list(it.accumulate([1, 2, 3, 4])), list(it.accumulate([3, 1, 4], max)), list(it.pairwise("abcd")))
print(list(it.combinations("abc", 2)), list(it.permutations([1, 2, 3], 2))[:4], len(list(it.product(range(3), repeat=2))))
print([(k, list(g)) for k, g in it.groupby("aaabccdaa")])
print(list(it.zip_longest("ab", [1, 2, 3], fillvalue="-")), list(it.compress("abcd", [1, 0, 1, 0])), list(it.takewhile(lambda x: x < 3, [1, 2, 5, 1])))
list(it.starmap(pow, [(2, 3), (3, 2)])), list(it.dropwhile(lambda x: x < 3, [1, 2, 5, 1])), list(it.filterfalse(str.isdigit, "a1b2")), list(it.islice(it.cycle("ab"), 5))

# %% itertools_groupby_sorted_records
from itertools import groupby, chain
rows = [{"team": "b", "pts": 3}, {"team": "a", "pts": 1}, {"team": "b", "pts": 4}, {"team": "a", "pts": 2}]
rows.sort(key=lambda r: r["team"])
totals = {team: sum(r["pts"] for r in grp) for team, grp in groupby(rows, key=lambda r: r["team"])}
totals, list(chain.from_iterable([[1], [2, 3]]))

# %% functools_reduce_partial_cache
import functools, operator
print(functools.reduce(operator.mul, range(1, 6)), functools.reduce(lambda a, b: a + b, [], 0))
p = functools.partial(int, base=2)
print(p("1010"), p("11"))
@functools.lru_cache(maxsize=None)
def ways(n):
    return 1 if n <= 1 else ways(n - 1) + ways(n - 2)
print(ways(60), ways.cache_info().hits > 0)
@functools.cache
def sq(x):
    print("computing", x)
    return x * x
sq(3), sq(3), sorted([3, 1, 2], key=functools.cmp_to_key(lambda a, b: b - a))

# %% functools_singledispatch
import functools
@functools.singledispatch
def show(x):
    return f"obj {x}"
@show.register
def _(x: int):
    return f"int {x}"
@show.register(list)
def _(x):
    return f"list of {len(x)}"
show(1), show([1, 2]), show("s"), show(True)

# %% functools_reduce_empty raises=TypeError
import functools
functools.reduce(lambda a, b: a + b, [])

# %% collections_counter_defaultdict_deque
from collections import Counter, defaultdict, deque
c = Counter("mississippi")
print(c.most_common(2), c["s"], c["zz"], sum(c.values()))
c.update("ss")
print((c - Counter("sss")).most_common(1), +Counter({"a": -1, "b": 2}))
dd = defaultdict(list)
for w in ["apple", "avocado", "banana"]:
    dd[w[0]].append(w)
print(dict(dd), dd["z"], len(dd))
dq = deque([1, 2, 3], maxlen=3)
dq.append(4)
dq.appendleft(0)
dq.rotate(1)
print(dq, dq.popleft(), list(dq))
Counter(a=3) + Counter(a=1, b=1), Counter("aab") == Counter("aba")

# %% collections_ordereddict_chainmap
from collections import OrderedDict, ChainMap, defaultdict
od = OrderedDict(a=1, b=2)
od.move_to_end("a")
od["c"] = 0
od.popitem(last=False)
cm = ChainMap({"a": 1}, {"a": 2, "b": 3})
tree = lambda: defaultdict(tree)
t = tree()
t["x"]["y"]["z"] = 1
list(od.items()), cm["a"], cm["b"], len(cm), "x" in t, t["x"]["y"]["z"]

# %% json_roundtrip_and_formatting worker
import json
data = {"name": "Zoë", "vals": [1, 2.5, None, True], "nested": {"k": "v"}}
s = json.dumps(data)
print(s)
print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
back = json.loads(s)
print(back == data, json.loads('[1, 2.0, "x", null, false]'), json.dumps((1, 2)), json.dumps({1: "int key"}))
json.loads('{"a": {"b": [1, {"c": 3}]}}')["a"]["b"][1]["c"], json.dumps("é"), json.dumps(float("nan"))

# %% json_decode_error raises=JSONDecodeError
import json
json.loads("{bad json}")

# %% json_decode_error_caught_as_valueerror
import json
try:
    json.loads('{"a": 1,}')
except ValueError as e:
    print("invalid:", e)

# %% json_not_serializable raises=TypeError
import json
json.dumps({"s": {1, 2}})

# %% json_custom_default
import json, datetime
def enc(o):
    if isinstance(o, datetime.date):
        return o.isoformat()
    raise TypeError("nope")
json.dumps({"when": datetime.date(2024, 1, 2), "n": 1}, default=enc, separators=(",", ":"))

# %% re_usage worker
import re
text = "Order 66 shipped on 2024-03-05; order 7 on 2023-12-31."
print(re.findall(r"\d{4}-\d{2}-\d{2}", text))
print([m.groupdict() for m in re.finditer(r"(?P<y>\d{4})-(?P<m>\d\d)", text)])
m = re.search(r"order (\d+)", text, re.I)
print(m.group(0), m.group(1), m.span(), m.start(1), m.groups())
print(re.sub(r"(\d+)", lambda mm: str(int(mm.group(1)) * 2), "a1 b22 c333"), re.sub(r"\s+", " ", "a  b\n\tc"))
print(re.split(r"[;,]\s*", "a, b;c,  d"), re.match(r"x", "yx"), bool(re.fullmatch(r"[a-z]+", "abc")))
pat = re.compile(r"^(\w+)@(\w+)\.com$", re.M)
pat.findall("joe@ex.com\nbad@@x.com\nann@site.com"), re.escape("a.b*c"), re.subn("a", "b", "banana")

# %% re_backrefs_and_flags
import re
print(re.sub(r"(\w+) (\w+)", r"\2 \1", "hello world"), re.findall(r"(a)(b)?", "ab a"))
print(re.search(r"^b", "a\nb", re.MULTILINE).start(), re.findall(r"a.c", "a\nc abc", re.DOTALL))
re.compile(r"""
    (\d+)   # number
    \s*
    (kg|g)  # unit
""", re.VERBOSE).findall("5 kg and 300g")

# %% re_invalid_pattern raises=error
import re
re.compile("(unclosed")

# %% math_usage
import math
print(math.sqrt(16), math.floor(-2.5), math.ceil(2.1), math.trunc(-2.7), math.pi, math.e)
print(math.gcd(12, 18), math.lcm(4, 6), math.factorial(20), math.comb(10, 3), math.perm(5, 2), math.isqrt(99))
print(math.log(math.e), math.log10(1000), math.log2(8), math.log(8, 2), math.exp(0), math.hypot(3, 4))
print(math.fsum([0.1] * 10), math.prod([1, 2, 3, 4]), math.copysign(3, -0.0), math.inf, -math.inf, math.nan)
round(math.sin(math.pi / 6), 10), math.degrees(math.pi), math.dist((0, 0), (3, 4)), math.isfinite(1e308)

# %% math_domain_error raises=ValueError
import math
math.sqrt(-1)

# %% datetime_usage
import datetime as dt
d = dt.date(2024, 2, 28)
print(d + dt.timedelta(days=2), d.isoformat(), d.weekday(), d.strftime("%Y %j %m"), d.replace(day=1))
t = dt.datetime(2024, 3, 10, 14, 30, 5)
print(t, t.isoformat(), t - dt.datetime(2024, 1, 1), (t - dt.datetime(2024, 1, 1)).total_seconds())
print(dt.datetime.strptime("2023-07-04 09:15", "%Y-%m-%d %H:%M"), dt.date.fromisoformat("2020-02-29").toordinal())
delta = dt.timedelta(hours=25, minutes=61)
print(delta, delta.days, delta.seconds, repr(delta), -delta)
utc = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
utc.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat(), dt.date(2024, 12, 31).timetuple().tm_yday

# %% datetime_invalid_date raises=ValueError
import datetime
datetime.date(2023, 2, 29)

# %% datetime_naive_aware_compare raises=TypeError
from datetime import datetime, timezone
datetime(2024, 1, 1) < datetime(2024, 1, 1, tzinfo=timezone.utc)

# %% decimal_usage
from decimal import Decimal, ROUND_HALF_UP, localcontext
print(Decimal("0.1") + Decimal("0.2"), Decimal("0.1") + Decimal("0.2") == Decimal("0.3"), Decimal(0.1))
print(Decimal("1.005").quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), Decimal("10") / Decimal("3"))
print(Decimal("2").sqrt(), Decimal("-0"), Decimal("1e3").normalize(), round(Decimal("2.675"), 2), Decimal(3) ** 2)
with localcontext() as ctx:
    ctx.prec = 5
    print(Decimal(1) / Decimal(7))
Decimal("1.10") * 3, repr(Decimal("7.50")), int(Decimal("9.99")), float(Decimal("0.5")), Decimal(1) / Decimal(7)

# %% decimal_invalid_literal raises=InvalidOperation
from decimal import Decimal
Decimal("abc")

# %% fractions_usage
from fractions import Fraction
f = Fraction(3, 4) + Fraction(1, 6)
print(f, f.numerator, f.denominator, float(f), Fraction("0.125"), Fraction(0.5), Fraction(1, 3) * 3 == 1)
print(Fraction(7, 3) // 1, Fraction(-7, 3) % 1, round(Fraction(5, 2)), Fraction(1, 3) < 0.34, Fraction(22, 7).limit_denominator(5))
sum(Fraction(1, n) for n in range(1, 6)), repr(Fraction(2, 4))

# %% fractions_zero_denominator raises=ZeroDivisionError
from fractions import Fraction
Fraction(1, 0)

# %% statistics_usage
import statistics as st
data = [2, 4, 4, 4, 5, 5, 7, 9]
print(st.mean(data), st.median(data), st.mode(data), st.pstdev(data), round(st.stdev(data), 6))
print(st.median_low([1, 3, 5, 7]), st.median_high([1, 3, 5, 7]), st.multimode("aabbc"), st.fmean([1, 2, 3.5]))
st.quantiles(range(1, 11), n=4), st.variance([1.5, 2.5, 2.5, 2.75, 3.25, 4.75]), st.harmonic_mean([40, 60])

# %% statistics_empty raises=StatisticsError
import statistics
statistics.mean([])

# %% heapq_and_bisect
import heapq, bisect
h = []
for v in [5, 1, 8, 3, 2]:
    heapq.heappush(h, v)
print([heapq.heappop(h) for _ in range(3)], h)
print(heapq.nlargest(2, [4, 1, 7, 3]), heapq.nsmallest(2, ["b", "a", "c"]), list(heapq.merge([1, 4], [2, 3])))
a = [1, 3, 3, 7]
print(bisect.bisect_left(a, 3), bisect.bisect_right(a, 3), bisect.bisect(a, 10))
bisect.insort(a, 5)
a, heapq.heappushpop([1, 2], 0), bisect.bisect_left([(1, "a"), (3, "c")], (2,))

# %% string_and_textwrap_modules
import string, textwrap
print(string.ascii_lowercase[:5], string.digits, string.punctuation[:5], string.capwords("hello big world"))
print(textwrap.wrap("The quick brown fox jumps over the lazy dog", 12))
print(textwrap.fill("aaa bbb ccc ddd", width=7))
print(textwrap.dedent("    x\n      y\n    z"))
print(textwrap.shorten("Hello world, this is long", width=15), textwrap.indent("a\nb", "> "))
string.Template("$who likes ${what}").substitute(who="tim", what="kung pao")

# %% operator_and_copy_modules
import operator, copy
items = [{"n": "b", "v": 2}, {"n": "a", "v": 1}]
print(sorted(items, key=operator.itemgetter("n")), operator.add(2, 3), operator.itemgetter(1, 0)("ab"))
class P:
    def __init__(self, v):
        self.v = v
ps = sorted([P(3), P(1)], key=operator.attrgetter("v"))
print([p.v for p in ps], operator.methodcaller("upper")("x"), operator.neg(4))
orig = {"a": [1, 2], "b": {"c": [3]}}
sh = copy.copy(orig)
dp = copy.deepcopy(orig)
orig["a"].append(99)
orig["b"]["c"].append(100)
sh, dp

# %% random_seeded_is_deterministic
import random
random.seed(12345)
a = [random.randint(1, 100) for _ in range(5)]
random.seed(12345)
b = [random.randint(1, 100) for _ in range(5)]
rng = random.Random(7)
deck = list(range(10))
rng.shuffle(deck)
print(a == b, len(a))
a, rng.random(), rng.choice("abcdef"), rng.sample(range(100), 3), round(rng.uniform(1, 2), 12), deck

# %% queue_module
import queue
q = queue.Queue()
for i in range(3):
    q.put(i)
pq = queue.PriorityQueue()
for p in [(3, "c"), (1, "a"), (2, "b")]:
    pq.put(p)
lq = queue.LifoQueue()
lq.put(1)
lq.put(2)
[q.get() for _ in range(3)], pq.get(), lq.get(), q.empty(), q.qsize()

# %% queue_empty_get_nowait raises=Empty
import queue
queue.Queue().get_nowait()

# %% unicodedata_stat_time_modules
import unicodedata, stat, time
t0 = time.time()
t1 = time.perf_counter()
print(unicodedata.name("é"), unicodedata.normalize("NFD", "é") == "e\u0301", unicodedata.category("A"))
print(stat.S_ISDIR(0o040755), stat.S_ISREG(0o100644), stat.filemode(0o100644))
isinstance(t0, float), time.perf_counter() >= t1, len(unicodedata.normalize("NFC", "e\u0301")), time.strftime("%Y", time.gmtime(0))

# %% typing_and_dataclasses_together
from dataclasses import dataclass, field
from typing import Any
@dataclass
class Task:
    title: str
    priority: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
tasks = [Task("b", 2), Task("a", 2, {"x": 1}), Task("c")]
tasks.sort(key=lambda t: (-t.priority, t.title))
[t.title for t in tasks], tasks[0].meta

# %% import_forms
import math as m
from math import sqrt as root, floor
from collections import *
m.ceil(1.2), root(9), floor(2.7), Counter("aa")["a"], deque([1]).pop()

# %% import_inside_function
def f():
    import json
    return json.dumps([1])
f()

# %% contextlib_helpers imports=contextlib
from contextlib import contextmanager, suppress
@contextmanager
def tag(name):
    print(f"<{name}>")
    try:
        yield name.upper()
    finally:
        print(f"</{name}>")
with tag("b") as t:
    print("inside", t)
with suppress(KeyError):
    {}["x"]
    print("not printed")
print("after suppress")
try:
    with tag("i"):
        raise ValueError("inside cm")
except ValueError as e:
    print("propagated", e)

# %% contextlib_exitstack imports=contextlib
from contextlib import ExitStack, contextmanager
@contextmanager
def res(n):
    print("open", n)
    yield n
    print("close", n)
with ExitStack() as stack:
    got = [stack.enter_context(res(i)) for i in range(3)]
    stack.callback(print, "callback")
    print("using", got)

# %% strptime_lazy_internal_import worker
# datetime/time strptime import the private module _strptime from C on first use.
import datetime, time
datetime.datetime.strptime("2024-05-06", "%Y-%m-%d").day, time.strptime("2023", "%Y").tm_year
