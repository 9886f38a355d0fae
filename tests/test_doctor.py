"""``splatgen doctor`` and the renderer's fallback when gsplat's CUDA code cannot load."""

from __future__ import annotations

import logging
import sys
import types

import torch

from splatgen.core import render as render_mod


def test_doctor_says_what_this_machine_uses(run_splatgen):
    r = run_splatgen("doctor")
    assert r.returncode == 0, r.stderr
    found = {line.split("  ")[0]: line for line in r.stdout.splitlines()}
    assert {"python", "torch", "device", "gsplat", "headless OpenGL", "renderer", "ffmpeg", "shipped models"} <= set(found)
    expected = render_mod.choose_backend()
    assert found["renderer"].split()[-1] == expected
    if not torch.cuda.is_available():
        assert "no CUDA device" in found["device"] and "not used" in found["gsplat"]
    assert "diffusion" in found["shipped models"]


def test_a_broken_gsplat_falls_back_to_the_torch_renderer_with_one_line(monkeypatch, caplog):
    """A CUDA machine whose gsplat CUDA code did not build: every choice is the torch renderer, one
    warning line says why, and doctor reports it."""
    fake_backend = types.ModuleType("gsplat.cuda._backend")
    fake_backend._C = None  # what gsplat leaves when its JIT build fails
    monkeypatch.setitem(sys.modules, "gsplat.cuda._backend", fake_backend)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "Simulated GPU")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    render_mod.gsplat_available.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="splatgen.render"):
            assert render_mod.choose_backend("cuda") == "torch"
            assert render_mod.choose_backend("cuda", differentiable=True) == "torch"
            assert render_mod.choose_backend() != "gsplat"
        warnings = [r for r in caplog.records if "gsplat cannot render here" in r.getMessage()]
        assert len(warnings) == 1 and "torch renderer" in warnings[0].getMessage()   # once, not per call
        from splatgen.core.commands.doctor import checks

        found = dict(checks())
        assert found["device"] == "cuda: Simulated GPU (1 GPU)" and "NOT usable" in found["gsplat"]
    finally:
        render_mod.gsplat_available.cache_clear()
