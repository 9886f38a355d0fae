"""Errors the user can cause and fix; the CLI and GUI show their message as one line, no traceback."""


class SplatgenError(Exception):
    """Base of all expected, user-facing errors. The message names the file/value and the problem."""


class SplatFileError(SplatgenError, ValueError):
    """A splat file (``.ply`` / ``.splat``) cannot be read or written."""


class DatasetError(SplatgenError, ValueError):
    """A dataset folder is missing, empty or malformed."""


class ImageError(SplatgenError, ValueError):
    """An input image cannot be read or prepared (not an image, empty, too small or large, no object)."""


class SettingsError(SplatgenError, ValueError):
    """A generation setting is out of range, or a generator was built from parts that do not fit."""


class ModelError(SplatgenError, ValueError):
    """A model folder is missing, incomplete, corrupted or of the wrong kind."""


class SplatgenWarning(UserWarning):
    """Something works but probably not as meant (a splat file that renders blank, say); the CLI
    prints it as one ``warning:`` line."""
