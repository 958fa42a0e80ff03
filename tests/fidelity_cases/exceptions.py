# Fidelity cases: try/except/else/finally, raise forms, exception groups, error types an agent meets.
# Format: see tests/fidelity_cases/__init__.py. Not an importable module.

# %% try_except_else_finally_order worker
def f(x):
    out = []
    try:
        out.append("try")
        if x:
            raise ValueError("v")
    except ValueError as e:
        out.append(f"except {e}")
    else:
        out.append("else")
    finally:
        out.append("finally")
    return out
f(0), f(1)

# %% return_in_finally_overrides
def f():
    try:
        return "try"
    finally:
        return "finally"
def g():
    try:
        raise KeyError("lost")
    finally:
        return "swallowed"
f(), g()

# %% break_and_continue_through_finally
out = []
for i in range(5):
    try:
        if i == 1:
            continue
        if i == 3:
            break
        out.append(i)
    finally:
        out.append(f"f{i}")
out

# %% break_in_finally_swallows_exception
def f():
    for i in range(3):
        try:
            raise ValueError(i)
        finally:
            break
    return "swallowed"
f()

# %% continue_in_finally
res = []
for i in range(3):
    try:
        res.append(i)
    finally:
        if i == 1:
            continue
    res.append("after")
res

# %% finally_runs_on_return_inside_loop
def f():
    log = []
    for i in range(3):
        try:
            if i == 1:
                return log
        finally:
            log.append(i)
    return "unreachable"
f()

# %% try_in_loop_with_else
results = []
for s in ["1", "x", "3", ""]:
    try:
        n = int(s)
    except ValueError as e:
        results.append(f"bad: {e}")
        continue
    else:
        results.append(n * 2)
    finally:
        results.append("|")
results

# %% exception_variable_cleared_after_except raises=NameError
try:
    1 / 0
except ZeroDivisionError as err:
    print("caught", err)
err

# %% bare_raise_reraises
def risky():
    try:
        {}["missing"]
    except KeyError:
        print("logging and re-raising")
        raise
try:
    risky()
except LookupError as e:
    print("outer caught", repr(e))

# %% bare_raise_outside_except raises=RuntimeError
raise

# %% raise_class_not_instance raises=IndexError
raise IndexError

# %% raise_non_exception raises=TypeError
raise "just a string"

# %% raise_from_chained raises=AppError
class AppError(Exception):
    pass
def load():
    try:
        int("abc")
    except ValueError as e:
        raise AppError("could not load") from e
try:
    load()
except AppError as e:
    print("AppError:", e)
load()

# %% raise_from_none raises=KeyError
try:
    [][0]
except IndexError:
    raise KeyError("replaced") from None

# %% exception_in_except_block raises=TypeError
try:
    1 / 0
except ZeroDivisionError:
    print("handling")
    None + 1

# %% except_tuple_and_order
def classify(exc):
    try:
        raise exc
    except (KeyError, IndexError):
        return "lookup-specific"
    except LookupError:
        return "lookup"
    except ArithmeticError as e:
        return f"arith {e!r}"
    except Exception:
        return "generic"
[classify(e) for e in [KeyError(), IndexError(), LookupError(), ZeroDivisionError("z"), RuntimeError()]]

# %% except_star_splits_group
def run():
    raise ExceptionGroup("many", [ValueError("a"), TypeError("b"), ValueError("c")])
try:
    run()
except* ValueError as eg:
    print("values:", [str(e) for e in eg.exceptions])
except* TypeError as eg:
    print("types:", len(eg.exceptions))
print("after")

# %% except_star_unhandled_part_propagates raises=ExceptionGroup
try:
    raise ExceptionGroup("g", [ValueError(1), KeyError(2)])
except* ValueError:
    print("handled values")

# %% except_star_wraps_naked_exception
try:
    raise OSError("naked")
except* OSError as eg:
    print(repr(eg), [repr(e) for e in eg.exceptions])

# %% exception_group_split_and_subgroup
eg = ExceptionGroup("top", [ValueError("x"), ExceptionGroup("inner", [TypeError("y"), ValueError("z")])])
match_, rest = eg.split(ValueError)
print(repr(match_))
print(repr(rest))
print(repr(eg.subgroup(lambda e: isinstance(e, TypeError))))
len(eg.exceptions), str(eg)

# %% custom_exception_args_and_str
class HTTPError(Exception):
    def __init__(self, code, msg):
        self.code = code
        self.msg = msg
    def __str__(self):
        return f"{self.code}: {self.msg}"
try:
    raise HTTPError(404, "not found")
except HTTPError as e:
    print(e, e.code, e.args)

# %% exception_str_and_repr worker
errs = [ValueError("bad"), KeyError("k"), OSError(2, "No such file"), Exception("a", 1), StopIteration(5)]
[str(e) for e in errs], [repr(e) for e in errs]

# %% assert_statement raises=AssertionError
x = 3
assert x > 0, "positive"
print("ok so far")
assert x > 5, f"x too small: {x}"

# %% name_error_no_guessing raises=NameError worker
result_value = 10
print(result_value)
print(result_valeu)

# %% name_error_inside_function raises=NameError
def f():
    return helper(3)
print("defined")
f()

# %% name_error_builtin_typo raises=NameError
lenght = 3
prnt(lenght)

# %% unbound_local_error raises=UnboundLocalError
x = 1
def f():
    print(x)
    x = 2
f()

# %% unbound_local_caught_as_nameerror
def f():
    if False:
        y = 1
    return y
try:
    f()
except NameError as e:
    print("caught", repr(e))

# %% attribute_error_on_str raises=AttributeError
"abc".no_such_method()

# %% attribute_error_on_none raises=AttributeError
result = {"a": 1}.get("b")
result.upper()

# %% type_error_str_plus_int raises=TypeError
"total: " + 1

# %% type_error_not_callable raises=TypeError
x = 5
x()

# %% type_error_not_subscriptable raises=TypeError
n = None
n[0]

# %% zero_division_after_prints raises=ZeroDivisionError worker
for i in range(3, -1, -1):
    print(10 // i)

# %% key_error_after_get raises=KeyError
d = {"a": 1}
print(d.get("b"), d.setdefault("c", 3), d)
d["b"]

# %% index_error raises=IndexError
[1, 2, 3][3]

# %% value_error_int_parse raises=ValueError
int("12.5")

# %% overflow_error_float_to_int raises=OverflowError
int(float("inf"))

# %% overflow_error_float_pow raises=OverflowError
10.0 ** 400

# %% int_str_digit_limit raises=ValueError
n = 10 ** 5000
print(n > 0)
s = str(n)

# %% keyboard_like_exceptions_are_base
try:
    raise SystemExit(3)
except Exception:
    print("not caught here")
except BaseException as e:
    print("base caught", repr(e))

# %% nested_finally_order
def f():
    try:
        try:
            print("inner try")
            raise ValueError("x")
        finally:
            print("inner finally")
    except ValueError:
        print("outer except")
        return "ret"
    finally:
        print("outer finally")
f()

# %% exception_in_finally_replaces raises=KeyError
try:
    raise ValueError("first")
finally:
    raise KeyError("second")

# %% error_inside_comprehension raises=ZeroDivisionError
print("before")
[1 / x for x in [2, 1, 0, 3]]

# %% error_in_lambda_in_sort raises=TypeError
data = [{"n": 1}, {"n": None}, {"n": 3}]
sorted(data, key=lambda d: d["n"])

# %% isinstance_checks_on_exceptions
checks = []
for exc in (KeyError("a"), FileNotFoundError("f"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")):
    checks.append((isinstance(exc, LookupError), isinstance(exc, OSError), isinstance(exc, ValueError)))
checks, str(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"))

# %% decode_error_caught
try:
    b"\xff\xfe\xfa".decode("utf-8")
except UnicodeDecodeError as e:
    print("decode failed:", e)
b"\xff".decode("utf-8", errors="replace")

# %% exception_with_raising_str raises=E worker
# An agent-defined exception whose __str__ is broken must still come back as that error, with the logs.
class E(Exception):
    def __str__(self):
        raise RuntimeError("str broke")
print("before")
raise E("x")

# %% print_object_whose_str_returns_non_string raises=TypeError
class Bad:
    def __str__(self):
        return 5
print("ok")
print(Bad())

# %% exception_init_without_super_and_no_args raises=E
class E(Exception):
    def __init__(self):
        pass
raise E

# %% custom_decode_error_raised_by_code raises=JSONDecodeError
import json
try:
    json.loads("[1,")
except json.JSONDecodeError as e:
    print(e.msg, e.pos, e.lineno)
raise json.JSONDecodeError("custom", "doc", 0)
