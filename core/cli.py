"""The ``splatgen`` command line.

Each subcommand lives next to the code it drives, in a module that defines
``register(subparsers)``; that function adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning an exit code. This module only assembles them and turns the
project's expected errors into one clear line on stderr (never a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, what it adds) in the order `--help` lists them.
COMMAND_MODULES = (
    "splatgen.core.commands.generate",
    "splatgen.core.commands.render",
    "splatgen.core.commands.view",
    "splatgen.core.data.cli",
    "splatgen.core.training.cli",
    "splatgen.core.commands.eval",
    "splatgen.core.commands.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="splatgen",
        description="Generate 3D Gaussian splats from one photo; build data, train, evaluate, view.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency, not a command not written yet
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("splatgen: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - turned into one clear line for expected error types
        if _is_user_error(exc):
            print(f"splatgen {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


def _is_user_error(exc: Exception) -> bool:
    from .errors import SplatgenError

    return isinstance(exc, (SplatgenError, FileNotFoundError, PermissionError, IsADirectoryError))


if __name__ == "__main__":
    sys.exit(main())
