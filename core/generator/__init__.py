"""The Generator API: one prepared photo in, Gaussian-splat samples out.

>>> from splatgen.core.generator import load_generator, GenerationSettings
>>> from splatgen.core.imageprep import prepare_image
>>> gen = load_generator()                      # the shipped latent diffusion model, CPU or CUDA
>>> prepared = prepare_image("chair.jpg")
>>> samples = gen.generate(prepared.image, GenerationSettings(num_samples=4, seed=7))
>>> again = gen.resample(prepared.image, samples[0], "occluded", seed=8)
"""

from .base import INPUT_ELEVATION_DEG, GenerationSettings, Generator, Sample, input_camera, to_object_frame
from .loading import ModelError, available_models, load_generator, models_dir
from .splatter import Cancelled, LatentDiffusionGenerator, RegressorGenerator, SettingsError

__all__ = ["Generator", "GenerationSettings", "Sample", "load_generator", "available_models", "models_dir",
           "ModelError", "SettingsError", "Cancelled", "LatentDiffusionGenerator", "RegressorGenerator",
           "input_camera", "to_object_frame", "INPUT_ELEVATION_DEG"]
