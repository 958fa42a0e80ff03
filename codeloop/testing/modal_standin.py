"""A stand-in for the Modal SDK's ``modal.App``, ``modal.Image`` and ``modal.Sandbox``, for offline tests.

Layer 2 (testing). ``ModalCloud().patch()`` replaces those three names in the ``modal`` module (which
stays installed: ``modal.exception`` is the real one) with classes taking the real parameters:
``App.lookup(name, create_if_missing=...)``, ``Image.debian_slim(python_version=)`` and
``.pip_install(*packages)`` (recorded; the image's packages are "installed" by doing nothing, as the
sandbox runs this interpreter), ``Sandbox.create(app=, image=, timeout=, block_network=, ...)``,
``sb.exec(*args, text=)`` returning a ContainerProcess-like object (``stdin.write`` buffers until
``drain()``, as in the SDK; ``stdout``/``stderr`` iterate bytes or text chunks; ``wait``, ``poll``)
and ``sb.terminate()``. Credentials: MODAL_TOKEN_ID and MODAL_TOKEN_SECRET must match ``tokens``, else
``modal.exception.AuthError``.
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import os
from collections.abc import Iterator
from typing import Any

from .sandbox_standin import CallLog, LocalProcess, LocalSandbox

__all__ = ["ModalCloud"]

_IDS = itertools.count(1)


class ModalCloud:
    """The fake Modal service: accepted tokens, apps, sandboxes, and the log of every call."""

    def __init__(self, tokens: tuple[str, str] = ("ak-test", "as-test")):
        self.tokens = tokens
        self.log = CallLog()
        self.sandboxes: list[Any] = []
        self.apps: dict[str, Any] = {}
        self.App, self.Image, self.Sandbox = _classes(self)

    def running(self) -> list[Any]:
        return [s for s in self.sandboxes if s._local.alive]

    def check_auth(self) -> None:
        import modal

        token = (os.environ.get("MODAL_TOKEN_ID"), os.environ.get("MODAL_TOKEN_SECRET"))
        if not all(token):
            raise modal.exception.AuthError(
                "Token missing. Could not authenticate client. If you have token credentials, see "
                "modal.com/docs/sdk/py/latest/config for setup help."
            )
        if token != self.tokens:
            raise modal.exception.AuthError("Token ID or secret is invalid.")

    @contextlib.contextmanager
    def patch(self) -> Iterator[ModalCloud]:
        import modal

        saved = modal.App, modal.Image, modal.Sandbox
        modal.App, modal.Image, modal.Sandbox = self.App, self.Image, self.Sandbox
        try:
            yield self
        finally:
            modal.App, modal.Image, modal.Sandbox = saved


class _Writer:
    """Like modal's StreamWriter: ``write`` queues, ``drain`` sends."""

    def __init__(self, cloud: ModalCloud, proc: LocalProcess):
        self._cloud, self._proc, self._buffer = cloud, proc, bytearray()

    def write(self, data: bytes | bytearray | memoryview | str) -> None:
        self._buffer += data.encode() if isinstance(data, str) else bytes(data)

    def write_eof(self) -> None:
        self._cloud.log.record("process.stdin.write_eof")
        self._proc.close_stdin()

    def drain(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        self._cloud.log.record("process.stdin.drain", data)
        self._proc.write(data)


class _Reader:
    def __init__(self, proc: LocalProcess, stream: str, text: bool):
        self._proc, self._stream, self._text = proc, stream, text

    def __iter__(self) -> Iterator[Any]:
        decoder = codecs.getincrementaldecoder("utf-8")()
        for chunk in self._proc.chunks(self._stream):
            if self._text:
                text = decoder.decode(chunk)
                if text:
                    yield text
            else:
                yield chunk


class _ContainerProcess:
    def __init__(self, cloud: ModalCloud, proc: LocalProcess, text: bool):
        self._proc = proc
        self.stdin = _Writer(cloud, proc)
        self.stdout = _Reader(proc, "stdout", text)
        self.stderr = _Reader(proc, "stderr", text)

    @property
    def returncode(self) -> int | None:
        return self._proc.proc.poll()

    def poll(self) -> int | None:
        return self._proc.proc.poll()

    def wait(self) -> int:
        return self._proc.wait()


def _classes(cloud: ModalCloud) -> tuple[type, type, type]:
    class App:
        def __init__(self, name: str):
            self.name = name

        @staticmethod
        def lookup(
            name: str, *, client: Any = None, environment_name: str | None = None, create_if_missing: bool = False
        ) -> Any:
            cloud.log.record("App.lookup", name, create_if_missing=create_if_missing)
            cloud.check_auth()
            if name not in cloud.apps:
                if not create_if_missing:
                    import modal

                    raise modal.exception.NotFoundError(f"App '{name}' not found")
                cloud.apps[name] = App(name)
            return cloud.apps[name]

    class Image:
        def __init__(self, python_version: str | None, packages: tuple[str, ...]):
            self.python_version, self.packages = python_version, packages

        @staticmethod
        def debian_slim(python_version: str | None = None, force_build: bool = False) -> Any:
            cloud.log.record("Image.debian_slim", python_version=python_version)
            return Image(python_version, ())

        def pip_install(
            self,
            *packages: str | list[str],
            find_links: str | None = None,
            index_url: str | None = None,
            extra_index_url: str | None = None,
            pre: bool = False,
            extra_options: str = "",
            force_build: bool = False,
            env: dict[str, str | None] | None = None,
            secrets: Any = None,
            gpu: str | None = None,
        ) -> Any:
            flat = [p for group in packages for p in ([group] if isinstance(group, str) else group)]
            cloud.log.record("Image.pip_install", *flat)
            return Image(self.python_version, (*self.packages, *flat))

    class Sandbox:
        def __init__(self, object_id: str, env: dict[str, Any] | None):
            self.object_id = object_id
            self._local = LocalSandbox(cloud.log, {k: v for k, v in (env or {}).items() if v is not None})

        @staticmethod
        def create(
            *args: str,
            app: Any = None,
            name: str | None = None,
            tags: dict[str, str] | None = None,
            image: Any = None,
            env: dict[str, str | None] | None = None,
            secrets: Any = None,
            timeout: int | None = 300,
            block_network: bool = False,
            **options: Any,
        ) -> Any:
            cloud.log.record(
                "Sandbox.create",
                *args,
                app=getattr(app, "name", app),
                image_packages=list(getattr(image, "packages", ())),
                env=env,
                timeout=timeout,
                block_network=block_network,
                **options,
            )
            cloud.check_auth()
            if app is None:
                raise ValueError("stand-in: Sandbox.create needs app= outside a running Modal app")
            sandbox = Sandbox(f"sb-standin{next(_IDS)}", env)
            sandbox.block_network = block_network
            cloud.sandboxes.append(sandbox)
            return sandbox

        def exec(
            self,
            *args: str,
            stdout: Any = None,
            stderr: Any = None,
            timeout: int | None = None,
            workdir: str | None = None,
            env: dict[str, str | None] | None = None,
            secrets: Any = None,
            text: bool = True,
            bufsize: int = -1,
            pty: bool = False,
            _pty_info: Any = None,
            pty_info: Any = None,
        ) -> Any:
            cloud.log.record("Sandbox.exec", *args, workdir=workdir, env=env, text=text, timeout=timeout)
            proc = self._local.start(list(args), env=env, cwd=workdir)
            return _ContainerProcess(cloud, proc, text)

        def poll(self) -> int | None:
            return None if self._local.alive else 0

        def terminate(self, *, wait: bool = False) -> int | None:
            cloud.log.record("Sandbox.terminate", self.object_id)
            self._local.kill()
            return 0 if wait else None

    return App, Image, Sandbox
