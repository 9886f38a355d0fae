"""``splatgen train perceptual``: the category classifier whose features :mod:`splatgen.core.perceptual` uses.

Data: a built or packed dataset's train split, :data:`VIEWS_PER_OBJECT` views an object (evenly spaced
around it), area-downsampled to 64² on the white background, decoded once into memory; the test split
(``--test-data``, default the same dataset) only to report accuracy. Cross-entropy with label
smoothing, AdamW, left-right mirroring; the CPU is enough (about 0.4M weights).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..perceptual import INPUT_SIZE, CategoryNet, save_model

VIEWS_PER_OBJECT = 6


def load_views(root, split: str, views: int = VIEWS_PER_OBJECT):
    """→ images ``(O·views, 3, 64, 64)`` uint8, category names ``(O·views,)``, object ids."""
    from concurrent.futures import ThreadPoolExecutor

    from ..data.dataset import MultiViewDataset

    src = MultiViewDataset(root, split=split, num_targets=1).source
    n_views = len(src.cameras(0)[0])
    which = [round(k * n_views / views) % n_views for k in range(views)]

    def one(i: int) -> np.ndarray:
        rgba = torch.from_numpy(src.views(i, which)).float() / 255          # (V, S, S, 4)
        rgb = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
        x = torch.nn.functional.interpolate(rgb.permute(0, 3, 1, 2), size=(INPUT_SIZE, INPUT_SIZE), mode="area")
        return (x * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()

    with ThreadPoolExecutor(4) as pool:
        images = np.concatenate(list(pool.map(one, range(len(src.ids)))))
    cats = [str((src.meta.get(oid) or {}).get("category") or "unknown") for oid in src.ids for _ in which]
    return images, cats, list(src.ids)


def accuracy(net: CategoryNet, images: np.ndarray, labels: torch.Tensor) -> float:
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(torch.from_numpy(images[i:i + 512]).float() / 255).argmax(1)
                          for i in range(0, len(images), 512)])
    net.train()
    return float((pred == labels).float().mean())


def train_perceptual(data, out, test_data=None, minutes: float = 10.0, batch_size: int = 128, lr: float = 2e-3,
                     seed: int = 0, max_steps: int | None = None, widths=None) -> dict:
    """Train for ``minutes`` (or ``max_steps``) and write the model folder ``out``
    (:func:`~splatgen.core.perceptual.save_model`); ``widths``: the network's (default its own)."""
    torch.manual_seed(seed)
    t0 = time.time()
    train_x, train_c, _ = load_views(data, "train")
    categories = sorted(set(train_c))
    index = {c: i for i, c in enumerate(categories)}
    train_y = torch.tensor([index[c] for c in train_c])
    test_x, test_c, test_ids = load_views(test_data or data, "test")
    known = [i for i, c in enumerate(test_c) if c in index]
    test_x, test_y = test_x[known], torch.tensor([index[test_c[i]] for i in known])
    if len(test_y) == 0:  # found before the training minutes, not after them
        from ..errors import DatasetError

        raise DatasetError(f"{test_data or data}: no test view of a category the train split has")
    print(f"perceptual: {len(train_x)} train views of {len(categories)} categories, {len(test_x)} test views "
          f"(loaded in {time.time() - t0:.0f} s)", flush=True)
    net = CategoryNet(len(categories)) if widths is None else CategoryNet(len(categories), tuple(widths))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    g = torch.Generator().manual_seed(seed)
    step, start = 0, time.time()
    while time.time() - start < minutes * 60 and (max_steps is None or step < max_steps):
        idx = torch.randint(len(train_x), (batch_size,), generator=g)
        x = torch.from_numpy(train_x[idx.numpy()]).float() / 255
        flip = torch.rand(batch_size, generator=g) < 0.5
        x[flip] = x[flip].flip(-1)
        loss = loss_fn(net(x), train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 200 == 0:
            print(f"step {step} loss {float(loss):.3f} ({(time.time() - start) / 60:.1f} min)", flush=True)
    report = {"steps": step, "batch_size": batch_size, "train_views": len(train_x),
              "train_accuracy": round(accuracy(net, train_x[:4096], train_y[:4096]), 4),
              "test_accuracy": round(accuracy(net, test_x, test_y), 4), "test_views": len(test_x),
              "test_objects": len(test_ids), "chance": round(float(np.bincount(test_y.numpy()).max() / len(test_y)), 4)}
    save_model(Path(out), net, categories, report)
    print(f"perceptual: {report}", flush=True)
    return report
