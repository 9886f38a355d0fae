"""The import layers hold: ``lint-imports`` checks the contracts in ``pyproject.toml``
(``[tool.importlinter]``: core never imports the app or Qt, the layers of core, the generator package)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_every_import_contract_is_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and "3 kept" in result.stdout, result.stdout


def test_a_broken_contract_fails(tmp_path):
    # the linter reads the real code: a contract the code breaks (the generator runs the networks) fails
    config = tmp_path / "broken.toml"
    config.write_text('[tool.importlinter]\nroot_packages = ["splatgen.core"]\n\n'
                      '[[tool.importlinter.contracts]]\nname = "generator without models"\ntype = "forbidden"\n'
                      'source_modules = ["splatgen.core.generator"]\nforbidden_modules = ["splatgen.core.models"]\n')
    result = lint_imports(config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "generator without models BROKEN" in result.stdout
    assert "splatgen.core.generator.latent_diffusion -> splatgen.core.models" in result.stdout
