# Fidelity cases in several agent steps: state carried from one code action to the next.
# Format: see tests/fidelity_cases/__init__.py ("# --- step ---" separates steps). Not an importable module.

# %% steps_function_then_call worker
def area(w, h=1):
    return w * h
print("defined")
# --- step ---
area(3, 4), area(5)
# --- step ---
results = [area(i) for i in range(3)]
results

# %% steps_import_persists
import json
import math as m
from collections import Counter
# --- step ---
json.dumps({"pi": round(m.pi, 2)}), Counter("aab")["a"]

# %% steps_error_keeps_partial_state worker
x = 1
y = x + 1
z = undefined_name
w = 4
# --- step ---
print(x, y)
try:
    print(w)
except NameError as e:
    print("w never assigned:", e)
# --- step ---
z = "now defined"
z

# %% steps_class_redefinition_breaks_isinstance
class Thing:
    def kind(self):
        return "v1"
t = Thing()
# --- step ---
class Thing:
    def kind(self):
        return "v2"
isinstance(t, Thing), t.kind(), Thing().kind()

# %% steps_generator_resumes_across_steps worker
def counter():
    n = 0
    while True:
        n += 1
        yield n
gen = counter()
next(gen)
# --- step ---
next(gen), next(gen)
# --- step ---
[next(gen) for _ in range(3)]

# %% steps_global_counter_and_closure
count = 0
def bump(by=1):
    global count
    count += by
    return count
make = lambda: (lambda: count * 10)
reader = make()
# --- step ---
bump()
bump(5)
reader()
# --- step ---
count = 100
reader(), bump()

# %% steps_del_then_name_error
data = [1, 2, 3]
total = sum(data)
# --- step ---
del data
total
# --- step ---
data

# %% steps_exception_class_across_steps
class RetryError(Exception):
    pass
def flaky(n):
    if n < 2:
        raise RetryError(f"attempt {n} failed")
    return "ok"
# --- step ---
flaky(0)
# --- step ---
attempts = []
for n in range(4):
    try:
        attempts.append(flaky(n))
        break
    except RetryError as e:
        attempts.append(str(e))
attempts

# %% steps_async_function_then_await worker
async def fetch(q):
    return search_tool(q)
# --- step ---
page = await fetch("codeloop")
print(page)
# --- step ---
len(page)

# %% steps_dataclass_mutation
from dataclasses import dataclass, field
@dataclass
class Cart:
    items: list = field(default_factory=list)
    def add(self, name, qty=1):
        self.items.append((name, qty))
        return self
cart = Cart()
# --- step ---
cart.add("apple").add("pear", 3)
print(cart)
# --- step ---
sum(q for _, q in cart.items), len(cart.items)

# %% steps_comprehension_variable_not_leaked
squares = [i * i for i in range(4)]
# --- step ---
i

# %% steps_final_answer_then_continue
print("step one")
final_answer("early answer")
print("not printed")
# --- step ---
print("the next step still runs")
"value after final answer"

# %% steps_print_logs_are_per_step
for i in range(3):
    print("first", i)
# --- step ---
print("second only")
# --- step ---
x = 5

# %% steps_syntax_error_step_keeps_state
keep = "kept"
# --- step ---
def broken(:
    pass
# --- step ---
keep

# %% steps_shadowed_builtin_persists
max = lambda *a: "shadowed"
# --- step ---
max(1, 2)
# --- step ---
del max
max(1, 2)
