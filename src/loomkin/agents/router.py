"""The message router of a session: committed messages go to the mailboxes that follow them.

How this works and why:

* Messages are delivered from the log, not beside it: a ``MessageSent`` event is published on
  the bus only once it is committed (live), so a message an agent reads is always in the log.
* Delivery follows subscriptions: an agent's mailbox follows its own topic and its team's
  (from its ``AgentSpawned``), and the named topics it follows (``TopicSubscribed`` /
  ``TopicUnsubscribed``); a dissolved team's agents stop receiving anything. An agent never
  receives its own team or topic messages back.
* After a restart, what each agent was sent but had not read when the process stopped is
  delivered again (:meth:`MessageRouter.caught_up`): a direct message to its addressee, a team
  message to each member that was in the team when it was sent and did not send it. Whether a
  message was read is in the agent's memory (each transcript entry names the message it read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loomkin.bus import BusMessage, agent_topic, team_topic
from loomkin.core.events import (
    AgentSpawned,
    MessageSent,
    TeamDissolved,
    TopicSubscribed,
    TopicUnsubscribed,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from loomkin.agents.agent import Agent
    from loomkin.agents.directory import AgentDirectory
    from loomkin.bus import Bus
    from loomkin.core.events import RecordedEvent
    from loomkin.core.state import State
    from loomkin.ids import AgentId
    from loomkin.runtime.clock import Clock

__all__ = ["MessageRouter"]


class MessageRouter:
    """Delivery, redelivery and topics of one session (see the module docstring)."""

    def __init__(
        self, *, session_id: str, directory: AgentDirectory, bus: Bus, state: State, clock: Clock
    ) -> None:
        self._session_id = session_id
        self._directory = directory
        self._bus = bus
        self._state = state
        self._clock = clock
        self._subs: dict[AgentId, list[Callable[[], None]]] = {}
        self._topics: dict[tuple[AgentId, str], Callable[[], None]] = {}
        self._unread: list[tuple[MessageSent, list[Agent]]] = []
        """During a replay: each message with the agents it was delivered to."""

    # -- projection -------------------------------------------------------------------------------

    def apply(self, recorded: RecordedEvent, *, live: bool) -> None:
        event = recorded.event
        match event:
            case AgentSpawned(agent_id=agent_id):
                self._subscribe(agent_id)
            case MessageSent():
                if live:
                    self._deliver(event)
                else:
                    self._unread.append((event, self._recipients(event)))
            case TopicSubscribed(agent_id=aid, topic=topic):
                self._follow(aid, topic, follow=True)
            case TopicUnsubscribed(agent_id=aid, topic=topic):
                self._follow(aid, topic, follow=False)
            case TeamDissolved(team_id=team_id):
                for agent in self._directory.agents():
                    if agent.team_id == team_id:
                        self._unsubscribe(agent.agent_id)
            case _:
                pass

    def caught_up(self) -> None:
        """Deliver again what each agent was sent and had not read when the process stopped."""
        unread, self._unread = self._unread, []
        for event, recipients in unread:
            message = self._bus_message(event)
            for agent in recipients:
                if event.message_id not in agent.memory.read_messages:
                    agent.mailbox.deliver(message)

    def _recipients(self, event: MessageSent) -> list[Agent]:
        """Who was sent ``event`` when it was committed (topic messages are not redelivered)."""
        if event.to_agent is not None:
            agent = self._directory.get(event.to_agent)
            return [] if agent is None else [agent]
        if event.to_team is not None:
            return [
                a
                for a in self._directory.agents()
                if a.team_id == event.to_team and a.agent_id != event.from_agent
            ]
        return []

    # -- subscriptions ----------------------------------------------------------------------------

    def _subscribe(self, agent_id: AgentId) -> None:
        agent = self._directory.get(agent_id)
        if agent is None:
            return
        self._subs[agent_id] = [
            self._bus.subscribe(agent_topic(agent_id), agent.mailbox),
            self._bus.subscribe(team_topic(agent.team_id), _NotFromSelf(agent)),
        ]

    def _unsubscribe(self, agent_id: AgentId) -> None:
        for unsubscribe in self._subs.pop(agent_id, []):
            unsubscribe()
        for key in [k for k in self._topics if k[0] == agent_id]:
            self._topics.pop(key)()

    def topic_key(self, name: str) -> str:
        """The bus topic of the session-wide topic ``name`` (topics never cross sessions)."""
        return f"topic:{self._session_id}:{name}"

    def topics_of(self, agent_id: str) -> list[str]:
        """Names of the topics ``agent_id`` follows."""
        prefix = self.topic_key("")
        return sorted(key.removeprefix(prefix) for aid, key in self._topics if aid == agent_id)

    def _follow(self, agent_id: AgentId, name: str, *, follow: bool) -> None:
        key = self.topic_key(name)
        leave = self._topics.pop((agent_id, key), None)
        if leave is not None:
            leave()
        agent = self._directory.get(agent_id)
        if follow and agent is not None and agent_id in self._subs:
            self._topics[(agent_id, key)] = self._bus.subscribe(key, _NotFromSelf(agent))

    # -- delivery ---------------------------------------------------------------------------------

    def _deliver(self, event: MessageSent) -> None:
        message = self._bus_message(event)
        if event.to_agent is not None:
            self._bus.publish(agent_topic(event.to_agent), message)
        elif event.to_team is not None:
            self._bus.publish(team_topic(event.to_team), message)
        elif event.topic is not None:
            self._bus.publish(event.topic, message)

    def _bus_message(self, event: MessageSent) -> BusMessage:
        data = event.data
        team = self._state.get_team(event.from_team) if event.from_team else None
        if team is not None:  # the recipient's model reads team names, not ids
            data = {**(data or {}), "from_team_name": team.name}
        return BusMessage(
            message_id=event.message_id,
            msg_type=event.msg_type,
            tier=event.tier,
            content=event.content,
            from_agent=event.from_agent,
            from_name=event.from_name,
            from_team=event.from_team,
            to_agent=event.to_agent,
            to_team=event.to_team,
            topic=event.topic,
            data=data,
            sent_at=self._clock.now(),
        )


class _NotFromSelf:
    """An agent's subscription to its team's (or a topic's) messages, minus its own sends."""

    __slots__ = ("_agent",)

    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    def deliver(self, message: BusMessage) -> None:
        if message.from_agent != self._agent.agent_id:
            self._agent.mailbox.deliver(message)
