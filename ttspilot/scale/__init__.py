"""Scale-out on Ray Serve: one self-tuning server per replica (see docs/architecture.md, "Scale-out on Ray").

Needs `ray[serve]` (requirements-ray.txt); the launcher imports only `cli.py`, which imports Ray only for --ray.
"""
