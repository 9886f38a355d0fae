"""Experiment: how much of the VAR's posterior latent can the denoiser's condition explain?

    python scripts/experiments/condition_probe.py [N_TRAIN [N_VAL [JSON]]]

For N_TRAIN random (object, input view, 2 context views) items of the train split and N_VAL of the
val split, the shipped VAR gives its condition features (the image encoder's 16×16×128 output for
the input view) and the posterior mean from input + context views; the shipped regressor gives its
own 16×16×128 features of the same input view. A ridge regression per latent pixel (1×1, with the
features of the pixel and the mean of its 3×3 neighbourhood) is fitted on train items and scored on
val items (R² of the posterior mean) for three conditions: VAR features, regressor features, both.
A linear probe is a lower bound on what a denoiser can read from a condition; what matters is the
difference between the three. CPU, 2 threads; nothing here changes the product.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from splatgen.core.generator import load_generator
from splatgen.core.training.latent_pool import var_posterior
from splatgen.core.training.viewbank import load_view_bank
from record import save_result  # scripts/experiments/record.py


@torch.no_grad()
def encode(var, regressor, bank, n: int, seed: int, batch: int = 32):
    g = torch.Generator().manual_seed(seed)
    fv, fr, mu = [], [], []
    for i in range(0, n, batch):
        b = bank.sample(min(batch, n - i), 2, g)
        features, mean, _ = var_posterior(var, b, 2)
        fv.append(features)
        fr.append(regressor.encode_image(b.input)[-1])
        mu.append(mean)
    return torch.cat(fv), torch.cat(fr), torch.cat(mu)


def design(f: torch.Tensor) -> np.ndarray:
    """``(N, C, s, s)`` → rows ``(N·s·s, 2C + 1)``: each pixel's features, their 3×3 mean, a bias."""
    local = torch.nn.functional.avg_pool2d(f, 3, 1, 1, count_include_pad=False)
    x = torch.cat([f, local], 1).permute(0, 2, 3, 1).reshape(-1, 2 * f.shape[1])
    return np.concatenate([x.double().numpy(), np.ones((x.shape[0], 1))], 1)


def ridge_r2(x_train, y_train, x_val, y_val, lam: float = 1e-2) -> float:
    mu, sd = x_train[:, :-1].mean(0), x_train[:, :-1].std(0) + 1e-6
    norm = lambda x: np.concatenate([(x[:, :-1] - mu) / sd, x[:, -1:]], 1)  # noqa: E731
    a, b = norm(x_train), norm(x_val)
    w = np.linalg.solve(a.T @ a + lam * len(a) * np.eye(a.shape[1]), a.T @ y_train)
    resid = ((b @ w - y_val) ** 2).sum()
    return float(1.0 - resid / ((y_val - y_val.mean(0)) ** 2).sum())


def main(argv: list[str]) -> None:
    n_train = int(argv[0]) if argv else 768
    n_val = int(argv[1]) if len(argv) > 1 else 384
    torch.set_num_threads(2)
    t0 = time.time()
    diffusion, regressor = load_generator("diffusion", "cpu"), load_generator("regressor", "cpu")
    var, reg = diffusion.var, regressor.net
    train = encode(var, reg, load_view_bank("data/sh3d", split="train"), n_train, 0)
    val = encode(var, reg, load_view_bank("data/sh3d", split="val"), n_val, 1)
    y_train = train[2].permute(0, 2, 3, 1).reshape(-1, train[2].shape[1]).double().numpy()
    y_val = val[2].permute(0, 2, 3, 1).reshape(-1, val[2].shape[1]).double().numpy()
    result = {"n_train": n_train, "n_val": n_val}
    for name, pick in (("var", lambda e: e[0]), ("regressor", lambda e: e[1]),
                       ("both", lambda e: torch.cat([e[0], e[1]], 1))):
        result[f"r2_{name}"] = ridge_r2(design(pick(train)), y_train, design(pick(val)), y_val)
    result["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(result))
    if len(argv) > 2:
        save_result(result, argv[2])


if __name__ == "__main__":
    main(sys.argv[1:])
