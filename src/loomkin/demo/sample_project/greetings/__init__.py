"""greetings: say hello."""

from greetings.core import greet

__all__ = ["greet"]
