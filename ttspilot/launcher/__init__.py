"""Launchers: start the best tier that really works, supervise it, fall back when it breaks."""
