import asyncio

import httpx2
import openai
import pytest

from loomkin.core.chat import UserMessage
from loomkin.errors import ProviderError, ProviderTimeout, RateLimited
from loomkin.llm.model import ModelRequest, RetryNotice, StreamEnd, TextDelta, complete
from loomkin.llm.retry import RetryingModel, RetryPolicy, retry_after, stream_with_retries
from loomkin.testing.models import Fail, Reply, ScriptedModel

REQUEST = ModelRequest(messages=(UserMessage(text="hi"),))


def test_backoff_is_exponential_with_bounded_jitter() -> None:
    policy = RetryPolicy(random=lambda: 0.5, jitter=0.1)
    err = ProviderError("x", transient=True)
    assert [policy.delay(n, err) for n in (1, 2, 3, 4)] == [1.05, 2.1, 4.2, 8.4]
    capped = RetryPolicy(random=lambda: 0.0, max_delay_s=3)
    assert capped.delay(5, err) == 3


def status_error(headers: dict[str, str]) -> RateLimited:
    response = httpx2.Response(
        429, headers=headers, request=httpx2.Request("POST", "http://127.0.0.1/v1")
    )
    cause = openai.RateLimitError("slow", response=response, body=None)
    try:
        raise RateLimited("slow") from cause
    except RateLimited as err:
        return err


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_header(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(status_error(headers)) == expected


def test_retry_after_is_capped_and_used_without_jitter() -> None:
    policy = RetryPolicy(random=lambda: 0.9, max_retry_after_s=10)
    assert policy.delay(1, status_error({"retry-after": "2"})) == 2.0
    assert policy.delay(1, status_error({"retry-after": "600"})) == 10.0
    assert retry_after(RateLimited("no cause")) is None


@pytest.mark.looptime
async def test_transient_failures_are_retried_and_reported() -> None:
    model = ScriptedModel(
        [Fail(RateLimited("429")), Fail(ProviderTimeout("slow")), Reply(text="ok")]
    )
    calls: list[tuple[int, str, float]] = []

    async def on_retry(attempt: int, error: ProviderError, delay: float) -> None:
        calls.append((attempt, str(error), delay))

    loop = asyncio.get_running_loop()
    start = loop.time()
    m = RetryingModel(model, policy=RetryPolicy(random=lambda: 0.0), on_retry=on_retry)
    response = await complete(m, REQUEST)
    assert response.text == "ok"
    assert calls == [(1, "429", 1.0), (2, "slow", 2.0)]
    assert loop.time() - start == pytest.approx(3.0)
    assert len(model.requests) == 3
    assert m.name == "scripted:demo"


async def test_permanent_errors_are_not_retried() -> None:
    model = ScriptedModel([Fail(ProviderError("bad request", status=400)), Reply(text="ok")])
    with pytest.raises(ProviderError, match="bad request"):
        await complete(RetryingModel(model), REQUEST)
    assert model.remaining == 1


@pytest.mark.looptime
async def test_gives_up_after_max_retries() -> None:
    model = ScriptedModel([Fail(RateLimited(f"try {n}")) for n in range(3)])
    with pytest.raises(RateLimited, match="try 2") as info:
        await complete(RetryingModel(model, policy=RetryPolicy(max_retries=2)), REQUEST)
    assert info.value.__notes__ == ["gave up after 2 retries"]


async def test_zero_retries_raises_at_once() -> None:
    model = ScriptedModel([Fail(RateLimited("429"))])
    with pytest.raises(RateLimited):
        await complete(RetryingModel(model, policy=RetryPolicy(max_retries=0)), REQUEST)


async def test_closing_early_closes_the_inner_stream() -> None:
    model = ScriptedModel([Reply(text="abc")], chunk_chars=1)
    stream = stream_with_retries(model, REQUEST)
    assert await anext(stream) == TextDelta(text="a")
    await stream.aclose()  # type: ignore[attr-defined]


async def test_empty_stream_ends_quietly() -> None:
    class Empty:
        name = "empty:model"

        async def stream(self, request: ModelRequest):  # type: ignore[no-untyped-def]
            return
            yield

    assert [e async for e in stream_with_retries(Empty(), REQUEST)] == []


@pytest.mark.looptime
async def test_each_retry_is_announced_in_the_calls_own_stream() -> None:
    first, second = RateLimited("429"), ProviderTimeout("slow")
    model = ScriptedModel([Fail(first), Fail(second), Reply(text="ok")])
    m = RetryingModel(model, policy=RetryPolicy(random=lambda: 0.0))
    events = [e async for e in m.stream(REQUEST)]
    assert events[:2] == [
        RetryNotice(attempt=1, delay_s=1.0, error=first),
        RetryNotice(attempt=2, delay_s=2.0, error=second),
    ]
    assert isinstance(events[-1], StreamEnd)
    assert TextDelta(text="ok") in events


@pytest.mark.looptime
async def test_notices_do_not_reach_the_answer() -> None:
    model = ScriptedModel([Fail(RateLimited("429")), Reply(text="ok")])
    response = await complete(RetryingModel(model), REQUEST)
    assert (response.text, response.complete) == ("ok", True)


@pytest.mark.looptime
async def test_closing_the_stream_at_a_notice_cancels_the_retry() -> None:
    model = ScriptedModel([Fail(RateLimited("429")), Reply(text="never")])
    loop = asyncio.get_running_loop()
    start = loop.time()
    stream = RetryingModel(model).stream(REQUEST)
    notice = await anext(stream)
    assert isinstance(notice, RetryNotice)
    await stream.aclose()  # type: ignore[attr-defined]
    assert loop.time() == start  # no backoff slept
    assert len(model.requests) == 1
    assert model.remaining == 1


@pytest.mark.looptime
async def test_nested_wrappers_do_not_multiply_retries() -> None:
    model = ScriptedModel([Fail(RateLimited(f"try {n}")) for n in range(10)])
    inner = RetryingModel(model, policy=RetryPolicy(max_retries=1))
    outer = RetryingModel(inner, policy=RetryPolicy(max_retries=3))
    with pytest.raises(RateLimited, match="try 1"):
        await complete(outer, REQUEST)
    assert len(model.requests) == 2


@pytest.mark.looptime
async def test_callback_and_notice_agree() -> None:
    model = ScriptedModel([Fail(RateLimited("429")), Reply(text="ok")])
    seen: list[tuple[int, float]] = []
    m = RetryingModel(
        model,
        policy=RetryPolicy(random=lambda: 0.0),
        on_retry=lambda attempt, _error, delay: seen.append((attempt, delay)),
    )
    notices = [e async for e in m.stream(REQUEST) if isinstance(e, RetryNotice)]
    assert seen == [(n.attempt, n.delay_s) for n in notices] == [(1, 1.0)]


def test_retry_after_ignores_errors_of_other_kinds() -> None:
    error = RateLimited("slow")
    error.__cause__ = ValueError("not an SDK error")
    assert retry_after(error) is None
