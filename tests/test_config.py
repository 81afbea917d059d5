import pytest

from ttspilot.config import FALLBACK_ORDER, TIERS, config_from_flags


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
