"""Fakes and helpers shipped for tests, the demo and the benchmarks."""

from loomkin.testing.models import Call, Fail, FunctionModel, Reply, ScriptedModel, ScriptStep

__all__ = ["Call", "Fail", "FunctionModel", "Reply", "ScriptStep", "ScriptedModel"]
