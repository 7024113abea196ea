"""The web app and HTTP API: watch and steer sessions in the browser, or from a script."""

from loomkin.api.app import create_app
from loomkin.api.server import is_loopback, serve

__all__ = ["create_app", "is_loopback", "serve"]
