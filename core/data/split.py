"""Groups of near-duplicate objects, and the train / val / test split by group, balanced per category.

Two kinds of twins join one *group*:

- **geometry**: identical normalised geometry (:func:`geometry_hash` of the vertices rounded to
  ``HASH_QUANTUM``: one mesh under several textures, one unit in several factions);
- **renders**: near-identical signature views (:mod:`~splatgen.core.data.signature`: the same
  fixed cameras, flat-lit, 32²) — shapes that differ only below what a view shows (a re-exported
  mesh, an extra hidden part, one animal at another age) under the same texture. Two objects are
  render twins when the RMS difference of their signatures (RGB composited on the background, and
  alpha, in [0, 1]) over the pixels either covers is below :data:`RENDER_RMS`; groups are the
  connected components of both relations (union-find). Objects that together cover fewer than
  :data:`MIN_UNION_PIXELS` signature pixels are not compared.

The split then puts whole groups into train / val / test so that each category's count in every
split is its ``SPLIT_FRACTIONS`` share rounded down or up (a group too big to fit anywhere whole
goes where most is missing): the groups of a category (their members' most common one), in the
order of a hash of their first id, go to the split that hash picks (:func:`split_of`) while the
shares stay within rounding; the others then go where they fit. So a dataset that grows keeps
most of its assignments, and a one-object category can still land in val.
"""

from __future__ import annotations

import collections
import hashlib
import math
from pathlib import Path

import numpy as np

from .. import framing

#: Fractions of objects in each split, in order; the rest of [0, 1) after train and val is test.
SPLIT_FRACTIONS = (("train", 0.90), ("val", 0.05), ("test", 0.05))
SPLITS = tuple(name for name, _ in SPLIT_FRACTIONS)
#: Geometry hash resolution, world units (the normalised object's bounding radius is framing.OBJECT_RADIUS).
HASH_QUANTUM = framing.OBJECT_RADIUS / 1000.0
#: Signatures closer than this (RMS over the pixels either object covers, RGB on the background and
#: alpha, values in [0, 1]) are render twins. Looked at on the games dataset: below it, one unit in
#: two factions, a horse with and without its saddle, one coach in two liveries; above, horses of
#: other coats, shields of other colours.
RENDER_RMS = 0.06
#: Pixels (over all signature views) two objects must cover together to be compared: an object
#: too thin or small to show in 32² views gives no evidence of being anyone's twin.
MIN_UNION_PIXELS = 24


def _unit(key: str) -> float:
    h = hashlib.sha256(f"splatgen-split:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def split_of(object_id: str) -> str:
    """Split a hash of ``object_id`` alone picks (90 / 5 / 5): the tie-break of :func:`balanced_split`."""
    u, acc = _unit(object_id), 0.0
    for name, frac in SPLIT_FRACTIONS:
        acc += frac
        if u < acc:
            return name
    return SPLIT_FRACTIONS[-1][0]


def geometry_hash(parts) -> str:
    """Hash of a normalised model's shape: its vertex positions rounded to ``HASH_QUANTUM``, as a set
    (order, duplication, materials and textures do not count). 16 hex digits."""
    q = np.concatenate([np.round(p.positions.astype(np.float64) / HASH_QUANTUM) for p in parts]).astype(np.int64)
    q = np.unique(q, axis=0)
    return hashlib.sha256(np.ascontiguousarray(q).tobytes()).hexdigest()[:16]


class _UnionFind:
    def __init__(self, keys):
        self.parent = {k: k for k in keys}

    def find(self, k):
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the smallest id represents the group


def _signature_arrays(signatures: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Ids, ``(N, V, S, S, 4)`` float32 flat signature views (RGB composited on the framing
    background, then alpha, in [0, 1]) and ``(N, V, S, S)`` object masks (alpha > 0)."""
    ids = sorted(signatures)
    if not ids:
        return ids, np.zeros((0, 1, 1, 1, 4), np.float32), np.zeros((0, 1, 1, 1), bool)
    v = np.stack([signatures[oid][0] for oid in ids]).astype(np.float32) / 255.0  # the flat rows
    a = v[..., 3:4]
    bg = np.asarray(framing.BACKGROUND, np.float32)
    v[..., :3] = v[..., :3] * a + bg * (1 - a)
    return ids, v, a[..., 0] > 0


def signature_distance(a: np.ndarray, b: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray) -> float:
    """RMS difference of two objects' signature views over the pixels where either object is (their
    masks' union), RGB on the background and alpha, in [0, 1]: a thin spear and a thin sword differ by
    their few pixels, not by the empty background around them."""
    union = int((mask_a | mask_b).sum())
    return float(np.sqrt(((a - b) ** 2).sum() / (4 * union))) if union else float("inf")


def render_twins(signatures: dict[str, np.ndarray], rms: float = RENDER_RMS, chunk: int = 512) -> list[tuple[str, str]]:
    """Pairs ``(a, b)``, ``a < b``, whose flat signatures differ by less than ``rms``
    (:func:`signature_distance`). Candidates come from 2×2-averaged views in one matrix product
    (averaging only shrinks a mean square, so no pair is missed), then each is measured exactly."""
    ids, v, masks = _signature_arrays(signatures)
    if len(ids) < 2:
        return []
    n, nv, s = v.shape[0], v.shape[1], v.shape[2]
    small = v.reshape(n, nv, s // 2, 2, s // 2, 2, 4).mean((3, 5)).reshape(n, -1)
    sq = (small * small).sum(1)
    area = masks.reshape(n, -1).sum(1).astype(np.float32)
    pairs = []
    for i0 in range(0, n, chunk):
        blk = small[i0:i0 + chunk]
        d2 = sq[i0:i0 + chunk, None] + sq[None, :] - 2.0 * blk @ small.T  # summed over the 2×2 blocks
        # exact: sum over all pixels ≥ 4 · d2; union ≤ area_a + area_b
        cand = 4.0 * d2 <= (rms * rms) * 4.0 * (area[i0:i0 + chunk, None] + area[None, :]) + 1e-6
        for i, j in zip(*np.nonzero(cand)):
            i += i0
            if i < j and (masks[i] | masks[j]).sum() >= MIN_UNION_PIXELS \
                    and signature_distance(v[i], v[j], masks[i], masks[j]) < rms:
                pairs.append((ids[i], ids[j]))
    return sorted(pairs)


def near_duplicate_groups(objects: dict[str, dict], signatures: dict[str, np.ndarray] | None = None,
                          rms: float = RENDER_RMS) -> tuple[dict[str, str], dict[str, int]]:
    """Object id → its group's representative (the smallest id of the group), joining objects of one
    geometry hash and render twins; and counts ``{"geometry_merged", "render_merged", "render_pairs"}``:
    objects that joined another because of their geometry, and further ones because of their renders."""
    uf = _UnionFind(objects)
    first: dict[str, str] = {}
    for oid in sorted(objects):
        h = objects[oid].get("geometry_hash")
        if h:
            if h in first:
                uf.union(first[h], oid)
            else:
                first[h] = oid
    geometry_merged = len(objects) - len({uf.find(k) for k in objects})
    pairs = render_twins({k: v for k, v in (signatures or {}).items() if k in objects}, rms)
    for a, b in pairs:
        uf.union(a, b)
    group_of = {oid: uf.find(oid) for oid in objects}
    total_merged = len(objects) - len(set(group_of.values()))
    return group_of, {"geometry_merged": geometry_merged, "render_merged": total_merged - geometry_merged,
                      "render_pairs": len(pairs)}


def balanced_split(objects: dict[str, dict], group_of: dict[str, str]) -> dict[str, str]:
    """Object id → split: whole groups, each category's split shares its targets within rounding.

    A group's category is its members' most common ``category`` (ties: the first in sort order).
    """
    members: dict[str, list[str]] = collections.defaultdict(list)
    for oid in sorted(objects):
        members[group_of.get(oid, oid)].append(oid)
    by_cat: dict[str, list[str]] = collections.defaultdict(list)
    for rep, ids in members.items():
        cats = collections.Counter(objects[i].get("category") or "uncategorized" for i in ids)
        by_cat[min(cats, key=lambda c: (-cats[c], c))].append(rep)
    fractions = dict(SPLIT_FRACTIONS)
    split: dict[str, str] = {}
    for cat in sorted(by_cat):
        reps = sorted(by_cat[cat], key=lambda r: (_unit(r), r))
        n = sum(len(members[r]) for r in reps)
        target = {s: n * fractions[s] for s in SPLITS}
        floor = {s: math.floor(target[s] + 1e-9) for s in SPLITS}
        ceil = {s: math.ceil(target[s] - 1e-9) for s in SPLITS}
        spare = n - sum(floor.values())  # objects beyond the rounded-down shares, ≤ len(SPLITS) - 1
        have = dict.fromkeys(SPLITS, 0)

        def fits(s: str, k: int) -> bool:
            after = have | {s: have[s] + k}
            return after[s] <= ceil[s] and sum(max(0, after[c] - floor[c]) for c in SPLITS) <= spare

        overflow = []
        for rep in reps:  # the split the hash picks, while it keeps every share within rounding
            own, k = split_of(rep), len(members[rep])
            if fits(own, k):
                have[own] += k
                split.update({oid: own for oid in members[rep]})
            else:
                overflow.append(rep)
        for rep in overflow:  # the rest where it fits, most missing first; a group too big goes where most is missing
            k = len(members[rep])
            order = sorted(SPLITS, key=lambda c: (-(target[c] - have[c]), SPLITS.index(c)))
            s = next((c for c in order if fits(c, k)), order[0])
            have[s] += k
            split.update({oid: s for oid in members[rep]})
    return split


def load_signatures(out: Path, ids) -> dict[str, np.ndarray]:
    """Signature views of the objects ``ids`` under a dataset folder ``out`` (those that have one)."""
    from .signature import SIGNATURE_FILE, load_signature

    found = {}
    for oid in ids:
        try:
            found[oid] = load_signature(Path(out) / oid / SIGNATURE_FILE)
        except (OSError, ValueError):
            continue
    return found


__all__ = ["SPLIT_FRACTIONS", "SPLITS", "HASH_QUANTUM", "RENDER_RMS", "split_of", "geometry_hash",
           "render_twins", "near_duplicate_groups", "balanced_split", "load_signatures", "signature_distance"]
