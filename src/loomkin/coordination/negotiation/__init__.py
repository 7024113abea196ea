"""Negotiation of assignments (SPEC §3.9): an assignee accepts, declines or counter-proposes.

* :mod:`.records` — one negotiation as the log describes it, and the settings.
* :mod:`.policy` — how the scheduler's policy resolves an objection (pure).
* :mod:`.texts` — what the assignee and the assigner read.
* :mod:`.book` — the projection, the commands (respond, resolve), the windows' timers, and
  the gate the task service asks to open a negotiation on every assignment.
"""

from loomkin.coordination.negotiation.book import NegotiationBook
from loomkin.coordination.negotiation.records import (
    Negotiation,
    NegotiationSettings,
    Objection,
    Resolution,
)

__all__ = ["Negotiation", "NegotiationBook", "NegotiationSettings", "Objection", "Resolution"]
