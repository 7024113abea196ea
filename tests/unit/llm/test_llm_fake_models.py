import asyncio

import pytest

from loomkin.core.chat import SystemMessage, ToolCall, UserMessage
from loomkin.errors import ProviderError, RateLimited
from loomkin.llm.model import (
    ModelRequest,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageReport,
    complete,
)
from loomkin.testing.models import Call, Fail, FunctionModel, Reply, ScriptedModel


def _request(text: str = "hi", system: str = "You are the coder.") -> ModelRequest:
    return ModelRequest(messages=(SystemMessage(text=system), UserMessage(text=text)))


async def _events(model: ScriptedModel | FunctionModel, request: ModelRequest) -> list[StreamEvent]:
    return [event async for event in model.stream(request)]


async def test_scripted_model_streams_text_in_chunks_then_usage_and_end() -> None:
    model = ScriptedModel([Reply(text="abcdefg", input_tokens=5, output_tokens=2)], chunk_chars=3)
    events = await _events(model, _request())
    assert events == [
        TextDelta(text="abc"),
        TextDelta(text="def"),
        TextDelta(text="g"),
        UsageReport(input_tokens=5, output_tokens=2),
        StreamEnd(stop_reason="stop"),
    ]


async def test_scripted_model_tool_calls_have_deterministic_ids() -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[Call("read", {"path": "a.py"}), Call("bad", "{oops")]),
            Reply(tool_calls=[Call("ls")]),
        ]
    )
    first = await complete(model, _request())
    second = await complete(model, _request())
    assert first.tool_calls == (
        ToolCall(call_id="call_1", name="read", arguments='{"path":"a.py"}'),
        ToolCall(call_id="call_2", name="bad", arguments="{oops"),
    )
    assert first.stop_reason == "tool_calls"
    assert second.tool_calls == (ToolCall(call_id="call_3", name="ls", arguments="{}"),)
    assert model.remaining == 0


async def test_scripted_model_records_requests_and_estimates_usage() -> None:
    model = ScriptedModel([Reply(text="12345678")])
    request = _request(text="x" * 20, system="")
    response = await complete(model, request)
    assert model.requests == [request]
    assert (response.input_tokens, response.output_tokens) == (5, 2)


async def test_scripted_model_fail_step_raises_before_any_event() -> None:
    model = ScriptedModel([Fail(RateLimited("slow down")), Reply(text="ok")])
    stream = model.stream(_request())
    with pytest.raises(RateLimited, match="slow down"):
        await anext(stream)
    assert (await complete(model, _request())).text == "ok"


async def test_running_out_of_script_names_the_model() -> None:
    model = ScriptedModel([Reply(text="one")], name="scripted:coder")
    await complete(model, _request())
    with pytest.raises(ProviderError, match=r"'scripted:coder' ran out of script: call 2"):
        await complete(model, _request())


@pytest.mark.looptime
async def test_chunk_delay_and_latency_use_virtual_time() -> None:
    model = ScriptedModel([Reply(text="aabbcc")], chunk_chars=2, chunk_delay_s=0.5, latency_s=2)
    loop = asyncio.get_running_loop()
    start = loop.time()
    seen: list[tuple[float, str]] = []
    async for event in model.stream(_request()):
        if isinstance(event, TextDelta):
            seen.append((loop.time() - start, event.text))
    assert seen == [(2.0, "aa"), (2.5, "bb"), (3.0, "cc")]


@pytest.mark.looptime
async def test_stream_can_be_abandoned_between_chunks() -> None:
    model = ScriptedModel([Reply(text="abcdef")], chunk_chars=1, chunk_delay_s=1)
    stream = model.stream(_request())
    got = [await anext(stream), await anext(stream)]
    await stream.aclose()
    assert got == [TextDelta(text="a"), TextDelta(text="b")]


async def test_function_model_routes_on_the_system_prompt() -> None:
    def route(request: ModelRequest) -> Reply:
        system = request.messages[0]
        assert isinstance(system, SystemMessage)
        return Reply(text="lead here" if "lead" in system.text else "coder here")

    model = FunctionModel(route)
    assert (await complete(model, _request(system="You are the lead."))).text == "lead here"
    assert (await complete(model, _request(system="You are a coder."))).text == "coder here"
    assert len(model.requests) == 2
    assert model.name == "function:test"


async def test_function_model_accepts_async_functions_and_fail() -> None:
    async def fn(request: ModelRequest) -> Reply | Fail:
        await asyncio.sleep(0)
        return Fail(ProviderError("nope"))

    with pytest.raises(ProviderError, match="nope"):
        await complete(FunctionModel(fn, name="function:x"), _request())


def test_chunk_chars_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_chars"):
        ScriptedModel([], chunk_chars=0)


async def test_tool_call_deltas_carry_index() -> None:
    model = ScriptedModel([Reply(text="t", tool_calls=[Call("a"), Call("b")])])
    deltas = [e for e in await _events(model, _request()) if isinstance(e, ToolCallDelta)]
    assert [d.index for d in deltas] == [0, 1]
