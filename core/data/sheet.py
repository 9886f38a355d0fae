"""Contact sheets of a built dataset: one view of every object, tiled, one PNG a source."""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import numpy as np

from .. import framing
from .build import FRAME_NAME, load_index


def sheet_name(source: str) -> str:
    """File name of a source's contact sheet."""
    return f"sheet_{''.join(c if c.isalnum() or c in '-_' else '_' for c in source)}.png"


#: At most this many objects a sheet (spread evenly over the source), so a sheet stays a picture.
MAX_OBJECTS = 200


def contact_sheets(data: str | os.PathLike, out: str | os.PathLike | None = None, columns: int = 10,
                   frame: int = 0, max_objects: int = MAX_OBJECTS) -> list[Path]:
    """Write ``sheet_<source>.png`` (objects sorted by id — at most ``max_objects``, spread evenly —
    ``columns`` a row, view ``frame`` of each at most 128 px, composited on the framing's background,
    the category written under each) and return the paths."""
    from PIL import Image, ImageDraw

    from ..image_loading import VIEW_FORMATS, read_rgba

    data = Path(data)
    out = Path(out) if out is not None else data
    index = load_index(data)  # a wrong --data fails before --out is made
    out.mkdir(parents=True, exist_ok=True)
    by_source: dict[str, list[str]] = collections.defaultdict(list)
    for oid, o in sorted(index["objects"].items()):
        by_source[o.get("source") or o.get("library") or "objects"].append(oid)
    size, label = min(index["size"], 128), 12
    bg = tuple(int(round(c * 255)) for c in framing.BACKGROUND)
    written = []
    for source, ids in sorted(by_source.items()):
        if len(ids) > max_objects:
            ids = [ids[i] for i in dict.fromkeys(np.linspace(0, len(ids) - 1, max_objects).round().astype(int))]
        rows = (len(ids) + columns - 1) // columns
        sheet = Image.new("RGB", (columns * size, rows * (size + label)), bg)
        draw = ImageDraw.Draw(sheet)
        for k, oid in enumerate(ids):
            path = data / oid / FRAME_NAME.format(frame)
            if not path.is_file():
                continue
            img = Image.fromarray(read_rgba(path, formats=VIEW_FORMATS), "RGBA")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BOX)
            rgba = np.asarray(img, np.float32) / 255.0
            rgb = rgba[..., :3] * rgba[..., 3:] + np.asarray(framing.BACKGROUND, np.float32) * (1 - rgba[..., 3:])
            x, y = (k % columns) * size, (k // columns) * (size + label)
            sheet.paste(Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)), (x, y))
            draw.text((x + 2, y + size), str(index["objects"][oid].get("category", ""))[:20], fill=(60, 60, 60))
        name = out / sheet_name(source)
        sheet.save(name)
        written.append(name)
    (out / "sheets.json").write_text(json.dumps({p.name: len(by_source[s]) for p, s in
                                                  zip(written, sorted(by_source))}, indent=1))
    return written
