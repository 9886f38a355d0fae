# %% [markdown]
# # How diverse are the samples of one photo?
#
# A notebook-style script (cells marked `# %%`; runs as a plain script too). Make a sample set first:
#
#     splatgen generate assets/examples/armchair.png -n 8 --samples-file armchair.safetensors
#
# then: `python docs/examples/sample_diversity.py armchair.safetensors diversity.png`

# %%
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from splatgen.core.geometry_metrics import WeightedPoints, chamfer  # noqa: E402
from splatgen.core.sample_sets import load_sample_set  # noqa: E402

path, out = (sys.argv[1:3] + ["diversity.png"])[:2] if len(sys.argv) > 1 else ("armchair.safetensors", "diversity.png")
sset = load_sample_set(path)
print(f"{len(sset.gaussians)} samples of {sset.info.get('name') or path}, model {sset.info.get('model')}, "
      f"seeds {sset.seeds}")

# %% [markdown]
# Pairwise Chamfer distance between samples (splat centres weighted by opacity; world units, the
# object's radius is 0.5): 0 = the same shape.

# %%
points = [WeightedPoints.of(g.means.numpy(), g.opacities.numpy()) for g in sset.gaussians]
n = len(points)
distance = np.zeros((n, n))
for i in range(n):
    for j in range(i + 1, n):
        distance[i, j] = distance[j, i] = chamfer(points[i], points[j])
print("mean pairwise Chamfer", distance[np.triu_indices(n, 1)].mean() if n > 1 else float("nan"))

# %% [markdown]
# Where do the samples disagree? The per-splat spread against whether the photo shows the splat:
# what the photo shows should hardly move between samples; the invented side is where they differ.

# %%
visible = (sset.gaussians[0].opacities > 0.1).numpy()
observed = sset.observed[0].numpy()[visible]
spread = sset.spread.numpy()[visible]
seen = observed > 0.5
print(f"median spread: observed splats {np.median(spread[seen]):.4f}, invented {np.median(spread[~seen]):.4f}")

fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
a.imshow(distance, cmap="viridis")
a.set_title("pairwise Chamfer between samples")
a.set_xlabel("sample")
a.set_ylabel("sample")
bins = np.linspace(0, max(float(spread.max()), 1e-6), 40)
b.hist(spread[seen], bins, alpha=0.6, label="observed (the photo shows it)")
b.hist(spread[~seen], bins, alpha=0.6, label="invented")
b.set_xlabel("spread across samples (world units)")
b.legend()
fig.tight_layout()
fig.savefig(out, dpi=100)
print("wrote", out)
