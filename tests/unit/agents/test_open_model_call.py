"""The memory's open model call: started and not ended, whatever the order of its attempts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from loomkin.agents.memory import AgentMemory
from loomkin.core.events import (
    Event,
    LoopFinished,
    ModelCallCompleted,
    ModelCallFailed,
    ModelCallStarted,
)
from loomkin.ids import AgentId, CallId, SessionId

S, A = SessionId("s"), AgentId("a")

# One step of a journal: start call n, fail its attempt (retried or not), complete it, end
# the loop.
Step = tuple[str, int]
steps = st.lists(
    st.tuples(
        st.sampled_from(["start", "retry", "fail", "complete", "loop_end"]), st.integers(0, 2)
    ),
    max_size=30,
)


def event_of(kind: str, n: int, attempt: int) -> Event:
    call_id = CallId(f"mc_{n}")
    match kind:
        case "start":
            return ModelCallStarted(
                session_id=S, agent_id=A, call_id=call_id, iteration=n + 1, model="m", request={}
            )
        case "retry" | "fail":
            return ModelCallFailed(
                session_id=S,
                agent_id=A,
                call_id=call_id,
                error="x",
                attempt=attempt,
                will_retry=kind == "retry",
            )
        case "complete":
            return ModelCallCompleted(session_id=S, agent_id=A, call_id=call_id, text="")
        case _:
            return LoopFinished(session_id=S, agent_id=A, outcome="final", text="", iterations=0)


@given(steps)
def test_the_open_call_is_the_last_started_and_not_ended(journal: list[Step]) -> None:
    memory = AgentMemory(agent_id=A)
    open_call: str | None = None
    failures = 0
    for kind, n in journal:
        event = event_of(kind, n, failures + 1)
        memory.apply(event)
        # The model: one call at a time; only the open call's events change it.
        if kind == "start":
            open_call, failures = f"mc_{n}", 0
        elif kind == "loop_end":
            open_call = None
        elif open_call == f"mc_{n}":
            if kind == "retry":
                failures += 1
            else:
                open_call = None
        got = memory.open_model_call
        assert (got.call_id if got else None) == open_call
        if got is not None:
            assert got.failures == failures
            assert got.attempt_running == (failures == 0)
            assert memory.iterations_done() == memory.iteration - 1
        else:
            assert memory.iterations_done() == memory.iteration
