"""Provider-neutral model interface, the provider adapters, retries and prices."""

from loomkin.llm.model import (
    Model,
    ModelRequest,
    ModelResponse,
    ResponseBuilder,
    RetryNotice,
    StopReason,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolSchema,
    UsageReport,
    complete,
)
from loomkin.llm.pricing import Price, PriceTable
from loomkin.llm.profiles import EndpointProfile, profile_for
from loomkin.llm.registry import make_model, parse_model_spec
from loomkin.llm.retry import OnRetry, RetryingModel, RetryPolicy, stream_with_retries

__all__ = [
    "EndpointProfile",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "OnRetry",
    "Price",
    "PriceTable",
    "ResponseBuilder",
    "RetryNotice",
    "RetryPolicy",
    "RetryingModel",
    "StopReason",
    "StreamEnd",
    "StreamEvent",
    "TextDelta",
    "ToolCallDelta",
    "ToolSchema",
    "UsageReport",
    "complete",
    "make_model",
    "parse_model_spec",
    "profile_for",
    "stream_with_retries",
]
