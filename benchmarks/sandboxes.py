"""Sandboxes side by side: cold start and warm round trip of each executor backend, in one run.

Run: .venv/bin/python benchmarks/sandboxes.py [--quick] [--only docker,local]

For each backend in ``BACKENDS`` (adding one is one entry: a name and a function that returns a
factory of executors, or a string saying why it cannot run here):
- cold start: the executor constructed -> its first result (``x = 1``), then closed; median of several,
  and the first one of the process apart (it also pays imports, the engine connection, image checks)
- warm round trip: one trivial run on a started executor (median of many)

Docker: the engine of ``DOCKER_HOST`` with ``--docker-image`` (needs Python 3.11+); without
``DOCKER_HOST``, a throwaway engine started like the tests' (tests/docker_engine.py: root, Debian's
dockerd, the base image that scripts/install-docker-sandbox.sh built). Targets: Docker cold <= 1.0 s,
warm <= 5 ms. Wasm: Pyodide in Deno (scripts/install-wasm-sandbox.sh); target warm <= 5 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Factory = Callable[[], Any]


def local(stack: contextlib.ExitStack) -> Factory | str:
    from codeloop.executors.worker.host import LocalPythonExecutor

    return lambda: LocalPythonExecutor(timeout_seconds=30)


def wasm(stack: contextlib.ExitStack) -> Factory | str:
    """Pyodide in Deno as scripts/install-wasm-sandbox.sh installs them (default settings: start-up
    snapshot, warm spare; the first start of a machine also makes the snapshot)."""
    from codeloop.executors.remote.wasm import WasmExecutor, find_runtime

    try:
        find_runtime()
    except FileNotFoundError as exc:
        return str(exc)
    return lambda: WasmExecutor(timeout_seconds=30)


def docker(stack: contextlib.ExitStack) -> Factory | str:
    try:
        from codeloop.executors.remote.docker import DockerExecutor
    except ImportError as exc:
        return str(exc)
    host, image = os.environ.get("DOCKER_HOST"), ARGS.docker_image
    if not host:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
        import docker_engine

        try:
            engine = docker_engine.shared()
        except RuntimeError as exc:
            return f"no engine: {exc}"
        stack.callback(engine.stop)
        host, image = engine.host, docker_engine.BASE_IMAGE
    return lambda: DockerExecutor(image_name=image, docker_host=host, timeout_seconds=30)


def cloud_standin(backend: str) -> Callable[[contextlib.ExitStack], Factory | str]:
    """E2B/Modal/Blaxel through the test stand-ins (codeloop/testing/*_standin.py): the sandbox is a
    local process, so this is codeloop's own transport cost (SDK objects, relay, line encoding),
    without the cloud's network round trips, which a real sandbox adds to every figure."""

    def setup(stack: contextlib.ExitStack) -> Factory | str:
        from codeloop.executors.remote import load

        try:
            cls = load(backend)
            module = __import__(f"codeloop.testing.{backend}_standin", fromlist=["_"])
        except ImportError as exc:
            return str(exc)
        cloud = {"e2b": "E2BCloud", "modal": "ModalCloud", "blaxel": "BlaxelCloud"}[backend]
        stack.enter_context(getattr(module, cloud)().patch())
        for name, value in {
            "E2B_API_KEY": "e2b_test_key",
            "MODAL_TOKEN_ID": "ak-test",
            "MODAL_TOKEN_SECRET": "as-test",
            "BL_API_KEY": "bl_test_key",
            "BL_WORKSPACE": "bench",
        }.items():
            os.environ.setdefault(name, value)
        return lambda: cls(timeout_seconds=30)

    return setup


@dataclass
class Backend:
    name: str
    setup: Callable[[contextlib.ExitStack], Factory | str]
    cold_target_s: float | None = None
    warm_target_ms: float | None = None


BACKENDS = [
    Backend("local worker", local),
    Backend("wasm", wasm, warm_target_ms=5.0),
    Backend("docker", docker, cold_target_s=1.0, warm_target_ms=5.0),
    Backend("e2b stand-in", cloud_standin("e2b")),
    Backend("modal stand-in", cloud_standin("modal")),
    Backend("blaxel stand-in", cloud_standin("blaxel")),
]


def measure(make: Factory, colds: int, warms: int) -> dict[str, float]:
    samples = []
    for _ in range(colds):
        start = time.perf_counter()
        ex = make()
        ex("x = 1")
        samples.append(time.perf_counter() - start)
        ex.close()
    ex = make()
    try:
        ex("x = 1")
        for _ in range(20):  # settle
            ex("x")
        warm = []
        for _ in range(warms):
            start = time.perf_counter()
            ex("x")
            warm.append(time.perf_counter() - start)
    finally:
        ex.close()
    return {
        "first": samples[0],
        "cold": statistics.median(samples[1:] or samples),
        "cold_max": max(samples[1:] or samples),
        "warm": statistics.median(warm),
        "warm_p90": statistics.quantiles(warm, n=10)[-1],
    }


def main() -> None:
    colds, warms = (4, 100) if ARGS.quick else (11, 500)
    only = set(ARGS.only.split(",")) if ARGS.only else None
    print(
        f"{'backend':<14} {'cold p50':>10} {'cold max':>10} {'1st in proc':>12} {'warm p50':>10} {'warm p90':>10}"
    )
    with contextlib.ExitStack() as stack:
        for backend in BACKENDS:
            if only and backend.name.split()[0] not in only:
                continue
            make = backend.setup(stack)
            if isinstance(make, str):
                print(f"{backend.name:<14} not measured: {make}")
                continue
            r = measure(make, colds, warms)
            line = (
                f"{backend.name:<14} {r['cold'] * 1000:>8.0f}ms {r['cold_max'] * 1000:>8.0f}ms "
                f"{r['first'] * 1000:>10.0f}ms {r['warm'] * 1000:>8.2f}ms {r['warm_p90'] * 1000:>8.2f}ms"
            )
            verdicts = []
            if backend.cold_target_s is not None:
                ok = r["cold"] <= backend.cold_target_s
                verdicts.append(f"cold {'<=' if ok else '>'} {backend.cold_target_s:g} s")
            if backend.warm_target_ms is not None:
                ok = r["warm"] * 1000 <= backend.warm_target_ms
                verdicts.append(f"warm {'<=' if ok else '>'} {backend.warm_target_ms:g} ms")
            print(line + ("   " + ", ".join(verdicts) if verdicts else ""))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--only", help="comma-separated backend names (first word), e.g. docker")
    parser.add_argument("--docker-image", default="python:3.12-slim", help="base image with DOCKER_HOST")
    ARGS = parser.parse_args()
    main()
