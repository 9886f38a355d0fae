"""The perceptual metric trained here: KID on classifier features, the classifier's training loop, and
``splatgen eval``'s use of it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from splatgen.core import perceptual
from test_geometry_metrics import built_with_surfaces  # noqa: F401 - the fixture: two test objects, two categories


def test_kid_is_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(600, 32, generator=g), torch.randn(600, 32, generator=g)
    same = perceptual.kid(a, b)
    near, far = perceptual.kid(a, b + 0.3), perceptual.kid(a, b + 1.0)
    assert abs(same) < 0.02 and near > 5 * abs(same) and far > 4 * near
    assert math.isnan(perceptual.kid(a[:1], b[:1]))


def _shapes(n: int, seed: int):
    """Views of two categories: red squares and blue discs at random places and sizes, 64², uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    images, cats = np.full((n, 3, 64, 64), 255, np.uint8), []
    for i in range(n):
        cx, cy, r = rng.integers(16, 48, 2).tolist() + [int(rng.integers(6, 14))]
        if i % 2:
            mask, colour, cat = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r, (40, 60, 200), "discs"
        else:
            mask, colour, cat = (abs(xx - cx) < r) & (abs(yy - cy) < r), (200, 50, 40), "squares"
        images[i][:, mask] = np.array(colour, np.uint8)[:, None]
        cats.append(cat)
    return images, cats, [f"o{i}" for i in range(n)]


def test_the_classifier_learns_categories_and_its_folder_reloads(tmp_path, monkeypatch):
    from splatgen.core.training import perceptual as training

    monkeypatch.setattr(training, "load_views", lambda root, split, views=6: _shapes(512 if split == "train" else 128,
                                                                                      0 if split == "train" else 1))
    report = training.train_perceptual("unused", tmp_path / "model", minutes=1.0, max_steps=60, batch_size=32,
                                       widths=(8, 16))
    assert report["test_accuracy"] > 0.9 and report["chance"] == 0.5
    net, config = perceptual.load_model(tmp_path / "model")
    assert config["categories"] == ["discs", "squares"] and config["test_accuracy"] == report["test_accuracy"]
    images, _, _ = _shapes(8, 2)
    rgb = torch.from_numpy(images).permute(0, 2, 3, 1).float() / 255
    f = perceptual.features(net, rgb)
    assert f.shape == (8, net.widths[-1]) and torch.isfinite(f).all()
    (tmp_path / "model" / "model.safetensors").write_bytes(b"not safetensors")
    from splatgen.core.errors import ModelError

    with pytest.raises(ModelError, match="not a perceptual model folder"):
        perceptual.load_model(tmp_path / "model")


def test_eval_reports_kid_and_category_accuracy(tmp_path, shipped_regressor, built_with_surfaces):
    from splatgen.core.evaluation import evaluate, find_objects, object_category
    from splatgen.core.generator import GenerationSettings

    objects = find_objects(built_with_surfaces, "test")
    categories = sorted({object_category(o) for o in objects})
    torch.manual_seed(0)
    perceptual.save_model(tmp_path / "p", perceptual.CategoryNet(len(categories)), categories, {})
    net = perceptual.load_model(tmp_path / "p")
    result = evaluate(shipped_regressor, objects, GenerationSettings(), progress=False, perceptual=net)
    assert math.isfinite(result["kid_novel"])
    assert 0 <= result["novel_category_accuracy"] <= 1 and 0 <= result["real_category_accuracy"] <= 1
    assert all("_features" not in row for row in result["per_object"])
