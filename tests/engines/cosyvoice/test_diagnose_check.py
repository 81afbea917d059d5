"""diagnose_gpu.py --cosyvoice_root with the CosyVoice environment: PASS with the call and its audio, or the reason."""

from __future__ import annotations

import pytest

from tests.diagnose.test_cosyvoice_check import diagnose
from tests.engines.cosyvoice.tiny_models import trees_for

pytestmark = [pytest.mark.integration, pytest.mark.cosyvoice]


@pytest.mark.slow
@pytest.mark.parametrize("tree", trees_for(2)[-1:])
def test_a_tree_passes_with_the_call_and_its_audio(cosyvoice_python, tree):
    code, check = diagnose(cosyvoice_python, "--cosyvoice_root", str(tree))
    assert code == 0 and check["status"] == "PASS", check
    data = check["data"]
    assert data["model_class"] == "CosyVoice2" and data["sample_rate"] == 24000
    assert data["audio_s"] > 0 and data["call_s"] > 0
    assert f"{data['audio_s']:.2f} s of audio in {data['call_s']:.2f} s" in check["detail"]


def test_a_folder_that_is_no_checkout_fails_with_the_clone_command(cosyvoice_python, tmp_path):
    code, check = diagnose(cosyvoice_python, "--cosyvoice_root", str(tmp_path))
    assert code == 1 and check["status"] == "FAIL"
    assert "is not a CosyVoice checkout" in check["detail"] and "git clone --recursive" in check["fix"]
