"""The ``splatgen`` command line.

Every subcommand is one module in :mod:`splatgen.core.commands` with two functions:
``add_parser(subparsers)`` adds its parser (options, sub-steps) and returns it, and ``run(args)``
runs it on the parsed arguments and returns the exit code. The work itself lives in the package the
command drives (``data/``, ``training/``, ``generator/``, …). This module only assembles the
commands and turns the project's expected errors into one clear line on stderr (never a traceback).
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
    "splatgen.core.commands.data",
    "splatgen.core.commands.train",
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
        command = module.add_parser(sub)
        command.set_defaults(func=module.run, command_parser=command)
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
