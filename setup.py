"""Package discovery for the layout pyproject.toml describes (everything else lives there).

The repository root holds core/, app/ and assets/, installed as splatgen.core, splatgen.app and
splatgen.assets; pyproject.toml alone cannot both rename them and find their sub-packages, so
every folder with an ``__init__.py`` under them is found here.
"""

from setuptools import find_packages, setup

ROOTS = ("core", "app", "assets")
packages = [f"splatgen.{root}" for root in ROOTS]
packages += [f"splatgen.{root}.{sub}" for root in ROOTS for sub in find_packages(root)]
setup(packages=packages)
