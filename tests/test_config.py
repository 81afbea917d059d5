import pytest

from ttspilot.config import FALLBACK_ORDER, TIERS, config_from_flags
from ttspilot.server.cli import build_parser


def test_tier_table_matches_design():
    assert FALLBACK_ORDER == ("full", "trt_fp16", "jit_fp16", "jit", "fp16", "basic", "cpu")
    rows = {name: (t.load_trt, t.load_jit, t.fp16, t.trt_concurrent, t.device) for name, t in TIERS.items()}
    assert rows == {
        "full": (True, True, True, 2, "cuda"),
        "trt_fp16": (True, True, True, 1, "cuda"),
        "jit_fp16": (False, True, True, 1, "cuda"),
        "jit": (False, True, False, 1, "cuda"),
        "fp16": (False, False, True, 1, "cuda"),
        "basic": (False, False, False, 1, "cuda"),
        "cpu": (False, False, False, 1, "cpu"),
    }


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({}, "cpu"),
        ({"load_jit": True, "fp16": True}, "jit_fp16"),
        ({"load_trt": True, "load_jit": True, "fp16": True, "trt_concurrent": 2}, "full"),
        ({"device": "cuda"}, "basic"),
        ({"load_trt": True}, "custom"),
    ],
)
def test_flags_take_the_matching_tier_name(flags, expected):
    assert config_from_flags(**flags).tier == expected


def test_named_tier_wins_and_unknown_is_refused():
    assert config_from_flags("trt_fp16", load_jit=False).load_jit is True
    with pytest.raises(ValueError, match="unknown tier"):
        config_from_flags("turbo")
    with pytest.raises(ValueError, match="trt_concurrent"):
        config_from_flags(trt_concurrent=0)


@pytest.mark.parametrize("name", list(TIERS))
def test_cli_args_round_trip(name):
    assert TIERS[name].cli_args() == ["--tier", name]


def test_pool_shape_flags_override_the_tier_and_keep_its_name():
    config = config_from_flags("cpu", trt_concurrent=2, cpu_threads=1)
    assert (config.tier, config.trt_concurrent, config.cpu_threads, config.device) == ("cpu", 2, 1, "cpu")
    assert config_from_flags("full", cpu_threads=3).trt_concurrent == 2  # not given: the tier's own
    assert config_from_flags("basic", trt_concurrent=4).tier == "basic"
    for flags in ({"trt_concurrent": 0}, {"cpu_threads": 0}):
        with pytest.raises(ValueError, match="at least 1"):
            config_from_flags("cpu", **flags)


@pytest.mark.parametrize(
    ("tier", "flags", "args"),
    [
        ("cpu", {"trt_concurrent": 2, "cpu_threads": 1}, ["--tier", "cpu", "--trt_concurrent", "2", "--cpu_threads", "1"]),
        ("full", {"trt_concurrent": 4}, ["--tier", "full", "--trt_concurrent", "4"]),
        ("full", {"trt_concurrent": 2}, ["--tier", "full"]),  # the tier's own count needs no flag
        ("cpu", {"cpu_threads": 2}, ["--tier", "cpu", "--cpu_threads", "2"]),
    ],
)
def test_cli_args_reproduce_a_shaped_tier(tier, flags, args):
    config = config_from_flags(tier, **flags)
    assert config.cli_args() == args
    parsed = build_parser().parse_args(args)  # the server's own command line reads them back
    assert config_from_flags(parsed.tier, trt_concurrent=parsed.trt_concurrent, cpu_threads=parsed.cpu_threads) == config


def test_threads_per_session_splits_the_cores_on_the_cpu_only():
    assert TIERS["cpu"].threads_per_session(16) == 16
    assert config_from_flags("cpu", trt_concurrent=4).threads_per_session(16) == 4
    assert config_from_flags("cpu", trt_concurrent=4, cpu_threads=2).threads_per_session(16) == 2
    assert TIERS["full"].threads_per_session(16) == 16  # GPU sessions share the cores for their CPU work
