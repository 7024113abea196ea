"""Activation: an agent works while there is something to do, under the session's supervisor.

:class:`Activator` is the session's implementation of the agent's ``Activator`` port: it runs
:func:`activation` for an agent under the supervisor (one at a time per agent, grouped by
session so that a session can wait for its own agents). A crash is journaled
(``AgentCrashed`` + ``AgentRestarted``) and the activation restarts from the journaled state;
after too many crashes in the window the agent is marked crashed for good and its task is
released for someone else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.agents.inbox import has_work
from loomkin.agents.loop import LoopOutcome, run_loop
from loomkin.agents.modelcall import close_interrupted
from loomkin.core.events import (
    AgentCrashed,
    AgentFailedPermanently,
    AgentRestarted,
    AssistantReplied,
    LoopFinished,
)

if TYPE_CHECKING:
    from loomkin.agents.agent import Agent
    from loomkin.core.events import Event
    from loomkin.runtime.eventlog import EventLog
    from loomkin.runtime.supervisor import Supervisor

__all__ = ["Activator", "activation"]


class Activator:
    """Runs agents' activations under a supervisor (see the module docstring)."""

    def __init__(self, *, supervisor: Supervisor, log: EventLog, group: str) -> None:
        self._supervisor = supervisor
        self._log = log
        self._group = group

    def activate(self, agent: Agent) -> None:
        """Run the agent's activation (a no-op if it already runs or the runtime stops)."""
        if self._supervisor.group_stopped(self._group):
            # Shutting down (or the session was taken over by another process): a message
            # committed while the log flushes stays in the mailbox, unread, like any message
            # left at a stop (not an error to log on every close).
            return

        async def on_crash(_key: str, exc: BaseException, restarts: int) -> None:
            await self._log.append(
                AgentCrashed(
                    session_id=agent.session_id,
                    agent_id=agent.agent_id,
                    error=f"{type(exc).__name__}: {exc}",
                    restarts_in_window=restarts,
                ),
                AgentRestarted(
                    session_id=agent.session_id, agent_id=agent.agent_id, attempt=restarts
                ),
            )

        async def on_give_up(_key: str, exc: BaseException) -> None:
            task_id = agent.memory.task_id
            failed = [
                AgentFailedPermanently(
                    session_id=agent.session_id,
                    agent_id=agent.agent_id,
                    error=f"{type(exc).__name__}: {exc}",
                    released_task_id=task_id,
                ),
                *agent.status_change("crashed", "gave up after repeated crashes"),
            ]
            if task_id is None:
                await self._log.append(*failed)
            else:  # one batch: never "failed for good" while still holding the task
                await agent.ctx.tasks.release(
                    task_id, reason=f"agent {agent.name!r} failed permanently", also=failed
                )

        self._supervisor.run(
            f"agent:{agent.agent_id}",
            lambda: activation(agent),
            on_crash=on_crash,
            on_give_up=on_give_up,
            group=self._group,
        )


async def activation(agent: Agent) -> None:
    """Work until there is nothing left, the agent pauses, or it is cancelled."""
    # A model call the process stopped in ends first, before a control waiting on the lane
    # (a pause, a cancel) is applied: the feed shows it retried, not running for ever.
    await close_interrupted(agent)
    while True:
        if await _apply_idle_controls(agent):
            if _arrived_meanwhile(agent):
                continue
            return
        if agent.memory.status == "paused":
            return
        if not has_work(agent):
            await agent.set_status("idle")
            if _arrived_meanwhile(agent):
                continue
            return
        outcome = await run_loop(agent)
        await _finish_loop(agent, outcome)
        # Go round again so that controls which arrived while the loop was finishing (a
        # resume right after a pause) are applied: the wake-up they caused was a no-op
        # because this activation was still running. After a provider failure or a cancel
        # the transcript may still end with input, so has_work() stays true: only new
        # messages or controls justify another round (else a failing provider would be
        # called forever, or the cancelled work carried on).
        if outcome.outcome in ("error", "cancelled") and not (
            len(agent.mailbox) > 0 or agent.poll_controls()
        ):
            return


def _arrived_meanwhile(agent: Agent) -> bool:
    """True when a control (or, unless paused, a message) arrived as the activation ended.

    Its wake-up was a no-op, because this activation was still running.
    """
    if agent.poll_controls():
        return True
    return agent.memory.status != "paused" and len(agent.mailbox) > 0


async def _apply_idle_controls(agent: Agent) -> bool:
    """Apply controls that arrive while no loop runs; True when the agent must stop."""
    agent.take_control_commands()
    resume = agent.controls.take_resume()
    if resume is not None:
        await agent.apply_resume(resume, "idle", working=has_work(agent))
    directive = agent.controls.at("idle") if agent.controls.pending() else None
    if directive is None:
        return False
    if directive.action == "pause":
        await agent.enter_paused(directive.command, "idle", reason=directive.reason)
    else:
        await agent.apply_cancel(directive.command, "idle")
    return True


async def _finish_loop(agent: Agent, outcome: LoopOutcome) -> None:
    task_id = agent.memory.task_id
    # Read before LoopFinished is applied: it ends the loop's service to the user.
    to_user = agent.memory.serving_user or agent.role.name == "concierge"
    # One batch: the loop's end, the task it settles and the reply it owes the user.
    events: list[Event] = [
        LoopFinished(
            session_id=agent.session_id,
            agent_id=agent.agent_id,
            outcome=outcome.outcome,
            text=outcome.text,
            iterations=agent.memory.iteration,
            task_id=task_id,
        )
    ]
    if to_user and outcome.outcome == "final" and outcome.text.strip():
        events.append(
            AssistantReplied(
                session_id=agent.session_id,
                agent_id=agent.agent_id,
                agent_name=agent.name,
                text=outcome.text,
            )
        )
    if task_id is None or outcome.outcome in ("paused", "budget", "cancelled"):
        await agent.emit(*events)
    else:
        await agent.ctx.tasks.settle_after_loop(
            agent, task_id, outcome.outcome, outcome.text, also=events
        )
