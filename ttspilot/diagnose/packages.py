"""Python package combinations known to break TTS deployments, read from installed metadata.

- NumPy 2 with onnxruntime < 1.19: the wheel was compiled against NumPy 1.x and its import dies
  with "AttributeError: _ARRAY_API not found" (onnxruntime 1.19 is the first built for NumPy 2).
- onnxruntime and onnxruntime-gpu (or any two onnxruntime-* builds) installed together: they
  share the `onnxruntime` folder, the last one installed wins, and uninstalling one leaves the
  other broken. Typically the CPU build silently replaces the GPU one.
- transformers: CosyVoice 2/3 load Qwen2 through it. Before 4.37 there is no Qwen2
  ("KeyError: 'qwen2'"); upstream pins 4.51.3, and other versions print warnings such as
  "Sliding Window Attention is enabled but not implemented for `sdpa`" or break outright. With vllm
  installed on a line upstream documents, that line's transformers is the one to have (vllm >= 0.11:
  4.57.1), so this check and the vllm pair check never ask for different versions.
"""

from __future__ import annotations

from ttspilot.diagnose.libraries import OrtBuild, normalize, ort_distributions, version_tuple
from ttspilot.diagnose.result import Finding, failed, passed, skipped, warned
from ttspilot.engines.cosyvoice.vllm_pairs import DOCUMENTED_PAIRS, release

ORT_NUMPY2 = (1, 19)
TRANSFORMERS_QWEN2 = (4, 37)
TRANSFORMERS_PIN = "4.51.3"  # FunAudioLLM/CosyVoice requirements.txt


def check_numpy(dists: dict[str, str]) -> Finding:
    numpy = dists.get("numpy")
    if numpy is None:
        return failed("NumPy is not installed", "pip install -r requirements.txt")
    runtimes = ort_distributions(dists)
    data = {"numpy": numpy, "onnxruntime": runtimes}
    if version_tuple(numpy) < (2,):
        return passed(f"NumPy {numpy} (1.x): works with every onnxruntime", **data)
    old = {name: version for name, version in runtimes.items() if version_tuple(version) < ORT_NUMPY2}
    if old:
        names = ", ".join(f"{name} {version}" for name, version in old.items())
        upgrade = " ".join(f'"{name}>=1.19"' for name in old)
        return failed(
            f"NumPy {numpy} with {names}: compiled against NumPy 1.x, its import fails with "
            "'AttributeError: _ARRAY_API not found'",
            f'pip install "numpy<2" (or upgrade: pip install -U {upgrade})',
            **data,
        )
    shown = ", ".join(f"{name} {version}" for name, version in runtimes.items()) or "no onnxruntime"
    return passed(f"NumPy {numpy} with {shown}: compatible (onnxruntime >= 1.19 supports NumPy 2)", **data)


def check_onnxruntime_dists(dists: dict[str, str], build: OrtBuild | None, *, gpu_present: bool) -> Finding:
    runtimes = ort_distributions(dists)
    data = {"distributions": runtimes, "package_folder": build.package_name if build else None}
    want = "onnxruntime-gpu" if gpu_present else "onnxruntime"
    if not runtimes:
        return failed("no onnxruntime distribution is installed", f"pip install {want}", **data)
    listed = ", ".join(f"{name} {version}" for name, version in runtimes.items())
    if len(runtimes) > 1:
        return failed(
            f"{listed} installed together: they overwrite each other's onnxruntime folder"
            + (f" (it now holds {build.package_name} {build.version})" if build else ""),
            f"pip uninstall -y {' '.join(runtimes)} && pip install {want}",
            **data,
        )
    (name, version), = runtimes.items()
    if build is not None and (normalize(build.package_name) != name or build.version != version):
        return failed(
            f"{name} {version} is installed, but the onnxruntime folder holds {build.package_name} {build.version} "
            "(left over from another build)",
            f"pip uninstall -y {name} && pip install --force-reinstall {want}",
            **data,
        )
    return passed(f"{listed}: the only onnxruntime build installed", **data)


def check_transformers(dists: dict[str, str], *, engine: str = "piper") -> Finding:
    version = dists.get("transformers")
    vllm = dists.get("vllm")
    line = next((line for line in DOCUMENTED_PAIRS if vllm and line.holds(vllm)), None)
    want = line.transformers if line else TRANSFORMERS_PIN
    whose = f"upstream pairs with vllm {vllm}" if line else "CosyVoice pins"
    pin = f'pip install "transformers=={want}"'
    if version is None:
        return skipped("transformers not installed (only CosyVoice 2/3 need it)",
                       f"nothing to fix for Piper; for CosyVoice 2/3: {pin}")
    data = {"version": version, "pinned_upstream": want}
    if version_tuple(version) < TRANSFORMERS_QWEN2:
        text = f"transformers {version} has no Qwen2: CosyVoice 2/3 fail with KeyError: 'qwen2'"
        return failed(text, pin, **data) if engine == "cosyvoice" else warned(text, pin, **data)
    if release(version)[:3] == release(want):
        return passed(f"transformers {version}: the version {whose}", **data)
    major = "a major version upstream has not tested; " if version_tuple(version)[0] >= 5 else ""
    return warned(
        f"transformers {version}: {major}the version {whose} is {want}; other versions print warnings such as "
        "'Sliding Window Attention is enabled but not implemented for `sdpa`' or fail on removed APIs",
        pin, **data,
    )
