"""Turning HTTP failures into Loomkin's provider errors, the same way for every vendor."""

from __future__ import annotations

from loomkin.errors import ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited

__all__ = ["broken_stream", "connection_error", "status_error", "timeout_error"]

_MAX_DETAIL = 300

_KEY_HINTS = {401: "the API key was rejected", 403: "the API key may not use this model"}


def status_error(
    model_name: str, status: int, detail: str, *, key_env: str | None
) -> ProviderError:
    """Return the error for an HTTP ``status`` answered to a call on ``model_name``.

    429 and 529 (overloaded) are rate limits, 408 a timeout, 5xx unavailability — all
    transient. Every other status is permanent (a bad request, a bad key, an unknown model).
    """
    prefix = f"{model_name}: HTTP {status}"
    if status in (429, 529):
        return RateLimited(f"{prefix} (rate limited or overloaded): {detail}", status=status)
    if status == 408:
        return ProviderTimeout(f"{prefix} (request timeout): {detail}")
    if status >= 500:
        return ProviderUnavailable(f"{prefix} (server error): {detail}", status=status)
    hint = _KEY_HINTS.get(status)
    if hint is not None:
        where = (
            f"check {key_env}"
            if key_env
            else "no key was sent: name the variable holding this server's key with --api-key-env"
        )
        return ProviderError(f"{prefix}: {hint} ({where}): {detail}", status=status)
    if status == 404:
        return ProviderError(
            f"{prefix} (not found: is the model name right?): {detail}", status=status
        )
    return ProviderError(f"{prefix}: {detail}", status=status)


def timeout_error(model_name: str, timeout: float) -> ProviderTimeout:
    """Return the error for a call on ``model_name`` that got no answer in ``timeout`` s."""
    return ProviderTimeout(f"{model_name}: no answer within {timeout:g} s")


def connection_error(model_name: str, base_url: str) -> ProviderUnavailable:
    """Return the error for a call on ``model_name`` that could not reach ``base_url``."""
    return ProviderUnavailable(f"{model_name}: cannot reach {base_url} (is the server running?)")


def broken_stream(model_name: str, error: BaseException) -> ProviderUnavailable:
    """Return the error for a stream on ``model_name`` that broke with ``error`` mid-way.

    A server-sent event that is not JSON, bytes that are not UTF-8, a connection cut or an
    error event mid-stream: transient, since the next try may well go through.
    """
    detail = " ".join(str(error).split())
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 1] + "…"
    return ProviderUnavailable(f"{model_name}: broken stream: {type(error).__name__}: {detail}")
