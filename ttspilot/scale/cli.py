"""start_optimized_server.py --ray: serve through Ray Serve, one self-tuning replica per GPU (or per share of one).

The flags are defined here without importing Ray, so the launcher's --help works on the default install; Ray is
imported only when --ray is given. Without --ray_address a local Ray instance is started for this launch and ends
with it; with one, the application joins that cluster (every node needs ttspilot and the model folder) and is
deleted from it when the launcher stops.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import threading
from typing import Any

from ttspilot.config import API_KEY_ENV
from ttspilot.launcher.child import REPO_ROOT
from ttspilot.scale.serve_config import APP_NAME

log = logging.getLogger("ttspilot.launcher")


def add_ray_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Ray Serve (requirements-ray.txt)")
    group.add_argument("--ray", action="store_true",
                       help="serve through Ray Serve: each replica probes its own GPU, plans, loads and runs the canary")
    scale = group.add_mutually_exclusive_group()
    scale.add_argument("--replicas", type=_positive, default=1, help="fixed number of replicas (default: 1)")
    scale.add_argument("--autoscale", type=_replica_range, metavar="MIN:MAX",
                       help="autoscale between MIN and MAX replicas on ongoing requests per replica")
    group.add_argument("--gpus_per_replica", type=float, metavar="F",
                       help="GPUs Ray pins to each replica; below 1 several replicas share a GPU (small models) "
                       "(default: 1 when this machine has a GPU, else 0)")
    group.add_argument("--cpus_per_replica", type=float, default=1.0, metavar="F",
                       help="CPUs Ray reserves per replica; a replica sizes its thread pool to them (default: 1)")
    group.add_argument("--target_ongoing_requests", type=float, metavar="N",
                       help="with --autoscale: requests per replica Ray aims at (default: Ray's, 2)")
    group.add_argument("--ray_address", metavar="ADDR",
                       help='an existing Ray cluster ("auto", "ray://head:10001"); default: a local one for this launch')


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _replica_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition(":")
    try:
        bounds = int(low), int(high)
    except ValueError:
        bounds = ()
    if not sep or not bounds or bounds[0] < 0 or bounds[1] < 1 or bounds[0] > bounds[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: write MIN:MAX with 0 <= MIN <= MAX and MAX >= 1, e.g. 1:4")
    return bounds


def scale_args(args: argparse.Namespace, passthrough: list[str], gpus_here: int) -> dict[str, Any]:
    """The Serve application's arguments (serve_app.ScaleArgs) for these launcher flags; `gpus_here` (the probe's
    GPU count) decides the default --gpus_per_replica."""
    gpus = args.gpus_per_replica if args.gpus_per_replica is not None else (1.0 if gpus_here else 0.0)
    values: dict[str, Any] = {
        "model_dir": str(args.model_dir) if args.model_dir else None,
        "server_flags": [*passthrough, *(["--no_canary"] if args.skip_test else [])],
        "gpus_per_replica": gpus,
        "cpus_per_replica": args.cpus_per_replica,
        "objective": args.objective,
    }
    if args.health_interval > 0:
        values["health_check_period_s"] = args.health_interval
    if args.autoscale:
        values["min_replicas"], values["max_replicas"] = args.autoscale
        if args.target_ongoing_requests is not None:
            values["target_ongoing_requests"] = args.target_ongoing_requests
    else:
        values["replicas"] = args.replicas
    return values


def refused_with_ray(args: argparse.Namespace, passthrough: list[str]) -> str | None:
    """Why these flags cannot go with --ray, in one line; None when they can."""
    if importlib.util.find_spec("ray") is None:
        return "--ray needs Ray Serve, which is not installed: pip install -r requirements-ray.txt"
    if any(arg.split("=")[0] == "--grpc_port" for arg in passthrough):
        return ("--grpc_port with --ray: Ray's gRPC proxy calls deployment methods with bare request messages, without "
                "the call context our services answer through (metadata, deadlines, cancellation); run gRPC on "
                "single-process servers")
    if args.target_ongoing_requests is not None and not args.autoscale:
        return "--target_ongoing_requests needs --autoscale"
    for flag in ("benchmark", "precompile", "simulate_gpu"):
        if getattr(args, flag):
            return f"--{flag} with --ray: each replica plans for its own GPU; run it without --ray on a node"
    return None


def print_serve_config(args: argparse.Namespace, passthrough: list[str], gpus_here: int) -> None:
    """--ray --dry_run: the Serve config this launch would deploy, for `serve deploy` or KubeRay's serveConfigV2."""
    from ttspilot.scale.serve_config import serve_config_text

    print(serve_config_text(scale_args(args, passthrough, gpus_here), args.host, args.port), end="")


def serve_on_ray(args: argparse.Namespace, passthrough: list[str], gpus_here: int) -> int:
    """Deploy the application, wait for SIGINT/SIGTERM, take it down; 1 when it could not be deployed."""
    import ray
    from ray import serve

    from ttspilot.scale.cluster import drop_board
    from ttspilot.scale.serve_app import ScaleArgs, build

    application = ScaleArgs.model_validate(scale_args(args, passthrough, gpus_here))
    local = args.ray_address is None
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))} if local else {}
    if args.api_key:
        env[API_KEY_ENV] = args.api_key  # the replicas' environment, not their arguments
    ray.init(address=args.ray_address, runtime_env={"env_vars": env}, log_to_driver=True)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
        options = application.deployment_options()
        log.info("ray: %s, %s per replica, admission %d", _replicas(options),
                 f"{application.gpus_per_replica:g} GPU", options["max_ongoing_requests"])
        try:
            serve.run(build(application), name=APP_NAME, route_prefix="/")
        except RuntimeError as error:
            log.error("ray: the application did not come up: %s", _deployment_failure(serve) or error)
            return 1
        log.info("ray: serving on http://%s:%d through Ray Serve's proxy; GET /cluster_info lists the replicas",
                 args.host, args.port)
        stop.wait()
        log.info("ray: stopping")
        return 0
    finally:
        if local:
            serve.shutdown()
            ray.shutdown()
        else:
            serve.delete(APP_NAME)
            drop_board(APP_NAME)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _deployment_failure(serve: Any) -> str | None:
    """The last line of what Ray's status says about the failed deployment (a replica's ReplicaStartError)."""
    application = serve.status().applications.get(APP_NAME)
    messages = [deployment.message for deployment in application.deployments.values()] if application else []
    lines = [line.strip() for message in messages for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else None


def _replicas(options: dict[str, Any]) -> str:
    autoscaling = options.get("autoscaling_config")
    if autoscaling is None:
        return f"{options['num_replicas']} replica(s)"
    return f"{autoscaling['min_replicas']}-{autoscaling['max_replicas']} replicas (autoscaling)"
