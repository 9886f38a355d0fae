"""Batch sizes from the device's memory, and `splatgen bench generate`'s rows for every generator."""

from __future__ import annotations

import json

import pytest
import torch

from splatgen.core.generator import GenerationSettings, batching
from splatgen.core.generator.batching import BatchSizer, free_memory_bytes


def test_free_memory_is_what_the_system_says_is_available():
    free = free_memory_bytes(torch.device("cpu"))
    with open("/proc/meminfo") as f:
        available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    assert 0 < free and abs(free - available) < 256 << 20   # read twice a moment apart


def test_the_batch_follows_the_free_memory_up_to_the_ceiling(monkeypatch):
    sizer = BatchSizer(torch.device("cpu"), estimate_bytes=100 << 20, ceiling=32)
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: 1 << 30)   # 1 GiB free
    assert sizer.size() == int((1 << 30) * batching.FRACTION // (100 << 20)) == 5
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: 64 << 30)
    assert sizer.size() == 32
    monkeypatch.setattr(batching, "free_memory_bytes", lambda device: 10 << 20)   # less than one sample
    assert sizer.size() == 1


def test_a_request_is_split_into_batches_the_memory_allows(shipped_generator, example_image, monkeypatch):
    gen = shipped_generator
    seen = []
    real = gen.decode

    def decode(features, latents, skip_weight):
        seen.append(latents.shape[0])
        return real(features, latents, skip_weight)

    monkeypatch.setattr(gen, "decode", decode)
    monkeypatch.setattr(batching, "free_memory_bytes",
                        lambda device: int(3 * gen.sample_bytes_estimate / batching.FRACTION))
    assert gen.max_batch == 3
    samples = gen.generate(example_image, GenerationSettings(steps=2, num_samples=7, seed=5))
    assert seen == [3, 3, 1] and [s.seed for s in samples] == list(range(5, 12))


def test_bench_generate_times_every_shipped_generator(tmp_path, run_splatgen):
    result = run_splatgen("bench", "generate", "--device", "cpu", "--steps", "2", "--repeat", "1", "--counts", "3",
                          "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (path,) = tmp_path.glob("generate-*.json")
    data = json.loads(path.read_text())
    assert data["models"] == ["diffusion", "regressor"] and data["counts"] == [3]
    rows = {(r["model"], r["what"]): r for r in data["results"]}
    assert {what for model, what in rows if model == "regressor"} == {"load", "1 sample, one pass"}
    diffusion = {what: r for (model, what), r in rows.items() if model == "diffusion"}
    assert set(diffusion) == {"load", "1 sample, 2 DDIM steps", "1 sample, defaults (20 dpm steps)",
                              "3 samples, 2 DDIM steps"}
    many = diffusion["3 samples, 2 DDIM steps"]
    assert many["samples"] == 3 and many["samples_per_s"] == pytest.approx(3 / (many["median_ms"] / 1e3))
    assert 1 <= many["batch"] <= 32
    # twenty steps take longer than two: the defaults row really ran the model's own settings
    assert diffusion["1 sample, defaults (20 dpm steps)"]["median_ms"] > diffusion["1 sample, 2 DDIM steps"]["median_ms"]
    assert "--counts 3" in data["command"] and "gpu_busy_fraction" not in many
