"""``splatgen train camera``: the photo-camera estimator (:class:`~splatgen.core.models.elevation_net.ElevationNet`).

Data: a built or packed dataset's views, whose cameras are known: each view's elevation is read off
its camera (``asin(C_y / |C|)`` of the camera centre ``C``; world +Y up). Every view is passed through
the very preparation a photo gets (:func:`splatgen.core.imageprep.prepare_image` with its alpha as the
mask: the object's bounding box centred and scaled to the canonical foreground ratio), so the network
never learns a cue a prepared photo does not have (the object's height in the frame, say), then
area-downsampled to the network's input size and held in memory as uint8: :data:`VIEWS_PER_OBJECT`
views of every train object (evenly spaced in its view order, whose elevations are uniform; many
objects teach more than many views of few), :data:`EVAL_VIEWS_PER_OBJECT` of every val object. Every
step draws a random batch.

Augmentation: left-right mirroring (it leaves the elevation as it is) and a mild per-channel colour
gain (photos are not lit like renders). Loss: the Laplace negative log-likelihood
(:func:`~splatgen.core.models.elevation_net.laplace_nll`). AdamW with a cosine decay over the run,
an exponential moving average of the weights (decay 0.998) is what is evaluated and kept.

Model choice is on the **val** split only (the split's median absolute error, measured on the EMA
weights every ``eval_every`` steps; the best is kept; ``training.json`` also has the val figures
read with the mirrored average of :meth:`ElevationNet.read`); the test split is never read here —
it is measured once, afterwards, by ``splatgen bench camera``. Runs on the CPU (one thread is enough
for the default 0.3M weights at 64²) or on a GPU (``--device auto`` takes one when there is one), where
the prepared views live in GPU memory as uint8 and each batch is drawn and augmented there (larger
networks: ``--camera-size 128``).
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from ..models.elevation_net import ElevationNet, laplace_nll

#: Views an object used for training (of the dataset's 24: more objects beat more views of each).
VIEWS_PER_OBJECT = 12
#: Views an object used to choose the weights on val (and to measure on test).
EVAL_VIEWS_PER_OBJECT = 8


def view_elevations(viewmats: torch.Tensor) -> torch.Tensor:
    """OpenCV world-to-camera ``(..., 4, 4)`` → each camera's elevation above the horizon ``(...,)``, degrees."""
    vm = torch.as_tensor(viewmats).double()
    centre = -(vm[..., :3, :3].transpose(-1, -2) @ vm[..., :3, 3:])[..., 0]
    return torch.rad2deg(torch.asin((centre[..., 1] / centre.norm(dim=-1)).clamp(-1, 1))).float()


def _prepare_objects(root, split: str, start: int, stop: int, views_per_object: int, size: int
                     ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Objects ``start … stop-1`` of the split, as :func:`prepared_views` describes (one worker's share)."""
    from ..data.dataset import MultiViewDataset
    from ..imageprep import prepare_image

    src = MultiViewDataset(root, split=split, num_targets=1).source
    names = list(src.ids)
    images, elevations, ids = [], [], []
    for o in range(start, stop):
        name = names[o]
        viewmats = src.cameras(o)[0]
        n_views = len(viewmats)
        k = min(views_per_object, n_views)
        which = sorted({(round(j * n_views / k) + o) % n_views for j in range(k)})
        batch = []
        for v, rgba in zip(which, src.views(o, which)):
            if int(rgba[..., 3].max()) == 0:  # an empty view: kept as it is (the estimator sees nothing)
                batch.append(torch.from_numpy(np.ascontiguousarray(rgba)).permute(2, 0, 1).float() / 255)
            else:
                batch.append(prepare_image(rgba, remove_background=False, name=f"{name}/{v}").image)
            ids.append(name)
        x = torch.nn.functional.interpolate(torch.stack(batch), size=(size, size), mode="area")
        images.append((x * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy())
        elevations.append(view_elevations(viewmats[which]).numpy())
    if not images:
        return np.zeros((0, 4, size, size), np.uint8), np.zeros(0, np.float32), []
    return np.concatenate(images), np.concatenate(elevations).astype(np.float32), ids


def prepared_views(root, split: str, views_per_object: int = VIEWS_PER_OBJECT, size: int = 64,
                   objects: int | None = None, workers: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A split's views as prepared inputs → (images ``(N, 4, size, size)`` uint8, elevations ``(N,)``
    float32 degrees, the object id of each image). ``views_per_object`` views of each object, evenly
    spaced in its view order and offset by the object's index (so the objects together use every view
    index); ``objects``: only the first that many objects. Only the chosen views are decoded;
    ``workers`` > 1 prepares contiguous blocks of objects in that many processes (same result, in order)."""
    from ..data.dataset import MultiViewDataset

    total = len(MultiViewDataset(root, split=split, num_targets=1).source.ids)
    count = total if objects is None else min(objects, total)
    if workers <= 1 or count < 2:
        return _prepare_objects(root, split, 0, count, views_per_object, size)
    import concurrent.futures
    import multiprocessing

    edges = np.linspace(0, count, 4 * workers + 1).round().astype(int)
    # spawn: the parent may hold CUDA (forked children must not touch it) and threads
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=torch.set_num_threads, initargs=(1,)) as pool:
        parts = list(pool.map(_prepare_objects, *zip(*[(str(root), split, int(a), int(b), views_per_object, size)
                                                       for a, b in zip(edges[:-1], edges[1:])])))
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            [i for p in parts for i in p[2]])


@torch.no_grad()
def predict(net: ElevationNet, images, batch: int = 512, mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """uint8 inputs ``(N, 4, s, s)`` (numpy, or a tensor on any device) → (elevations ``(N,)`` degrees,
    expected absolute errors ``(N,)`` degrees), read as :meth:`ElevationNet.read` does (``mirror``:
    averaged with the mirrored image), on the network's device."""
    was = net.training
    net.eval()
    device = next(net.parameters()).device
    images = torch.as_tensor(images)
    mus, bs = [], []
    for i in range(0, len(images), batch):
        mu, log_b = net.read(images[i:i + batch].to(device).float() / 255, mirror)
        mus.append(net.degrees(mu).float().cpu())
        bs.append((torch.exp(log_b) * net.degrees_per_unit).float().cpu())
    net.train(was)
    return torch.cat(mus).numpy(), torch.cat(bs).numpy()


def error_report(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Absolute elevation errors, degrees: median, mean, p90, max, and the count."""
    err = np.abs(np.asarray(pred, np.float64) - np.asarray(truth, np.float64))
    return {"median_deg": float(np.median(err)), "mean_deg": float(err.mean()),
            "p90_deg": float(np.percentile(err, 90)), "max_deg": float(err.max()), "views": int(len(err))}


def _augment(x: torch.Tensor, g: torch.Generator, jitter: float = 0.0) -> torch.Tensor:
    """Augment a batch ``(B, 4, s, s)`` in [0, 1] in place-ish: left-right mirroring, a per-channel colour
    gain on the object, and with ``jitter`` > 0 a random scale (1 ± jitter) and shift (± jitter/2 of the
    width): a photo's mask is never as tight as a render's alpha, so its framing is off by a little."""
    b = x.shape[0]
    flip = torch.rand(b, generator=g, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)   # no boolean indexing: no host sync on a GPU
    gain = 1 + 0.15 * (torch.rand(b, 3, 1, 1, generator=g, device=x.device) * 2 - 1)
    alpha = x[:, 3:]
    # scale the colour, keep the white background white: only where the object is
    x[:, :3] = (x[:, :3] * gain * alpha + x[:, :3] * (1 - alpha)).clamp(0, 1)
    if jitter > 0:
        u = torch.rand(b, 3, generator=g, device=x.device) * 2 - 1
        theta = torch.zeros(b, 2, 3, device=x.device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 + jitter * u[:, 0]
        theta[:, :, 2] = jitter * u[:, 1:]   # normalised coordinates: ±jitter is ±jitter/2 of the width
        grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        # border padding repeats the background at the edges (the object is framed with a margin)
        x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return x


def check_camera_options(input_size: int, widths, views_per_object: int | None, jitter: float, workers: int) -> None:
    """The options of ``train camera`` that would otherwise fail deep inside (or train nonsense): a
    :class:`~splatgen.core.errors.SettingsError` naming the bad value."""
    from ..errors import SettingsError

    stages = len(widths) if widths else 4
    if widths is not None and (not widths or min(widths) < 4):
        raise SettingsError(f"--camera-widths: each stage needs 4 channels or more, got {list(widths)}")
    if input_size < 2 ** stages or input_size % 2 ** stages:
        raise SettingsError(f"--camera-size {input_size}: must be a multiple of 2^{stages} = {2 ** stages} "
                            f"({stages} stride-2 stages)")
    if input_size > 128:
        raise SettingsError(f"--camera-size {input_size}: at most 128, the prepared input's size")
    if views_per_object is not None and views_per_object < 1:
        raise SettingsError(f"--camera-views {views_per_object}: must be 1 or more")
    if not 0 <= jitter < 0.5:
        raise SettingsError(f"--camera-jitter {jitter}: must be in [0, 0.5)")
    if workers < 1:
        raise SettingsError(f"--workers {workers}: must be 1 or more")


def train_camera(data, out, val_data=None, minutes: float = 20.0, batch_size: int = 64, lr: float = 2e-3,
                 seed: int = 0, max_steps: int | None = None, views_per_object: int = VIEWS_PER_OBJECT,
                 val_views_per_object: int = EVAL_VIEWS_PER_OBJECT, eval_every: int = 500, widths=None,
                 objects: int | None = None, input_size: int = 64, device: str = "cpu", workers: int = 1,
                 jitter: float = 0.0, weight_decay: float = 1e-4, save_every_s: float = 60.0) -> dict:
    """Train for ``minutes`` (or ``max_steps``) and write the model folder ``out``: the weights of the
    step with the lowest val median error (fp16 ``save_pretrained``) and ``training.json`` (the run's
    figures). ``val_data``: the dataset whose val split chooses (default ``data``). ``device``: where
    the network and the prepared views (uint8) live; ``workers``: processes preparing the views;
    ``jitter``: see :func:`_augment`. The clock (``minutes``) starts after the views are prepared. While it
    runs, the best weights so far are also in ``out/best-so-far`` (rewritten at the first evaluation
    ``save_every_s`` or more after the last write, when there is a newer best; removed at the end)."""
    from ..devices import pick_device

    torch.manual_seed(seed)
    dev = pick_device(device)
    t0 = time.time()
    net = ElevationNet(input_size=input_size, **({} if widths is None else {"widths": tuple(widths)}))
    size = int(net.config.input_size)
    train_x, train_el, train_ids = prepared_views(data, "train", views_per_object, size, objects, workers)
    val_x, val_el, val_ids = prepared_views(val_data or data, "val", val_views_per_object, size, objects, workers)
    prep_s = time.time() - t0
    print(f"camera: {len(train_x)} train views of {len(set(train_ids))} objects, {len(val_x)} val views of "
          f"{len(set(val_ids))} (prepared in {prep_s:.0f} s); {sum(p.numel() for p in net.parameters()):,} "
          f"weights, on {dev}", flush=True)
    net.to(dev)
    train_x = torch.from_numpy(train_x).to(dev)
    val_x = torch.from_numpy(val_x).to(dev)
    targets = net.normalise(torch.from_numpy(train_el)).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    g = torch.Generator(device=dev).manual_seed(seed)
    step, start = 0, time.time()
    best, best_state, best_step, history = math.inf, None, 0, []
    saved, pending = [time.time()], [None]   # when the best so far was last written; a newer best not yet written
    budget = minutes * 60

    def evaluate() -> None:
        nonlocal best, best_state, best_step
        report = error_report(predict(ema, val_x)[0], val_el)
        history.append({"step": step, "minutes": round((time.time() - start) / 60, 2),
                        **{k: round(v, 3) for k, v in report.items() if k != "views"}})
        print(f"step {step} val median {report['median_deg']:.2f}° mean {report['mean_deg']:.2f}° "
              f"p90 {report['p90_deg']:.2f}° ({(time.time() - start) / 60:.1f} min)", flush=True)
        if report["median_deg"] < best:
            best, best_step = report["median_deg"], step
            best_state = {k: v.detach().clone() for k, v in ema.state_dict().items()}
            pending[0] = {"step": step, "val": report}
        if pending[0] is not None and time.time() - saved[0] >= save_every_s:
            save_best_so_far(pending[0])

    def save_best_so_far(record: dict) -> None:
        """The best weights so far on disk: a run lost with its machine keeps them."""
        saved[0], pending[0] = time.time(), None
        net_ = copy.deepcopy(ema)
        net_.load_state_dict(best_state)
        tmp, final = Path(out, "best-so-far.tmp"), Path(out, "best-so-far")
        shutil.rmtree(tmp, ignore_errors=True)
        net_.cpu().half().save_pretrained(tmp, safe_serialization=True)
        (tmp / "training.json").write_text(json.dumps(record) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)   # never half a folder under the name
        print(f"camera: best so far (step {record['step']}, val median {record['val']['median_deg']:.2f}°) → {final}",
              flush=True)

    while time.time() - start < budget and (max_steps is None or step < max_steps):
        frac = min(1.0, (time.time() - start) / budget)
        if max_steps:
            frac = max(frac, step / max_steps)
        for group in opt.param_groups:
            group["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
        idx = torch.randint(len(train_x), (batch_size,), generator=g, device=dev)
        x = _augment(train_x[idx].float() / 255, g, jitter)
        mu, log_b = net(x)
        loss = laplace_nll(mu, log_b, targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            decay = min(0.998, (1 + step) / (10 + step))
            for e, p in zip(ema.parameters(), net.parameters()):
                e.lerp_(p, 1 - decay)
        step += 1
        if step % eval_every == 0:
            evaluate()
    evaluate()
    ema.load_state_dict(best_state)
    val = error_report(predict(ema, val_x)[0], val_el)
    val_mirrored = error_report(predict(ema, val_x, mirror=True)[0], val_el)
    report = {"steps": step, "best_step": best_step, "minutes": round((time.time() - start) / 60, 2),
              "prepare_seconds": round(prep_s, 1), "device": str(dev), "batch_size": batch_size,
              "lr": lr, "weight_decay": weight_decay, "jitter": jitter, "input_size": size,
              "widths": list(net.config.widths), "train_views": len(train_x), "train_objects": len(set(train_ids)),
              "views_per_object": views_per_object, "val_views_per_object": val_views_per_object, "val": {**val, "objects": len(set(val_ids))},
              "val_mirror_average": val_mirrored,
              "val_history": history, "data": str(data), "val_data": str(val_data or data)}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "best-so-far", ignore_errors=True)
    ema.cpu().half().save_pretrained(out, safe_serialization=True)
    (out / "training.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"camera: val median {val['median_deg']:.2f}° mean {val['mean_deg']:.2f}° p90 {val['p90_deg']:.2f}° "
          f"(step {best_step} of {step}) → {out}", flush=True)
    return report


def evaluate_estimator(net: ElevationNet, root, split: str, views_per_object: int = 24) -> dict:
    """The estimator's absolute elevation errors on ``split`` of the dataset ``root`` (``views_per_object``
    views of each object, prepared as photos are): :func:`error_report` of the estimates, the same of
    the constant guess ``framing.INPUT_ELEVATION_DEG`` (what the generators assumed without an
    estimate), the median error per third of the elevation range, and how the error grows with the
    network's own expected error (median error of the views it is surest / least sure of, halves)."""
    from .. import framing

    x, truth, ids = prepared_views(root, split, views_per_object, int(net.config.input_size))
    pred, spread = predict(net, x)
    lo, hi = net.config.elevation_range
    clamped = np.clip(pred, lo, hi)
    err = np.abs(clamped - truth)
    edges = np.linspace(lo, hi, 4)
    bands = {f"{a:g}..{b:g}": float(np.median(err[(truth >= a) & (truth <= b)])) for a, b in zip(edges[:-1], edges[1:])}
    order = np.argsort(spread)
    half = len(order) // 2
    return {"split": split, "objects": len(set(ids)), **error_report(clamped, truth),
            "constant_guess": {"elevation_deg": framing.INPUT_ELEVATION_DEG,
                               **error_report(np.full_like(truth, framing.INPUT_ELEVATION_DEG), truth)},
            "median_by_true_elevation_deg": bands,
            "median_surest_half_deg": float(np.median(err[order[:half]])),
            "median_least_sure_half_deg": float(np.median(err[order[half:]])),
            "median_expected_error_deg": float(np.median(spread))}
