"""Scale-out on Ray Serve: one self-tuning server per replica (see docs/architecture.md, "Scale-out on Ray").

Needs `ray[serve]` (requirements-ray.txt); nothing else in ttspilot imports this package.
"""
