"""Where models run: the device setting's decision, and the CPU fallback when CUDA cannot be used.

This machine has no GPU, so CTranslate2's device count is injected (``cuda_device_count``)
and CUDA loads are made to fail the way CTranslate2 fails without its libraries. The real
GPU path (a model loaded with device="cuda") is not exercised by these tests.
"""

from __future__ import annotations

import pytest

from conftest import SAMPLE, run_cli
from fakes import FakeBackend, FakeDecoding, fake_factory
from transcriber.config import DECLARED, parse_setting
from transcriber.engine.models import ModelPool, choose_device, is_cuda_trouble
from transcriber.errors import ConfigError
from transcriber.jobs import JobOptions, JobStatus

FLOAT16_GPU = {"float32", "float16", "int8_float16", "int8", "bfloat16"}
OLD_GPU = {"float32", "int8_float16", "int8"}  # compute capability below 7: no fast float16
MISSING_CUBLAS = "Library libcublas.so.12 is not found or cannot be loaded"


@pytest.mark.parametrize(
    "setting, gpus, types, device, compute_type, reason",
    [
        ("cpu", 1, FLOAT16_GPU, "cpu", "int8", "the device setting is cpu"),
        ("auto", 0, set(), "cpu", "int8", "auto: no CUDA GPU found"),
        ("auto", 1, FLOAT16_GPU, "cuda", "float16", "auto: 1 CUDA GPU found, float16"),
        ("auto", 2, OLD_GPU, "cuda", "int8_float16", "auto: 2 CUDA GPUs found, int8_float16"),
        ("cuda", 1, FLOAT16_GPU, "cuda", "float16", "the device setting is cuda: 1 CUDA GPU found, float16"),
        ("cuda", 0, set(), "cpu", "int8", "no CUDA GPU is usable"),
    ],
)
def test_the_device_follows_the_setting_and_the_gpus_found(setting, gpus, types, device, compute_type, reason):
    choice = choose_device(setting, cuda_device_count=lambda: gpus, cuda_compute_types=lambda: types)
    assert (choice.device, choice.compute_type) == (device, compute_type)
    assert reason in choice.reason


def test_the_cpu_setting_never_asks_for_gpus():
    def no_asking():
        raise AssertionError("the cpu setting must not look for CUDA")

    assert choose_device("cpu", cuda_device_count=no_asking, cuda_compute_types=no_asking).device == "cpu"


def test_the_device_setting_is_declared_and_validated():
    assert DECLARED["device"].default() == "auto"
    assert parse_setting("device", " CUDA ") == "cuda"
    with pytest.raises(ConfigError, match="choose one of auto, cpu, cuda"):
        parse_setting("device", "gpu")


def test_cuda_trouble_is_told_apart_from_a_broken_model():
    assert is_cuda_trouble(RuntimeError(MISSING_CUBLAS))
    assert is_cuda_trouble(RuntimeError("CUDA failed with error out of memory"))
    assert not is_cuda_trouble(RuntimeError("Variable 'decoder/layer_3/self_attention/linear_0/weight' has an invalid payload size"))


class CudaLessLoader:
    """Loads like CTranslate2 on a machine whose CUDA libraries are missing: device="cuda" raises."""

    def __init__(self, message: str = MISSING_CUBLAS):
        self.message = message
        self.calls = []

    def __call__(self, settings):
        self.calls.append((settings.device, settings.compute_type))
        if settings.device == "cuda":
            raise RuntimeError(self.message)
        return object()


def gpu_pool(model_cache, loader, device="auto"):
    return ModelPool(model_cache, workers=1, idle_seconds=0, loader=loader, device=device,
                     cuda_device_count=lambda: 1, cuda_compute_types=lambda: FLOAT16_GPU)


def test_a_model_falls_back_to_the_cpu_when_cuda_libraries_are_missing(model_cache):
    loader = CudaLessLoader()
    pool = gpu_pool(model_cache, loader)
    settings, model = pool.acquire("tiny.en")
    assert model is not None
    assert (settings.device, settings.compute_type) == ("cpu", "int8")
    assert loader.calls == [("cuda", "float16"), ("cpu", "int8")]
    assert MISSING_CUBLAS in pool.device_note(settings)
    assert "CUDA failed" in pool.device_choice().reason
    pool.release(settings)
    settings, _ = pool.acquire("tiny.en")  # CUDA is not tried again in this process
    assert loader.calls[-1] == ("cpu", "int8") and len(loader.calls) == 3
    pool.release(settings)


def test_out_of_memory_on_the_gpu_falls_back_too(model_cache):
    pool = gpu_pool(model_cache, CudaLessLoader("CUDA failed with error out of memory"))
    settings, _ = pool.acquire("tiny.en")
    assert settings.device == "cpu" and "out of memory" in pool.device_note(settings)
    pool.release(settings)


def test_a_broken_model_is_not_retried_on_the_cpu(model_cache):
    calls = []

    def loader(settings):
        calls.append(settings.device)
        raise RuntimeError("Unable to open file 'model.bin'")

    pool = gpu_pool(model_cache, loader)
    with pytest.raises(Exception, match="could not be loaded"):
        pool.acquire("tiny.en")
    assert calls == ["cuda"]


def test_the_pool_keys_models_by_device_and_compute_type(model_cache):
    loads = []
    pool = ModelPool(model_cache, workers=1, idle_seconds=3600, loader=lambda s: loads.append(s) or object(),
                     device="cuda", cuda_device_count=lambda: 1, cuda_compute_types=lambda: FLOAT16_GPU)
    on_gpu, _ = pool.acquire("tiny.en")
    pool.release(on_gpu)
    pool.device = "cpu"
    on_cpu, _ = pool.acquire("tiny.en")
    pool.release(on_cpu)
    assert (on_gpu.device, on_gpu.compute_type, on_cpu.device, on_cpu.compute_type) == ("cuda", "float16", "cpu", "int8")
    assert on_gpu != on_cpu and len(loads) == 2 and set(pool.loaded()) == {on_gpu, on_cpu}


def test_a_job_that_fell_back_to_the_cpu_says_why_in_its_warning(make_engine, model_cache):
    pool = gpu_pool(model_cache, CudaLessLoader())
    engine = make_engine(models=pool, backend_factory=fake_factory(step=1.0))
    engine.store.settings.set("device", "cuda")
    engine.add([str(SAMPLE)], user="ann", options=JobOptions(model="tiny.en"))
    [job] = engine.run_until_idle()
    assert job.status is JobStatus.COMPLETED
    assert job.warning.startswith("Ran on the CPU") and MISSING_CUBLAS in job.warning


def test_a_job_asking_for_cuda_without_a_gpu_says_so(make_engine, model_cache):
    pool = ModelPool(model_cache, workers=1, idle_seconds=0, loader=lambda s: object(), cuda_device_count=lambda: 0)
    engine = make_engine(models=pool, backend_factory=fake_factory(step=1.0))
    engine.store.settings.set("device", "cuda")
    engine.add([str(SAMPLE)], user="ann", options=JobOptions(model="tiny.en"))
    [job] = engine.run_until_idle()
    assert job.status is JobStatus.COMPLETED and "no CUDA GPU is usable" in job.warning


def test_on_auto_a_job_on_a_machine_without_gpu_has_no_warning(make_engine, model_cache):
    pool = ModelPool(model_cache, workers=1, idle_seconds=0, loader=lambda s: object(), cuda_device_count=lambda: 0)
    engine = make_engine(models=pool, backend_factory=fake_factory(step=1.0))
    engine.add([str(SAMPLE)], user="ann", options=JobOptions(model="tiny.en"))
    [job] = engine.run_until_idle()
    assert job.status is JobStatus.COMPLETED and job.warning is None


def test_config_sets_the_device_from_the_command_line(data_dir):
    result = run_cli("config", "set", "device", "gpu", data_dir=data_dir)
    assert result.returncode == 1 and "choose one of auto, cpu, cuda" in result.stderr and "Traceback" not in result.stderr
    run_cli("config", "set", "device", "cpu", data_dir=data_dir, check=True)
    assert run_cli("config", "get", "device", data_dir=data_dir, check=True).stdout.strip() == "cpu"


def test_self_test_says_which_device_it_used_and_why(tmp_path):
    import re

    import ctranslate2

    result = run_cli("self-test", data_dir=tmp_path / "unused")
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("device:")]
    if ctranslate2.get_cuda_device_count() == 0:
        assert line == "device: cpu, int8 (auto: no CUDA GPU found)"
    else:  # a machine with a GPU: the float16 or int8_float16 path
        assert re.fullmatch(r"device: cuda, (float16|int8_float16) \(auto: \d+ CUDA GPUs? found, \w+\)", line), line


class GpuRunsOutOfMemory(FakeDecoding):
    """Decodes like the fake, but on the GPU the second segment fails as CTranslate2 does when memory runs out."""

    def __iter__(self):
        for number, segment in enumerate(super().__iter__()):
            if number == 1:
                raise RuntimeError("CUDA failed with error out of memory")
            yield segment


class DeviceBackend(FakeBackend):
    """A fake backend whose model is the device it was loaded on (the loader below returns it)."""

    def decode(self, request, on_window=None):
        self.requests.append(request)
        kind = GpuRunsOutOfMemory if self.model == "cuda" else FakeDecoding
        return kind(request, on_window, self.step, self.delay, self.gate)


def test_a_gpu_out_of_memory_mid_job_continues_on_the_cpu_from_the_last_segment(make_engine, model_cache):
    loads = []
    pool = ModelPool(model_cache, workers=1, idle_seconds=0, loader=lambda s: loads.append(s.device) or s.device,
                     cuda_device_count=lambda: 1, cuda_compute_types=lambda: FLOAT16_GPU)
    engine = make_engine(models=pool, backend_factory=lambda model: DeviceBackend(model, step=1.0))
    engine.add([str(SAMPLE)], user="ann", options=JobOptions(model="tiny.en"))
    [job] = engine.run_until_idle()
    assert job.status is JobStatus.COMPLETED and loads == ["cuda", "cpu"]
    assert "out of memory" in job.warning and job.warning.startswith("Ran on the CPU")
    segments = engine.store.transcripts.segments(job.id)
    assert [segment.start for segment in segments] == [float(n) for n in range(len(segments))]  # none lost, none twice
    assert segments[-1].end == pytest.approx(job.duration_seconds)
