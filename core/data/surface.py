"""Surface samples of a normalised object, for shape metrics (Chamfer, F-score, volume IoU) in evaluation.

Each built object keeps ``surface.safetensors`` beside its views: ``points`` ``(N, 3)`` and unit
``normals`` ``(N, 3)`` float32, in the object's normalised frame (the world frame of its cameras:
Y up, bounding sphere radius ``framing.OBJECT_RADIUS`` at the origin). Points are area-uniform on
the drawn triangles; where a part's texture is a cut-out (leaves, fences), points that fall on
texels with alpha below ``ALPHA_CUTOFF`` are rejected, as the renderer discards those fragments.
The normal is the triangle's (the file's own orientation; surfaces are two-sided, so its sign
carries no meaning).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .parts import Part

#: Default number of surface samples stored per object.
SURFACE_POINTS = 10_000
FILE_NAME = "surface.safetensors"
#: Texture alpha below which a cut-out texel is not surface (mesh_render's cut-out threshold).
ALPHA_CUTOFF = 0.5


def _texel_alpha(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Alpha in [0, 1] of ``texture`` ``(h, w, 4)`` at ``uv`` ``(M, 2)`` (v from the bottom, repeating)."""
    h, w = texture.shape[:2]
    x = np.floor((uv[:, 0] % 1.0) * w).astype(np.int64).clip(0, w - 1)
    y = np.floor((1.0 - (uv[:, 1] % 1.0)) * h).astype(np.int64).clip(0, h - 1)
    return texture[y, x, 3] / 255.0


def sample_surface(parts: list[Part], n: int = SURFACE_POINTS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points and normals (float32 ``(n, 3)`` each) on the visible surface of ``parts``.

    Raises ``ValueError`` when the parts have no area.
    """
    rng = np.random.default_rng(seed)
    tris, uvs, masks = [], [], []
    for p in parts:
        t = p.positions.reshape(-1, 3, 3).astype(np.float64)
        tris.append(t)
        cut = p.cutout and p.texture is not None and p.uvs is not None
        uvs.append(p.uvs.reshape(-1, 3, 2).astype(np.float64) if cut else None)
        masks.append(p.texture if cut else None)
    area = [0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1) for t in tris]
    total = float(sum(a.sum() for a in area))
    if not total > 0:
        raise ValueError("no surface area to sample")
    pts, nrm = [], []
    have, rounds = 0, 0
    while have < n and rounds < 8:  # cut-outs reject some draws: draw again until there are enough
        rounds += 1
        m = int((n - have) * 1.3) + 16
        part_of = rng.choice(len(tris), size=m, p=np.array([a.sum() for a in area]) / total)
        for k in np.unique(part_of):
            cnt = int((part_of == k).sum())
            t, a = tris[k], area[k]
            face = rng.choice(len(t), size=cnt, p=a / a.sum())
            r1, r2 = rng.random(cnt), rng.random(cnt)
            s = np.sqrt(r1)
            w = np.stack([1 - s, s * (1 - r2), s * r2], 1)  # uniform barycentric coordinates
            x = np.einsum("ij,ijk->ik", w, t[face])
            fn = np.cross(t[face, 1] - t[face, 0], t[face, 2] - t[face, 0])
            fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-30)
            if masks[k] is not None:
                uv = np.einsum("ij,ijk->ik", w, uvs[k][face])
                keep = _texel_alpha(masks[k], uv) >= ALPHA_CUTOFF
                x, fn = x[keep], fn[keep]
            pts.append(x)
            nrm.append(fn)
            have += len(x)
    if have == 0:
        raise ValueError("every sample fell on a transparent texel")
    P, N = np.concatenate(pts), np.concatenate(nrm)
    order = rng.permutation(len(P))[:n]
    return P[order].astype(np.float32), N[order].astype(np.float32)


def surface_seed(seed: int, object_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"surface:{seed}:{object_id}".encode()).digest()[:8], "big")


def save_surface(path: str | Path, points: np.ndarray, normals: np.ndarray) -> None:
    from safetensors.numpy import save_file

    save_file({"points": np.ascontiguousarray(points, np.float32), "normals": np.ascontiguousarray(normals, np.float32)},
              str(path), metadata={"frame": "normalised object (world) frame, Y up", "units": "world"})


def load_surface(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(points, normals)`` of an object folder's ``surface.safetensors`` (or the file itself)."""
    from safetensors.numpy import load_file

    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    d = load_file(str(path))
    return d["points"], d["normals"]
