"""The one retry policy for model calls.

How this works and why:

* Adapters never retry (the SDKs' own retries are off), so there is exactly one policy,
  and every retry is visible, two ways: the stream yields a
  :class:`~loomkin.llm.model.RetryNotice` (attempt, delay, error) before each backoff, so
  the consumer of *that call* sees its retries in order (the agent loop journals them; a
  model is shared by many agents, so a per-model callback could not say whose call it
  was); and ``on_retry(attempt, error, delay)``, given at construction, is called at the
  same moment for observers of every call (metrics, a log line).
* A call is retried only when it failed *before its first event* with a transient
  :class:`~loomkin.errors.ProviderError` (429, 5xx, 529, timeouts, connection errors).
  Once an event has been yielded the caller has seen part of an answer, so a later error
  is raised as-is: retrying would repeat text the caller already consumed. A notice from a
  wrapped model counts as an event too, so nested wrappers never multiply the retries.
* Backoff is exponential with jitter (1 s, 2 s, 4 s … plus up to ``jitter`` of that), or
  the server's ``Retry-After`` when it sent one. Sleeps go through ``asyncio.sleep`` so
  tests run them in virtual time.
"""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import random
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loomkin.errors import ProviderError
from loomkin.llm.model import RetryNotice

if TYPE_CHECKING:
    from collections.abc import Mapping

    from loomkin.llm.model import Model, ModelRequest, StreamEvent

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "OnRetry",
    "RetryPolicy",
    "RetryingModel",
    "retry_after",
    "stream_with_retries",
]

OnRetry = Callable[[int, ProviderError, float], Awaitable[None] | None]
"""Called as ``on_retry(attempt, error, delay_s)`` before sleeping; ``attempt`` counts from 1."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How transient provider errors are retried."""

    max_retries: int = 3
    """Retries after the first attempt (0 disables retrying)."""
    base_delay_s: float = 1.0
    """Delay before the first retry."""
    factor: float = 2.0
    """Each further retry waits this many times longer."""
    max_delay_s: float = 30.0
    """Cap on the computed backoff."""
    jitter: float = 0.1
    """Up to this fraction of the delay is added at random, so clients do not stampede."""
    max_retry_after_s: float = 120.0
    """Cap on a server's ``Retry-After``."""
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)
    """Source of jitter in ``[0, 1)`` (inject a constant for exact delays in tests)."""

    def delay(self, attempt: int, error: ProviderError) -> float:
        """Return the wait before retry number ``attempt`` (1-based) after ``error``."""
        hinted = retry_after(error)
        if hinted is not None:
            return min(hinted, self.max_retry_after_s)
        backoff = min(self.base_delay_s * self.factor ** (attempt - 1), self.max_delay_s)
        return backoff * (1 + self.jitter * self.random())


DEFAULT_RETRY_POLICY = RetryPolicy()


async def stream_with_retries(
    model: Model,
    request: ModelRequest,
    *,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    on_retry: OnRetry | None = None,
) -> AsyncIterator[StreamEvent]:
    """Stream ``request`` on ``model``, retrying transient failures before the first event.

    Before each retry it calls ``on_retry`` and yields a
    :class:`~loomkin.llm.model.RetryNotice`, then sleeps; a consumer that closes the stream
    at the notice cancels the retry.

    Raises:
        ProviderError: A permanent error, a transient one after ``policy.max_retries``
            retries (with a note saying so), or any error after the first event.
    """
    attempt = 0
    while True:
        stream = model.stream(request)
        try:
            try:
                first = await anext(stream)
            except StopAsyncIteration:
                return
            except ProviderError as error:
                if not error.transient:
                    raise
                if attempt >= policy.max_retries:
                    error.add_note(f"gave up after {attempt} retries")
                    raise
                attempt += 1
                failure, delay = error, policy.delay(attempt, error)
            else:
                yield first
                async for event in stream:
                    yield event
                return
        finally:
            await _aclose(stream)
        await _notify(on_retry, attempt, failure, delay)
        yield RetryNotice(attempt=attempt, delay_s=delay, error=failure)
        await asyncio.sleep(delay)


class RetryingModel:
    """A :class:`~loomkin.llm.model.Model` that applies a :class:`RetryPolicy` to another.

    Args:
        model: The model to wrap.
        policy: The retry policy.
        on_retry: Called before each backoff (see :data:`OnRetry`).
    """

    def __init__(
        self,
        model: Model,
        *,
        policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        on_retry: OnRetry | None = None,
    ) -> None:
        self.inner = model
        self.policy = policy
        self.on_retry = on_retry

    @property
    def name(self) -> str:
        return self.inner.name

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        stream = stream_with_retries(
            self.inner, request, policy=self.policy, on_retry=self.on_retry
        )
        try:
            async for event in stream:
                yield event
        finally:
            await _aclose(stream)


def retry_after(error: ProviderError) -> float | None:
    """Return the server's ``Retry-After`` (seconds) for ``error``, if it sent one.

    Adapters raise provider errors ``from`` the SDK's status error, whose response carries
    the headers (``retry-after-ms``, ``retry-after`` as seconds or an HTTP date).
    """
    headers = _status_headers(error.__cause__)
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # An HTTP date is wall-clock by nature; compare it with the wall clock.
    return max(0.0, when.timestamp() - time.time())


def _status_headers(cause: BaseException | None) -> Mapping[str, str] | None:
    """Return the response headers of an SDK status error, or ``None`` for anything else.

    Only SDKs this process has already imported are asked: one that was never imported
    cannot have raised ``cause``, and importing it here would put seconds of SDK import
    back on every start-up (see :mod:`loomkin.llm.registry`).
    """
    if "openai" in sys.modules:
        import openai

        if isinstance(cause, openai.APIStatusError):
            return cause.response.headers
    if "anthropic" in sys.modules:
        import anthropic

        if isinstance(cause, anthropic.APIStatusError):
            return cause.response.headers
    return None


async def _notify(
    on_retry: OnRetry | None, attempt: int, error: ProviderError, delay: float
) -> None:
    if on_retry is None:
        return
    result = on_retry(attempt, error, delay)
    if inspect.isawaitable(result):
        await result


async def _aclose(stream: AsyncIterator[StreamEvent]) -> None:
    if isinstance(stream, AsyncGenerator):
        await stream.aclose()
