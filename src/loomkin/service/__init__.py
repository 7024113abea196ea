"""The public runtime: open a store, open sessions, talk to and control agents."""

from loomkin.service.runtime import Loomkin, ModelFactory
from loomkin.service.session import AgentInfo, Session, Summary

__all__ = ["AgentInfo", "Loomkin", "ModelFactory", "Session", "Summary"]
