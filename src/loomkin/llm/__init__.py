"""Provider-neutral model interface and the provider adapters."""

from loomkin.llm.model import (
    Model,
    ModelRequest,
    ModelResponse,
    ResponseBuilder,
    StopReason,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolSchema,
    UsageReport,
    complete,
)

__all__ = [
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ResponseBuilder",
    "StopReason",
    "StreamEnd",
    "StreamEvent",
    "TextDelta",
    "ToolCallDelta",
    "ToolSchema",
    "UsageReport",
    "complete",
]
