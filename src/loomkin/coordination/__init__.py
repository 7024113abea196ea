"""Coordination services: conflicts, rebalancing, decisions and knowledge."""
