"""What ``POST /api/sessions`` may open: projects under the server's roots, its own servers.

How this works and why: a session's agents read, write and run commands in its project, and
its model calls go to its model server with a key. Over HTTP both are chosen by whoever
holds the token, so both are bounded by what the user chose when starting the server:

* the project must be under one of the server's roots (``--project`` and every
  ``--allow-root DIR``), after resolving ``..`` and symlinks; ``/`` or ``$HOME`` is refused
  unless the user made it a root;
* a ``base_url`` in the request must be one the server was started with (``--base-url``);
  it then gets the server's ``--api-key-env`` key. Without one, the project's
  ``loomkin.toml`` chooses (the user's file, in a directory the user allowed), then the
  server's own ``--model``/``--base-url``;
* the rest (permissions, limits, budgets) always comes from the project's ``loomkin.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from loomkin.errors import PolicyRefused, UserError
from loomkin.service.config import load_config

__all__ = ["LaunchPolicy", "NotAllowed", "resolve_roots"]


class NotAllowed(PolicyRefused):
    """The server was not started to allow this (an HTTP 403)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelChoice:
    """The model a new session gets and where its key comes from."""

    model: str | None
    """``None``: the project's ``[model] default`` (the facade reads it)."""
    base_url: str | None
    api_key_env: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchPolicy:
    """The server's bounds on new sessions."""

    roots: tuple[Path, ...] = ()
    """Resolved directories new sessions may be opened under (empty: none may)."""
    model: str | None = None
    """The server's ``--model``: used when neither the request nor loomkin.toml names one."""
    base_url: str | None = None
    """The server's ``--base-url``: the only one a request may name."""
    api_key_env: str | None = None
    """The server's ``--api-key-env``: the key variable for :attr:`base_url`."""
    _urls: frozenset[str] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        urls = frozenset({_normal_url(self.base_url)} if self.base_url else ())
        object.__setattr__(self, "_urls", urls)

    def project(self, text: str) -> Path:
        """Resolve a project path from a request; it must lie under a root (blocking I/O).

        Raises:
            UserError: the path is not absolute or cannot be resolved.
            NotAllowed: it lies outside every root.
        """
        if "\x00" in text:
            raise UserError("project: the path contains a NUL byte")
        path = Path(text)
        if not path.is_absolute():
            raise UserError(f"project: give an absolute path, got {_shown(text)!r}")
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError) as exc:
            raise UserError(f"project: cannot resolve {_shown(text)!r}: {exc}") from None
        if not self.roots:
            raise NotAllowed(
                "this server opens no new sessions: start it with --allow-root DIR to let it "
                "open sessions on projects under DIR"
            )
        if any(resolved == root or resolved.is_relative_to(root) for root in self.roots):
            return resolved
        allowed = ", ".join(str(root) for root in self.roots)
        raise NotAllowed(
            f"project {_shown(str(resolved))!r} is outside the directories this server may "
            f"open sessions in ({allowed}); start it with --allow-root DIR to add one"
        )

    def model_choice(self, root: Path, model: str | None, base_url: str | None) -> ModelChoice:
        """The model of a new session on ``root`` (blocking I/O: reads loomkin.toml).

        Raises:
            NotAllowed: ``base_url`` is not the server's own.
            ConfigError: the project's loomkin.toml is invalid.
        """
        if base_url is not None:
            if _normal_url(base_url) not in self._urls:
                raise NotAllowed(
                    f"base_url {_shown(base_url)!r} refused: a session opened over HTTP may "
                    "only use the model server this server was started with (--base-url)"
                )
            return ModelChoice(
                model=model or self.model, base_url=self.base_url, api_key_env=self.api_key_env
            )
        if model is None:
            config = load_config(root)
            if config.model.default is None and self.model is not None:
                return ModelChoice(
                    model=self.model, base_url=self.base_url, api_key_env=self.api_key_env
                )
        return ModelChoice(model=model, base_url=None, api_key_env=None)


def resolve_roots(roots: tuple[str | Path, ...]) -> tuple[Path, ...]:
    """The roots as resolved directories, without repeats (blocking I/O).

    Raises:
        UserError: a root is not an existing directory.
    """
    resolved: list[Path] = []
    for root in roots:
        try:
            path = Path(root).expanduser().resolve()
            is_dir = path.is_dir()
        except (OSError, RuntimeError) as exc:
            raise UserError(f"--allow-root {_shown(str(root))!r}: {exc}") from None
        if not is_dir:
            raise UserError(f"--allow-root {_shown(str(root))!r} is not a directory")
        if path not in resolved:
            resolved.append(path)
    return tuple(resolved)


def _normal_url(url: str) -> str:
    return url.strip().rstrip("/").lower()


def _shown(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[: limit // 2]}…{text[-limit // 2 :]}"
