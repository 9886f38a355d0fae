"""The lights a dataset object is rendered under: fixed in the world, varied from object to object.

Splats carry view-independent colour, so an object's lights must not move between its views
(contradictory targets average into grey); they vary between objects so that a model sees
surfaces under many lights, as in photos. :func:`sample_lighting` draws an object's lights from
``(seed, object_id)`` alone, within these ranges (world frame, Y up):

==================  ==========================================================================
key light           direction: azimuth uniform in [0°, 360°), elevation uniform in
                    ``KEY_ELEVATION_DEG``; colour: a black body of temperature uniform in
                    ``KELVIN_RANGE`` (warm tungsten to overcast daylight), scaled to luminance 1;
                    intensity uniform in ``KEY_RANGE``
fill light          opposite the key (azimuth + 180° ± 40°), elevation in ``FILL_ELEVATION_DEG``,
                    neutral white, intensity uniform in ``FILL_RANGE``
ambient             neutral, uniform in ``AMBIENT_RANGE``, plus ``SKY`` · n_y (surfaces facing up
                    a little brighter)
==================  ==========================================================================

:data:`DEFAULT_LIGHTING` is the fixed rig used outside dataset builds (a key from above-front-right,
a weaker fill from behind-left): the renderer's lighting when none is given.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import numpy as np

#: The default rig: (unit direction towards the light, intensity); ambient and sky terms.
KEY_LIGHT = ((0.45, 0.75, 0.5), 0.55)
FILL_LIGHT = ((-0.6, 0.25, -0.55), 0.25)
AMBIENT = 0.32  # + SKY · n_y: surfaces facing up are a little brighter than those facing down
SKY = 0.08

#: Ranges of per-object lighting (see the module docstring).
KEY_ELEVATION_DEG = (20.0, 70.0)
KELVIN_RANGE = (3500.0, 7500.0)
KEY_RANGE = (0.45, 0.65)
FILL_ELEVATION_DEG = (5.0, 35.0)
FILL_RANGE = (0.12, 0.30)
AMBIENT_RANGE = (0.24, 0.38)


@dataclass(frozen=True)
class Lighting:
    """Lights in the world frame: unit directions towards the lights, linear RGB intensities."""

    key_dir: tuple[float, float, float]
    key_rgb: tuple[float, float, float]
    fill_dir: tuple[float, float, float]
    fill_rgb: tuple[float, float, float]
    ambient_rgb: tuple[float, float, float]
    sky: float = SKY
    kelvin: float | None = None

    def meta(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _unit(v) -> tuple[float, float, float]:
    a = np.asarray(v, dtype=np.float64)
    return tuple(float(x) for x in a / np.linalg.norm(a))


DEFAULT_LIGHTING = Lighting(
    key_dir=_unit(KEY_LIGHT[0]), key_rgb=(KEY_LIGHT[1],) * 3,
    fill_dir=_unit(FILL_LIGHT[0]), fill_rgb=(FILL_LIGHT[1],) * 3,
    ambient_rgb=(AMBIENT,) * 3, sky=SKY)


def kelvin_to_rgb(kelvin: float) -> tuple[float, float, float]:
    """Colour of a black body at ``kelvin`` (1000–40000 K) as RGB scaled to Rec. 709 luminance 1.

    Tanner Helland's fit to the CIE 1964 black-body colours (sRGB-like values), normalised so that
    only the tint changes, not the brightness.
    """
    t = min(max(kelvin, 1000.0), 40000.0) / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * math.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307)
    rgb = np.clip([r, g, b], 0, 255) / 255.0
    lum = float(rgb @ [0.2126, 0.7152, 0.0722])
    return tuple(float(c) for c in rgb / lum)


def _direction(azimuth_deg: float, elevation_deg: float) -> tuple[float, float, float]:
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return (math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az))


def sample_lighting(seed: int, object_id: str) -> Lighting:
    """The lights of one object: depends only on ``(seed, object_id)``; ranges in the module docstring."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(f"light:{seed}:{object_id}".encode()).digest()[:8], "big"))
    az = rng.uniform(0.0, 360.0)
    kelvin = float(rng.uniform(*KELVIN_RANGE))
    key = float(rng.uniform(*KEY_RANGE))
    tint = kelvin_to_rgb(kelvin)
    fill = float(rng.uniform(*FILL_RANGE))
    amb = float(rng.uniform(*AMBIENT_RANGE))
    return Lighting(
        key_dir=_direction(az, rng.uniform(*KEY_ELEVATION_DEG)),
        key_rgb=tuple(key * c for c in tint),
        fill_dir=_direction(az + 180.0 + rng.uniform(-40.0, 40.0), rng.uniform(*FILL_ELEVATION_DEG)),
        fill_rgb=(fill,) * 3,
        ambient_rgb=(amb,) * 3,
        sky=SKY,
        kelvin=kelvin,
    )
