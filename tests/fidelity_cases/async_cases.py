# Fidelity cases: async def / await / async for / async with, via asyncio.run and via top-level await.
# Format: see tests/fidelity_cases/__init__.py. Not an importable module.

# %% asyncio_run_gather imports=asyncio
import asyncio
async def double(x):
    await asyncio.sleep(0)
    return x * 2
async def main():
    return await asyncio.gather(double(1), double(2), double(3))
asyncio.run(main())

# %% top_level_await imports=asyncio worker
import asyncio
async def add(a, b):
    await asyncio.sleep(0)
    return a + b
x = await add(2, 3)
print(x)
await asyncio.gather(add(1, 1), add(2, 2))

# %% top_level_await_without_asyncio
async def greet(name):
    return f"hi {name}"
async def twice(name):
    first = await greet(name)
    return first + " / " + await greet(name.upper())
result = await twice("al")
print(result)
await greet("last")

# %% async_for_over_async_generator imports=asyncio
import asyncio
async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i
async def main():
    out = []
    async for v in agen(4):
        out.append(v)
    return out, [v async for v in agen(3)], {v: v * v async for v in agen(2) if v}
asyncio.run(main())

# %% async_with_context_manager imports=asyncio
import asyncio
class Res:
    def __init__(self, name):
        self.name = name
    async def __aenter__(self):
        print("enter", self.name)
        return self
    async def __aexit__(self, exc_type, exc, tb):
        print("exit", self.name, exc_type is not None)
        return False
async def main():
    async with Res("a") as r, Res("b"):
        print("body", r.name)
    return "done"
asyncio.run(main())

# %% top_level_async_for_and_with
class Res:
    async def __aenter__(self):
        print("aenter")
        return "resource"
    async def __aexit__(self, *exc):
        print("aexit")
async def agen():
    yield "x"
    yield "y"
async for item in agen():
    print(item)
async with Res() as r:
    print("using", r)
[i async for i in agen()]

# %% async_exception_propagates_top_level raises=ValueError imports=asyncio
import asyncio
async def bad():
    await asyncio.sleep(0)
    raise ValueError("async boom")
print("before")
await bad()

# %% async_exception_through_asyncio_run raises=KeyError imports=asyncio
import asyncio
async def bad():
    raise KeyError("in task")
asyncio.run(bad())

# %% async_tasks_interleave imports=asyncio
import asyncio
order = []
async def job(name, n):
    for i in range(n):
        order.append(f"{name}{i}")
        await asyncio.sleep(0)
    return name
async def main():
    t1 = asyncio.create_task(job("a", 3))
    t2 = asyncio.create_task(job("b", 2))
    return await t1, await t2
print(asyncio.run(main()))
order

# %% async_gather_return_exceptions imports=asyncio
import asyncio
async def ok(v):
    return v
async def fail(msg):
    raise RuntimeError(msg)
res = await asyncio.gather(ok(1), fail("nope"), ok(3), return_exceptions=True)
[repr(r) for r in res]

# %% async_wait_for_timeout imports=asyncio
import asyncio
async def slow():
    await asyncio.sleep(10)
    return "too late"
async def main():
    try:
        return await asyncio.wait_for(slow(), timeout=0.01)
    except asyncio.TimeoutError:
        return "timed out"
asyncio.run(main())

# %% async_queue_producer_consumer imports=asyncio
import asyncio
async def main():
    q = asyncio.Queue()
    got = []
    async def producer():
        for i in range(5):
            await q.put(i)
        await q.put(None)
    async def consumer():
        while (item := await q.get()) is not None:
            got.append(item * 10)
    await asyncio.gather(producer(), consumer())
    return got
await main()

# %% async_try_finally_and_except imports=asyncio
import asyncio
async def step(i):
    await asyncio.sleep(0)
    if i == 2:
        raise ValueError(f"step {i} failed")
    return i
async def run_all():
    done = []
    for i in range(4):
        try:
            done.append(await step(i))
        except ValueError as e:
            done.append(str(e))
        finally:
            done.append("f")
    return done
await run_all()

# %% async_generator_asend_and_aclose imports=asyncio
import asyncio
async def echo():
    received = None
    try:
        while True:
            received = yield f"echo {received}"
    finally:
        print("agen closed")
async def main():
    g = echo()
    first = await g.asend(None)
    second = await g.asend("ping")
    await g.aclose()
    return first, second
asyncio.run(main())

# %% coroutine_called_without_await_then_awaited
async def value():
    return 99
coro = value()
print("created")
await coro

# %% async_lambda_like_tool_calls_concurrently imports=asyncio
import asyncio
async def fetch(q):
    await asyncio.sleep(0)
    return search_tool(q)
pages = await asyncio.gather(*(fetch(q) for q in ["a", "bb", "ccc"]))
print(pages[-1])
len(pages)
