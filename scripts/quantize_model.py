"""Store a model folder's weights int8 (per output channel; small tensors fp16): half the bytes of fp16.

    python scripts/quantize_model.py SRC_FOLDER DST_FOLDER

Used for in-training checkpoints under ``checkpoints/`` so they fit the repository's size budget;
every loader (``splatgen.core.models.weights.read_weights``) reads the result as it reads fp16 folders.
Prints each folder's weight bytes and the largest relative error a tensor got.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from safetensors.torch import save_file

from splatgen.core.models.weights import quantize_int8, read_weights


def main(src: Path, dst: Path) -> None:
    weights = read_weights(src)
    stored = quantize_int8(weights)
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():  # config.json, splatgen.json, …: everything but the weights
        if f.is_file() and f.suffix != ".safetensors":
            shutil.copy2(f, dst / f.name)
    for old in dst.glob("*.safetensors"):
        old.unlink()
    save_file(stored, str(dst / "diffusion_pytorch_model.safetensors"))
    back = read_weights(dst)
    worst = max(float((back[k].float() - v.float()).abs().max() / v.float().abs().max().clamp_min(1e-12))
                for k, v in weights.items() if v.is_floating_point())
    size = lambda d: sum(f.stat().st_size for f in d.glob("*.safetensors"))  # noqa: E731
    print(f"{src} ({size(src) / 2**20:.2f} MiB) -> {dst} ({size(dst) / 2**20:.2f} MiB); "
          f"largest error of a tensor, relative to its largest value: {worst:.4f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
