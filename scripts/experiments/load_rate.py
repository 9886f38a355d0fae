"""How fast a packed split reaches the training device: decode (threads) + copy, views/s.

    python3 scripts/experiments/load_rate.py PACKED [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from splatgen.core.training.viewbank import load_view_bank, loading_rate

ap = argparse.ArgumentParser()
ap.add_argument("packed")
ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
a = ap.parse_args()
t = time.perf_counter()
bank = load_view_bank(a.packed, a.device, cache_dir=None)
if bank.images.is_cuda:
    torch.cuda.synchronize()
print(f"{a.packed}: {bank.num_objects} objects x {bank.views_per_object} views to {a.device} on "
      f"{os.cpu_count()} CPU threads: {loading_rate(bank, time.perf_counter() - t)}")
