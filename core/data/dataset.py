"""The training dataset: objects with one input view and target views, cameras relative to the input.

:class:`MultiViewDataset` reads either form of a dataset:

* a folder built by ``splatgen data build`` (``dataset.json`` + one folder per object with
  ``transforms.json`` and RGBA PNGs), or
* a folder packed by ``splatgen data pack`` (``index.json`` + safetensors shards of WebP views).

One item is one object. In training mode the input view is drawn at random and the targets are
the input view followed by ``num_targets - 1`` other views drawn at random (without repeats); in
evaluation mode (``eval_mode=True``) the input is frame 0 and the targets are frames
``0 … num_targets - 1`` — the same every time. Reconstruction happens in the input camera's frame,
so target cameras are returned relative to the input camera (which becomes the identity).

Randomness comes from torch's default generator, which :class:`torch.utils.data.DataLoader` seeds
per worker. Decoding happens in ``__getitem__`` so it spreads across DataLoader workers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from .. import framing
from ..cameras import load_transforms, relative_viewmats
from ..errors import DatasetError

__all__ = ["MultiViewDataset", "decode_view", "load_split_arrays"]


try:  # OpenCV decodes WebP about twice as fast as Pillow; the GPU machine's image may lack it
    import cv2 as _cv2
except ImportError:  # pragma: no cover - depends on the machine
    _cv2 = None


def decode_view(data: bytes | np.ndarray, name: str = "<view>") -> np.ndarray:
    """Encoded image bytes (WebP / PNG) → ``(H, W, 4)`` uint8 straight RGBA.

    Anything else, and truncated or corrupt data, raise :class:`DatasetError` naming ``name``."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
    head = buf[:12].tobytes()
    if not (head.startswith(_PNG_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")):
        raise DatasetError(f"{name}: not a PNG or WebP view")
    img = _cv2.imdecode(buf, _cv2.IMREAD_UNCHANGED) if _cv2 is not None else None
    if img is None:
        from ..errors import ImageError
        from ..image_loading import VIEW_FORMATS, read_rgba

        try:
            return read_rgba(buf.tobytes(), name=name, formats=VIEW_FORMATS, max_pixels=None)
        except ImageError as exc:
            raise DatasetError(str(exc)) from None
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 3:
        return np.concatenate([img[..., ::-1], np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return np.ascontiguousarray(img[..., [2, 1, 0, 3]])  # OpenCV decodes BGRA


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------- the two storage forms
class _FolderSource:
    """Object folders of a built dataset (``dataset.json`` at the root)."""

    def __init__(self, root: Path, split: str):
        from .build import load_index

        index = load_index(root)
        if split not in index["splits"]:
            raise DatasetError(f"{root}: no split {split!r} (has {', '.join(index['splits'])})")
        self.root = root
        self.ids = list(index["splits"][split])
        self.meta = index.get("objects", {})
        self.size = int(index["size"])

    def cameras(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        cams = self._cams(i)
        return cams.viewmats, cams.Ks

    def _cams(self, i: int):
        folder = self.root / self.ids[i]
        try:
            return load_transforms(folder)
        except Exception as exc:  # noqa: BLE001 - name the object
            raise DatasetError(f"{folder}: {exc}") from None

    def views(self, i: int, which: list[int]) -> np.ndarray:
        cams = self._cams(i)
        folder = self.root / self.ids[i]
        out = []
        for j in which:
            path = folder / cams.file_paths[j]
            try:
                out.append(decode_view(np.fromfile(path, dtype=np.uint8), str(path)))
            except OSError as exc:
                raise DatasetError(f"{path}: cannot read view ({exc})") from None
        return np.stack(out)


class _PackedSource:
    """Shards written by :func:`splatgen.core.data.pack.pack_dataset` (``index.json`` at the root)."""

    def __init__(self, root: Path, split: str):
        try:
            index = json.loads((root / "index.json").read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{root / 'index.json'}: unreadable ({exc})") from None
        splits = index.get("splits") or {}
        if split not in splits:
            raise DatasetError(f"{root}: no packed split {split!r} (has {', '.join(splits) or 'none'})")
        self.root = root
        self.size = int(index["size"])
        self.meta = index.get("objects", {})
        self.ids, self.where = [], []
        for s, shard in enumerate(splits[split]):
            for k, oid in enumerate(shard["objects"]):
                self.ids.append(oid)
                self.where.append((shard["file"], k))
        self._cache: dict[str, dict[str, np.ndarray]] = {}
        self._pid = None

    def _arrays(self, i: int) -> tuple[dict[str, np.ndarray], str]:
        from safetensors.numpy import load_file

        if self._pid != os.getpid():  # fresh cache in every DataLoader worker
            self._cache, self._pid = {}, os.getpid()
        file, k = self.where[i]
        if file not in self._cache:
            try:
                self._cache[file] = load_file(str(self.root / file))
            except Exception as exc:  # noqa: BLE001
                raise DatasetError(f"{self.root / file}: unreadable shard ({exc})") from None
        return self._cache[file], f"{k:05d}."

    def cameras(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        arrays, p = self._arrays(i)
        return torch.from_numpy(arrays[p + "viewmats"].copy()), torch.from_numpy(arrays[p + "Ks"].copy())

    def surface(self, i: int) -> np.ndarray | None:
        """Object ``i``'s surface samples ``(M, 3)`` float32 in the normalised frame, or None when its shard
        has none (packs made before they were packed, or splits packed without them)."""
        arrays, p = self._arrays(i)
        points = arrays.get(p + "surface")
        return None if points is None else points.astype(np.float32)

    def views(self, i: int, which: list[int]) -> np.ndarray:
        arrays, p = self._arrays(i)
        data, offsets = arrays[p + "images"], arrays[p + "offsets"]
        name = f"{self.root / self.where[i][0]}: object {self.ids[i]} view"
        return np.stack([decode_view(data[offsets[j]:offsets[j + 1]], f"{name} {j}") for j in which])

    def __getstate__(self):  # never ship loaded shards to worker processes
        state = dict(self.__dict__)
        state["_cache"], state["_pid"] = {}, None
        return state


# ---------------------------------------------------------------------- the dataset
class MultiViewDataset(torch.utils.data.Dataset):
    """Objects of one split as (input view, target views) pairs; see the module docstring.

    Args:
        root: a built dataset folder (``dataset.json``) or a packed one (``index.json``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        num_targets: target views per item, T ≥ 1; the first is the input view itself.
        eval_mode: input frame 0 and targets frames 0…T-1, instead of random ones.
        background: RGB in [0, 1] the images are composited on (default: the canonical one).

    An item is a dict:

    * ``image`` ``(3, H, W)`` float32 in [0, 1] — input view composited on ``background``;
    * ``alpha`` ``(1, H, W)`` float32 — its alpha;
    * ``K`` ``(3, 3)`` — the input camera's intrinsics (pixels);
    * ``target_images`` ``(T, 3, H, W)``, ``target_alphas`` ``(T, 1, H, W)`` — likewise;
    * ``target_viewmats`` ``(T, 4, 4)`` — OpenCV world-to-camera of the targets with the input
      camera's frame as world: ``V_target @ inv(V_input)``; the input camera is the identity;
    * ``target_Ks`` ``(T, 3, 3)``;
    * ``input_viewmat`` ``(4, 4)`` — the input camera in the dataset's world frame (to go back);
    * ``input_index`` int, ``target_indices`` ``(T,)`` int64 — frame numbers;
    * ``object_id``, ``category`` — strings.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", num_targets: int = 4,
                 eval_mode: bool = False, background: tuple[float, float, float] = framing.BACKGROUND):
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"{root}: no such dataset folder")
        if (root / "index.json").is_file():
            self.source = _PackedSource(root, split)
        elif (root / "dataset.json").is_file():
            self.source = _FolderSource(root, split)
        else:
            raise DatasetError(f"{root}: neither a built dataset (dataset.json) nor a packed one (index.json)")
        if not self.source.ids:
            raise DatasetError(f"{root}: split {split!r} has no objects (the split is a hash of the object id, "
                               "so a small dataset can leave val or test empty)")
        if num_targets < 1:
            raise DatasetError(f"num_targets must be at least 1 (got {num_targets})")
        self.root, self.split = root, split
        self.num_targets = int(num_targets)
        self.eval_mode = bool(eval_mode)
        self.background = torch.tensor(background, dtype=torch.float32).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.source.ids)

    @property
    def object_ids(self) -> list[str]:
        return list(self.source.ids)

    def _choose(self, n_views: int) -> tuple[int, list[int]]:
        T = self.num_targets
        if T > n_views:
            raise DatasetError(f"{self.root}: asked for {T} target views, objects have {n_views}")
        if self.eval_mode:
            return 0, list(range(T))
        inp = int(torch.randint(n_views, (1,)))
        others = torch.randperm(n_views - 1)[: T - 1]
        others = [int(j) + (int(j) >= inp) for j in others]  # skip the input view
        return inp, [inp] + others

    def _composite(self, rgba: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, H, W, 4)`` uint8 → images ``(N, 3, H, W)`` on the background, alphas ``(N, 1, H, W)``."""
        x = torch.from_numpy(rgba).permute(0, 3, 1, 2).float().div_(255.0)
        rgb, alpha = x[:, :3], x[:, 3:4]
        return rgb * alpha + self.background * (1.0 - alpha), alpha

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        viewmats, Ks = self.source.cameras(i)
        inp, targets = self._choose(len(viewmats))
        which = [inp] + [t for t in targets if t != inp]
        rgba = self.source.views(i, which)
        images, alphas = self._composite(rgba)
        pos = {j: n for n, j in enumerate(which)}
        t_idx = [pos[t] for t in targets]
        V_in = viewmats[inp]
        oid = self.source.ids[i]
        return {
            "image": images[0],
            "alpha": alphas[0],
            "K": Ks[inp].float(),
            "target_images": images[t_idx],
            "target_alphas": alphas[t_idx],
            "target_viewmats": relative_viewmats(viewmats[targets].float(), V_in.float()),
            "target_Ks": Ks[targets].float(),
            "input_viewmat": V_in.float(),
            "input_index": inp,
            "target_indices": torch.tensor(targets, dtype=torch.int64),
            "object_id": oid,
            "category": str((self.source.meta.get(oid) or {}).get("category", "")),
        }


# ---------------------------------------------------------------------- a whole split in memory
def load_split_arrays(root: str | os.PathLike, split: str = "train", workers: int | None = None,
                      progress: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode every view of a split at once (the GPU trainer's view bank).

    ``root`` is a built or packed dataset root. Returns ``images`` ``(O, V, S, S, 4)`` uint8 straight
    RGBA, ``viewmats`` ``(O, V, 4, 4)`` float32 OpenCV world-to-camera in the dataset's world frame,
    and the object ids. Objects must all have the same number of views (``splatgen data build``
    renders the same count for every object). Decoding runs on a thread pool (OpenCV and Pillow
    release the GIL while decoding).
    """
    from concurrent.futures import ThreadPoolExecutor

    ds = MultiViewDataset(root, split=split, num_targets=1)
    src = ds.source
    cams = [src.cameras(i)[0] for i in range(len(ds))]
    counts = {len(c) for c in cams}
    if len(counts) != 1:
        raise DatasetError(f"{root}: objects of split {split!r} have different view counts {sorted(counts)}")
    n_views = counts.pop()

    def load(i: int) -> np.ndarray:
        return src.views(i, list(range(n_views)))

    workers = workers or min(16, (os.cpu_count() or 2))
    with ThreadPoolExecutor(workers) as pool:
        it = pool.map(load, range(len(ds)))
        if progress:
            from tqdm import tqdm

            it = tqdm(it, total=len(ds), desc=f"loading {split}", unit="obj")
        images = np.stack(list(it))
    return images, torch.stack(cams).float().numpy(), ds.object_ids
