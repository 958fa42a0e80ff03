"""Resource lifetime of OpenAIModel: close / aclose / context managers, clients closed with their model
or their loop, the default timeout, and the regression test for requests lost after an unclosed client."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest

from codeloop.models import Model, OpenAIModel
from codeloop.models.retry import RetryPolicy
from codeloop.testing import OpenAICompatibleServer, Reply

USER = [{"role": "user", "content": "hello"}]
FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05, max_wait=5)


@pytest.fixture
def server():
    with OpenAICompatibleServer(handler=lambda request: "ok") as srv:
        yield srv


def make(server, **kwargs):
    kwargs.setdefault("retry_policy", FAST)
    return OpenAIModel("gpt-4o-mini", api_base=server.base_url, api_key="test-key", **kwargs)


async def test_requests_not_lost_after_an_unclosed_model_is_collected():
    """Regression: an unclosed SDK client collected by the garbage collector closed its sockets under the
    loop, then unregistered the reused descriptor numbers of new connections: their replies were never
    read and the requests hung until the timeout. Each round uses a fresh model that is never closed."""
    async with OpenAICompatibleServer(handler=lambda request: "ok", delay=0.05) as server:
        for _round in range(3):
            model = make(server, retry_policy=RetryPolicy(max_retries=0), client_kwargs={"timeout": 3.0})

            async def conversation(model=model):
                for _ in range(2):
                    await model.agenerate(USER)

            results = await asyncio.gather(*(conversation() for _ in range(50)), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            assert not failed, f"{len(failed)} of 50 conversations failed, e.g. {failed[0]!r}"
            del model, conversation
            gc.collect()
        assert len(server.chat_requests) == 300


async def test_aclose_and_async_context_manager_close_clients(server):
    async with make(server) as model:
        await model.agenerate(USER)
        client = model._async_client()
        assert not client.is_closed()
    assert client.is_closed()
    assert len(model._async_clients) == 0
    # Still usable: a new client is opened.
    assert (await model.agenerate(USER)).content == "ok"
    await model.aclose()


def test_close_and_sync_context_manager_close_sync_and_portal_clients(server):
    with make(server) as model:
        assert model.generate(USER).content == "ok"  # portal loop's async client
        sync_client = model.client
        assert (
            sync_client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "ok"
        )
        (portal_client,) = dict(model._async_clients._by_loop).values()
    assert sync_client.is_closed()
    assert portal_client.is_closed()


def test_base_model_close_is_a_no_op():
    model = Model("x")
    with model as same:
        assert same is model
    asyncio.run(model.aclose())


async def test_collected_model_closes_its_client(server):
    model = make(server)
    await model.agenerate(USER)
    client = model._async_client()
    del model
    gc.collect()
    for _ in range(50):
        await asyncio.sleep(0.01)
        if client.is_closed():
            break
    assert client.is_closed()


def test_client_closed_when_its_loop_shuts_down(server):
    model = make(server)
    clients = []

    async def use() -> None:
        await model.agenerate(USER)
        clients.append(model._async_client())

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        asyncio.run(use())
        asyncio.run(use())
        gc.collect()
    assert len(clients) == 2 and clients[0] is not clients[1]
    assert all(c.is_closed() for c in clients)


def test_client_of_a_loop_closed_by_hand_leaks_no_socket(server):
    model = make(server)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(model.agenerate(USER))
    loop.close()  # no shutdown_asyncgens: the shutdown hook cannot run
    del loop
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(model.agenerate(USER))  # a new loop's client: the closed loop's client is cleaned up
        model.close()
        gc.collect()
    unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not unclosed, [str(w.message) for w in unclosed]


def test_default_timeout_is_two_minutes_and_overridable(server):
    model = make(server)
    assert model.client.timeout.read == 120.0
    assert make(server, client_kwargs={"timeout": 3.0}).client.timeout == 3.0


async def test_dropped_connection_is_retried(server):
    server.add(Reply.drop(), "after the drop")
    model = make(server)
    assert (await model.agenerate(USER)).content == "after the drop"
    assert len(server.chat_requests) == 2
    await model.aclose()


async def test_cassette_closes_its_live_model(server, tmp_path):
    from codeloop.models.cassette import CassetteModel

    live = make(server)
    async with CassetteModel(tmp_path / "c.jsonl", live, mode="record") as cassette:
        assert (await cassette.agenerate(USER)).content == "ok"
        client = live._async_client()
    assert client.is_closed()
    with CassetteModel(tmp_path / "c.jsonl", mode="replay"):  # no live model: nothing to close
        pass
