"""The one-step generator's distillation data (seed 002, DD3G; issue #33).

* :mod:`.images` — the distillation image set: RGBA images of single objects and no 3D (photos among
  Debian's tuxpaint stamps, and a packed dataset's views), framed as the generator's input.
* :mod:`.collect` — the teacher's quadruples {noise, cameras, input image, output views} over that
  set, written in shards that stream to the GPU like the training data.
"""
