"""The web app and HTTP API: watch and steer sessions in the browser, or from a script."""

from loomkin.api.access import generate_token
from loomkin.api.app import create_app
from loomkin.api.cluster_view import ClusterView
from loomkin.api.launch import LaunchPolicy, resolve_roots
from loomkin.api.server import is_loopback, listen, serve

__all__ = [
    "ClusterView",
    "LaunchPolicy",
    "create_app",
    "generate_token",
    "is_loopback",
    "listen",
    "resolve_roots",
    "serve",
]
