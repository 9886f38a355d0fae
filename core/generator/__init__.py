"""The Generator API: one prepared photo in, Gaussian-splat samples out.

>>> from splatgen.core.generator import load_generator, GenerationSettings
>>> from splatgen.core.imageprep import prepare_image
>>> gen = load_generator()                      # the shipped latent diffusion model, CPU or CUDA
>>> prepared = prepare_image("chair.jpg")
>>> samples = gen.generate(prepared.image, GenerationSettings(num_samples=4, seed=7),
...                        on_sample=lambda sample, i: print("got", i))
>>> again = gen.resample(prepared.image, samples[0], "occluded", seed=8)
>>> steep = gen.generate(prepared.image, GenerationSettings(elevation=45))   # a photo from 45° above
>>> steep[0].info["camera"], steep[0].info.get("notices")                    # what was used, what was not

This package is the pipeline; the networks it runs live in :mod:`splatgen.core.models`.
``base`` (the API every generator shares) · ``registry`` (which generators exist; loading) ·
``model_folder`` (manifests, weights on disk) · one module per generator (``latent_diffusion``,
``regressor``) · what they share: ``sampling`` / ``guidance`` / ``step_graphs`` (the guided
denoising loop, eager or as CUDA graphs), ``teacher`` (the regressor as a teacher), ``resample``.

A new generator: one module here with a :class:`Generator` subclass (its ``kind``, ``from_folder``,
``generate``), plus one entry in :data:`~.registry.GENERATORS`. A model folder whose manifest has
that ``kind`` then appears in the GUI's model list, ``--model`` of the CLI, the browser panel and
``splatgen eval``.
"""

from ..errors import ModelError, SettingsError
from .base import (INPUT_ELEVATION_DEG, MAX_SAMPLES, MAX_STEPS, Cancelled, GenerationSettings, Generator, Sample,
                   input_camera, to_object_frame)
from .latent_diffusion import LatentDiffusionGenerator
from .model_folder import models_dir
from .regressor import RegressorGenerator
from .registry import GENERATORS, available_models, load_generator

__all__ = ["Generator", "GenerationSettings", "Sample", "load_generator", "available_models", "models_dir",
           "GENERATORS", "ModelError", "SettingsError", "Cancelled", "LatentDiffusionGenerator",
           "RegressorGenerator", "input_camera", "to_object_frame", "INPUT_ELEVATION_DEG", "MAX_SAMPLES",
           "MAX_STEPS"]
