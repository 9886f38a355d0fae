"""The canonical framing: how every object is placed in front of every camera in splatgen.

Defined once here and used by the dataset builder, training, evaluation, image preparation and the
viewers alike, so that a photo prepared by the GUI looks like the views the model was trained on.

World space is Y-up (the OpenGL / nerfstudio convention on disk). An object is normalised so that
its bounding box is centred at the origin and its bounding sphere (half the box diagonal) has radius
`OBJECT_RADIUS`. Cameras sit on a sphere of radius `CAMERA_DISTANCE` around the origin, look at it,
keep world +Y up, and see it through a square pinhole of field of view `FOV_DEG`.
"""

from __future__ import annotations

import math

#: Side of the square model input and of every dataset view, pixels.
IMAGE_SIZE = 128
#: Full field of view of the square pinhole camera, degrees (horizontal = vertical).
FOV_DEG = 40.0
#: Distance from camera centre to the object centre (world origin), world units.
CAMERA_DISTANCE = 2.0
#: Radius of the normalised object's bounding sphere, world units.
OBJECT_RADIUS = 0.5
#: Elevation range of dataset cameras above the horizon, degrees (azimuth is uniform in [0, 360)).
ELEVATION_RANGE_DEG = (-10.0, 40.0)
#: Elevation assumed for an input photo's camera when it is neither set nor estimated, degrees: the
#: middle of the training range (see :mod:`splatgen.core.photo_camera`; it decides which way is up).
INPUT_ELEVATION_DEG = sum(ELEVATION_RANGE_DEG) / 2
#: Background colour every view is composited on, linear RGB in [0, 1].
BACKGROUND = (1.0, 1.0, 1.0)
#: Near / far planes for renderers that need them, world units.
NEAR = 0.05
FAR = 100.0


def focal_length(size: int = IMAGE_SIZE, fov_deg: float = FOV_DEG) -> float:
    """Focal length in pixels of the canonical camera for an image `size` pixels wide."""
    return 0.5 * size / math.tan(math.radians(fov_deg) / 2.0)


def object_fraction(fov_deg: float = FOV_DEG) -> float:
    """Fraction of the image half-width that the object's bounding sphere spans (about 0.71)."""
    return math.tan(math.asin(OBJECT_RADIUS / CAMERA_DISTANCE)) / math.tan(math.radians(fov_deg) / 2)
