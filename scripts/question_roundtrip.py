"""Round trip of a question an agent on a worker asks the user, over NATS (informal measure).

One worker (in this process) hosts a session whose agent asks the user ``N`` questions, one
after the other; a ``ClusterClient`` answers each at once. A round trip is the time from the
question's event (``QuestionAsked``) to the answer's (``QuestionAnswered``), both stamped by
the worker: the commit to Postgres, the forward on the session's question subject, the
client's reply, and the answer's append. Needs the test NATS server and Postgres.

    uv run python scripts/question_roundtrip.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from typing import TYPE_CHECKING

from loomkin.agents import SessionSettings
from loomkin.cluster import ClusterClient, HostOptions, QuestionAsk, Worker
from loomkin.core.chat import ToolResultMessage, UserMessage
from loomkin.core.events import QuestionAnswered, QuestionAsked
from loomkin.testing.cluster import nats_test_url, scratch_cluster
from loomkin.testing.conformance import postgres_test_url, scratch_postgres_schema
from loomkin.testing.models import Call, FunctionModel, Reply
from loomkin.tools.permissions import PermissionPolicy

if TYPE_CHECKING:
    from collections.abc import Callable

    from loomkin.llm.model import Model, ModelRequest


def asker(total: int) -> Callable[[ModelRequest], Reply]:
    """A model that asks the user ``total`` questions, each once the previous one is answered."""

    def step(request: ModelRequest) -> Reply:
        answers = sum(
            isinstance(m, UserMessage) and m.text.startswith("[Answer from")
            for m in request.messages
        )
        asked = sum(
            isinstance(m, ToolResultMessage) and m.name == "ask_question" for m in request.messages
        )
        if not any(isinstance(m, UserMessage) for m in request.messages) or answers >= total:
            return Reply(text="Done.")
        if asked > answers:
            return Reply(text="Waiting for the user.")
        question = f"Question {asked + 1}?"
        return Reply(tool_calls=[Call("ask_question", {"to": "user", "question": question})])

    return step


async def main(total: int) -> None:
    """Run the session on a scratch cluster and schema; print the round trips' figures."""
    bus = nats_test_url()
    server = postgres_test_url()
    async with scratch_cluster(bus) as cluster, scratch_postgres_schema(server) as schema:
        store = f"{server}{'&' if '?' in server else '?'}schema={schema}"

        def factory(_role: object, name: str) -> Model:
            return FunctionModel(asker(total), name=f"scripted:{name}")

        options = HostOptions(
            store_url=store,
            ttl_s=10.0,
            model_factory=factory,
            settings=SessionSettings(
                bootstrap_orienter=False, question_timeout_s=60.0, max_iterations=10 * total
            ),
            approve_all=PermissionPolicy(auto_approve=frozenset({"*"})),
        )
        worker = Worker(bus, options, cluster=cluster)
        await worker.start()
        try:
            async with await ClusterClient.connect(bus, store, cluster=cluster) as client:

                async def answer(ask: QuestionAsk) -> str:
                    return f"answer to {ask.question}"

                with tempfile.TemporaryDirectory() as project:
                    session_id, _ = await client.start_session(project, "Ask away.")
                    sub = await client.answer_questions(session_id, answer)
                    await client.wait_done(session_id)
                    await sub.unsubscribe()
                history = await client.history(session_id)
        finally:
            await worker.close()
    asked = {
        r.event.question_id: r.recorded_at for r in history if isinstance(r.event, QuestionAsked)
    }
    trips = [
        (r.recorded_at - asked[r.event.question_id]) * 1000
        for r in history
        if isinstance(r.event, QuestionAnswered)
    ]
    trips.sort()
    print(
        f"{len(trips)} questions: round trip median {statistics.median(trips):.1f} ms, "
        f"p90 {trips[int(len(trips) * 0.9) - 1]:.1f} ms, min {trips[0]:.1f} ms, "
        f"max {trips[-1]:.1f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
