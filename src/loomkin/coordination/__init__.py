"""Coordination services: conflicts, rebalancing, collective decisions and knowledge.

Each service is a projection of the event log plus a policy; it reaches agents only by
appending events (messages are delivered by the session once committed). The session wires
them up (``loomkin.agents.coordination``) and the agents' tools call them.
"""

from loomkin.coordination.base import COORDINATION_ROLES, Context, Member, MessageFactory, Roster
from loomkin.coordination.conflicts import WRITE_TOOLS, ConflictDetector
from loomkin.coordination.knowledge import Knowledge, Route
from loomkin.coordination.rebalancer import Finding, Rebalancer, RebalancerSettings, Watcher
from loomkin.coordination.relevance import THRESHOLD, Profile, Topic, score
from loomkin.coordination.votes import VoteBook, expertise, tally, weight

__all__ = [
    "COORDINATION_ROLES",
    "THRESHOLD",
    "WRITE_TOOLS",
    "ConflictDetector",
    "Context",
    "Finding",
    "Knowledge",
    "Member",
    "MessageFactory",
    "Profile",
    "Rebalancer",
    "RebalancerSettings",
    "Roster",
    "Route",
    "Topic",
    "VoteBook",
    "Watcher",
    "expertise",
    "score",
    "tally",
    "weight",
]
