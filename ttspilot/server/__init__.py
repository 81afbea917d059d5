"""HTTP server: app factory, routes per API family, and the one synthesis pipeline."""

from ttspilot.server.app import create_app

__all__ = ["create_app"]
