# Benchmark snippets for benchmarks/interpreter.py: agent-typical and loop-heavy code actions.
# Same format as tests/fidelity_cases (one "# %% name" header per snippet). Not an importable module.
# Each is sized so that CPython itself takes a few ms: the geometric mean is about the cost of running
# code, and a fixed per-call cost (the worker's pipe round trip, measured on its own in the fixed-cost
# table with the trivial agent step) should weigh in it as it does in a real step of that size.

# %% loop_arithmetic
total = 0
for i in range(20000):
    if i % 3 == 0:
        total += i * i
    else:
        total -= i
total

# %% nested_loops_grid
grid = [[(r * 31 + c * 17) % 10 for c in range(120)] for r in range(120)]
best = 0
for r in range(1, 119):
    for c in range(1, 119):
        s = grid[r - 1][c] + grid[r + 1][c] + grid[r][c - 1] + grid[r][c + 1]
        if s > best:
            best = s
best

# %% comprehensions
nums = list(range(20000))
squares = [n * n for n in nums if n % 2]
index = {n: str(n) for n in nums[:8000]}
evens = {n for n in nums if not n % 4}
nested = [[i * j for j in range(40)] for i in range(100)]
len(squares), len(index), len(evens), sum(map(sum, nested))

# %% string_building
lines = []
for i in range(2000):
    lines.append(f"row {i:05d}: {'#' * (i % 17)} {i * 1.5:.2f}")
text = "\n".join(lines)
words = text.replace(":", " ").split()
len(text), len(words), text.count("#"), text[:20].upper()

# %% recursion_fib
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
fib(21)

# %% classes_and_dunders
class Vec:
    def __init__(self, x, y):
        self.x = x
        self.y = y
    def __add__(self, other):
        return Vec(self.x + other.x, self.y + other.y)
    def norm2(self):
        return self.x * self.x + self.y * self.y
acc = Vec(0, 0)
for i in range(3000):
    acc = acc + Vec(i % 7, i % 5)
acc.norm2()

# %% try_except_in_loop
ok = bad = 0
for raw in [str(i) if i % 4 else f"x{i}" for i in range(4000)]:
    try:
        ok += int(raw)
    except ValueError:
        bad += 1
ok, bad

# %% sort_with_key_lambdas
records = [{"name": f"user{(i * 7919) % 3000}", "age": (i * 37) % 90, "score": (i * 13) % 101} for i in range(3000)]
by_age = sorted(records, key=lambda r: (r["age"], r["name"]))
top = sorted(records, key=lambda r: -r["score"])[:10]
names = sorted({r["name"] for r in records}, key=lambda n: (len(n), n))
by_age[0]["name"], top[0]["score"], names[:3]

# %% json_roundtrip
import json

payload = {"items": [{"id": i, "tags": ["a", "b", str(i)], "price": i * 0.25} for i in range(200)]}
for _ in range(20):
    payload = json.loads(json.dumps(payload))
len(json.dumps(payload)), payload["items"][-1]["price"]

# %% regex_extract
import re

log_text = "\n".join(f"2024-01-{d:02d} ERROR code={d * 3} user=u{d}" if d % 3 == 0 else f"2024-01-{d:02d} INFO ok" for d in range(1, 29))
pattern = re.compile(r"(\d{4}-\d\d-\d\d) ERROR code=(\d+) user=(\w+)")
found = []
for _ in range(100):
    found = [(m.group(1), int(m.group(2)), m.group(3)) for m in pattern.finditer(log_text)]
len(found), found[0], sum(code for _, code, _ in found)

# %% math_stats
import math
import statistics

vals = [math.sin(i / 10) * 100 + math.sqrt(i) for i in range(10000)]
mean = statistics.fmean(vals)
spread = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
round(mean, 6), round(spread, 6), max(vals) > min(vals)

# %% tool_called_in_loop
results = []
for i in range(1000):
    results.append(search_tool(f"query {i}"))
len(results), results[-1]

# %% print_1000_lines
for i in range(1000):
    print(f"line {i}: value={i * i}")

# %% generator_pipeline
def read(n):
    for i in range(n):
        yield f"  item-{i}  "
def clean(lines):
    for line in lines:
        s = line.strip()
        if not s.endswith("7"):
            yield s.upper()
sum(1 for _ in clean(read(10000)))

# %% word_frequency_dicts
from collections import Counter

text = " ".join(["alpha beta gamma delta alpha beta alpha epsilon"] * 1200)
counts = {}
for word in text.split():
    counts[word] = counts.get(word, 0) + 1
c2 = Counter(text.split())
sorted(counts.items(), key=lambda kv: -kv[1])[:3] == c2.most_common(3), counts["alpha"]
