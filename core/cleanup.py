"""Clean-up of a splat set: faint splats, a crop box, and floaters not connected to the object.

Every function returns a **keep-mask** ``(N,)`` bool over one set of :class:`~.gaussians.Gaussians`
(no batch dimensions) and never changes the set; :func:`apply_keep` makes the cleaned set. Units
are the object frame's (:mod:`splatgen.core.generator.base`: Y up, the object centred at the
origin within a radius of about 0.5); opacities are activated, in (0, 1). Splats too transparent
to show (below :data:`~splatgen.core.export.MIN_EXPORT_OPACITY`, which every export leaves out; most
of a generated sample's slots) are never kept and not counted as removed.

Floaters are found on the splat centres: each centre falls in a cubic cell of side ``link``; cells
that touch (26-neighbourhood, found with scipy's ``cKDTree``) are joined into connected components
(``scipy.sparse.csgraph``), so centres closer than ``link`` are always connected and centres farther
than 2√3·``link`` never directly (the cells keep it fast on 10⁵ splats); a component's mass is the
sum of its splats' opacities. The heaviest component is the object and is always kept; any other
is kept when it holds at least ``min_mass_fraction`` of the total mass (a second part of the
object, not a stray cluster).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from .export import MIN_EXPORT_OPACITY
from .gaussians import Gaussians

#: Default opacity below which a splat counts as faint (nearly transparent).
DEFAULT_MIN_OPACITY = 0.02
#: Default cell side that joins splat centres into one component (object-frame units).
DEFAULT_LINK = 0.04
#: Default share of the opacity mass a component needs to be kept beside the heaviest one.
DEFAULT_MIN_MASS_FRACTION = 0.05
#: Opacity logit given to removed splats by :func:`apply_keep` with ``compact=False``: opacity ≈ 1e-13,
#: below every export's and renderer's visibility cut.
REMOVED_LOGIT = -30.0


@dataclass(frozen=True)
class CleanupSettings:
    """What :func:`cleanup_mask` removes. ``min_opacity`` in [0, 1); ``link`` > 0 and ``crop`` (a box
    ``((x0, y0, z0), (x1, y1, z1))``, None: no crop) in object-frame units; ``min_mass_fraction`` in
    [0, 1] (1 keeps only the heaviest component; ``floaters=False`` skips the component search)."""

    min_opacity: float = DEFAULT_MIN_OPACITY
    floaters: bool = True
    link: float = DEFAULT_LINK
    min_mass_fraction: float = DEFAULT_MIN_MASS_FRACTION
    crop: tuple[Sequence[float], Sequence[float]] | None = None


@dataclass(frozen=True)
class CleanupResult:
    """A keep-mask ``keep`` ``(N,)`` bool tensor and how many visible splats each rule removed; a
    splat is counted once, under the first rule that removed it (faint, then crop, then floater).
    ``total`` = N; ``invisible``: the splats below the export cut (never kept, not counted)."""

    keep: torch.Tensor
    total: int
    invisible: int
    faint: int
    cropped: int
    floaters: int
    components: int          # connected components among the splats the other rules kept

    @property
    def kept(self) -> int:
        return int(self.keep.sum())

    @property
    def visible(self) -> int:
        return self.total - self.invisible

    @property
    def removed(self) -> int:
        """Visible splats removed: ``faint + cropped + floaters`` (= ``visible - kept``)."""
        return self.faint + self.cropped + self.floaters

    def summary(self) -> str:
        """One line: what would be removed, by rule."""
        return (f"removes {self.removed:,} of {self.visible:,} splats ({self.faint:,} faint, "
                f"{self.cropped:,} outside the box, {self.floaters:,} floaters); keeps {self.kept:,}")


def _check_single(gaussians: Gaussians) -> None:
    if len(gaussians.shape) != 1:
        raise ValueError(f"clean-up takes one set of splats (N,), got shape {tuple(gaussians.shape)}")


def faint_mask(gaussians: Gaussians, min_opacity: float = DEFAULT_MIN_OPACITY) -> torch.Tensor:
    """Keep the splats whose opacity is at least ``min_opacity``: ``(N,)`` bool."""
    _check_single(gaussians)
    return gaussians.opacities.detach() >= float(min_opacity)


def crop_mask(gaussians: Gaussians, lo: Sequence[float], hi: Sequence[float]) -> torch.Tensor:
    """Keep the splats whose centre lies in the box ``lo`` ≤ centre ≤ ``hi`` (per axis x, y, z,
    object-frame units; bounds included): ``(N,)`` bool."""
    _check_single(gaussians)
    m = gaussians.means.detach()
    lo_t = torch.as_tensor(lo, dtype=m.dtype, device=m.device).reshape(3)
    hi_t = torch.as_tensor(hi, dtype=m.dtype, device=m.device).reshape(3)
    return ((m >= lo_t) & (m <= hi_t)).all(-1)


def component_labels(means: np.ndarray, link: float = DEFAULT_LINK) -> tuple[np.ndarray, int]:
    """Connected components of points ``(N, 3)``: points in the same or touching cells of side
    ``link`` are connected. Returns ``(labels (N,) int, number of components)``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    if link <= 0:
        raise ValueError(f"link must be > 0, got {link}")
    n = len(means)
    if n == 0:
        return np.zeros(0, np.int64), 0
    cells = np.floor(np.asarray(means, np.float64) / link).astype(np.int64)
    uniq, inverse = np.unique(cells, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    m = len(uniq)
    pairs = cKDTree(uniq.astype(np.float64)).query_pairs(r=1.75, output_type="ndarray")  # √3 < 1.75 < 2
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(m, m))
    count, cell_labels = connected_components(graph, directed=False)
    return cell_labels[inverse], int(count)


def floater_mask(gaussians: Gaussians, link: float = DEFAULT_LINK,
                 min_mass_fraction: float = DEFAULT_MIN_MASS_FRACTION,
                 candidates: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """Keep the splats of the heaviest connected component and of every component holding at least
    ``min_mass_fraction`` of the opacity mass (module docstring); only ``candidates`` ``(N,)`` bool
    (default: all) take part, the others are not kept. Returns ``(keep (N,) bool, components)``."""
    _check_single(gaussians)
    n = gaussians.num_gaussians
    cand = torch.ones(n, dtype=torch.bool) if candidates is None else candidates.detach().cpu().bool()
    idx = torch.nonzero(cand).reshape(-1).numpy()
    keep = np.zeros(n, bool)
    if len(idx) == 0:
        return torch.from_numpy(keep).to(gaussians.device), 0
    means = gaussians.means.detach().cpu().double().numpy()[idx]
    weight = gaussians.opacities.detach().cpu().double().numpy()[idx]
    labels, count = component_labels(means, link)
    mass = np.bincount(labels, weights=weight, minlength=count)
    total = float(mass.sum())
    kept_components = mass >= float(min_mass_fraction) * total
    kept_components[int(np.argmax(mass))] = True
    keep[idx] = kept_components[labels]
    return torch.from_numpy(keep).to(gaussians.device), count


def cleanup_mask(gaussians: Gaussians, settings: CleanupSettings = CleanupSettings()) -> CleanupResult:
    """All the rules of ``settings`` in turn (faint, crop, floaters): the keep-mask and its counts."""
    _check_single(gaussians)
    n = gaussians.num_gaussians
    keep = faint_mask(gaussians, MIN_EXPORT_OPACITY).cpu()
    invisible = n - int(keep.sum())
    bright = faint_mask(gaussians, settings.min_opacity).cpu()
    faint = int((keep & ~bright).sum())
    keep &= bright
    cropped = 0
    if settings.crop is not None:
        inside = crop_mask(gaussians, *settings.crop).cpu()
        cropped = int((keep & ~inside).sum())
        keep &= inside
    floaters, components = 0, 0
    if settings.floaters:
        connected, components = floater_mask(gaussians, settings.link, settings.min_mass_fraction, keep)
        connected = connected.cpu()
        floaters = int((keep & ~connected).sum())
        keep &= connected
    return CleanupResult(keep.to(gaussians.device), n, invisible, faint, cropped, floaters, components)


def apply_keep(gaussians: Gaussians, keep: torch.Tensor, *, compact: bool = True) -> Gaussians:
    """The cleaned set: ``compact`` drops the removed splats (``(K,)`` splats remain); otherwise the
    set keeps its ``N`` slots in order (samples of a generator are merged slot by slot when
    resampled) and the removed ones become fully transparent (:data:`REMOVED_LOGIT`), which every
    export leaves out. The input is not changed; unchanged fields share its tensors."""
    _check_single(gaussians)
    keep = keep.to(gaussians.device).bool()
    if compact:
        return gaussians[keep]
    logits = torch.where(keep, gaussians.opacity_logits,
                         torch.full_like(gaussians.opacity_logits, REMOVED_LOGIT))
    return replace(gaussians, opacity_logits=logits)


def preview_gaussians(gaussians: Gaussians, keep: torch.Tensor, *, hide: bool = False,
                      tint: Sequence[float] = (1.0, 0.1, 0.6), min_shown_opacity: float = 0.35) -> Gaussians:
    """What the viewport shows before a clean-up is applied: the kept splats unchanged and the
    removed ones in ``tint`` (RGB in [0, 1], no view-dependent colour) at least
    ``min_shown_opacity`` opaque so that faint ones show too; ``hide``: the kept splats only."""
    _check_single(gaussians)
    keep = keep.to(gaussians.device).bool()
    if hide:
        return gaussians[keep]
    from .gaussians import rgb_to_sh0

    removed = ~keep
    sh = gaussians.sh.clone()
    sh[removed] = 0.0
    sh[removed, 0, :] = rgb_to_sh0(torch.tensor(tint, dtype=sh.dtype, device=sh.device))
    floor = float(np.log(min_shown_opacity) - np.log1p(-min_shown_opacity))
    logits = torch.where(removed, gaussians.opacity_logits.clamp_min(floor), gaussians.opacity_logits)
    return replace(gaussians, sh=sh, opacity_logits=logits)
