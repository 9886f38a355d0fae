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
from contextlib import contextmanager

# (module, what it adds) in the order `--help` lists them.
COMMAND_MODULES = (
    "splatgen.core.commands.generate",
    "splatgen.core.commands.render",
    "splatgen.core.commands.mesh",
    "splatgen.core.commands.view",
    "splatgen.core.commands.data",
    "splatgen.core.commands.train",
    "splatgen.core.commands.distil",
    "splatgen.core.commands.eval",
    "splatgen.core.commands.bench",
    "splatgen.core.commands.doctor",
)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but a usage error is one line on stderr (exit status 2), like every other
    error of the command line; ``--help`` shows the usage. Sub-command parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    _finite_floats(parser)
    _shared_short_options(parser)
    return parser


#: Short options that mean one thing in every command: the long options each may stand for.
SHORT_OPTIONS = {"-o": ("--out", "--output", "--json", "--out-dir"), "-m": ("--model",), "-n": ("--samples",)}


def _shared_short_options(parser: argparse.ArgumentParser) -> None:
    """Give every option of :data:`SHORT_OPTIONS` its short form in every command that has it and
    where the short form is free (commands added by plugins too), so ``-o`` is the output everywhere."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _shared_short_options(sub)
            continue
        for short, longs in SHORT_OPTIONS.items():
            if set(action.option_strings) & set(longs) and short not in parser._option_string_actions:
                action.option_strings.insert(0, short)
                parser._option_string_actions[short] = action


def _finite_floats(parser: argparse.ArgumentParser) -> None:
    """Every option of every command declared ``type=float`` takes finite numbers only (``nan`` and
    ``inf`` are argparse errors): one place, so no command can forget it."""
    from .commands.common import finite_float

    for action in parser._actions:
        if action.type is float:
            action.type = finite_float
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _finite_floats(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from .commands.common import sigterm_as_interrupt

    try:
        with sigterm_as_interrupt(), _one_line_warnings(args.command):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("splatgen: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - turned into one clear line for expected error types
        if _is_user_error(exc):
            print(f"splatgen {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise


@contextmanager
def _one_line_warnings(command: str):
    """splatgen's own warnings (:class:`~splatgen.core.errors.SplatgenWarning`) print as one line
    ``splatgen COMMAND: warning: ...`` on stderr, not with Python's file and line."""
    import warnings

    from .errors import SplatgenWarning

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SplatgenWarning):
            print(f"splatgen {command}: warning: {message}", file=sys.stderr, flush=True)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", SplatgenWarning)
            yield
    finally:
        warnings.showwarning = original


def _is_user_error(exc: Exception) -> bool:
    from .errors import SplatgenError

    return isinstance(exc, (SplatgenError, FileNotFoundError, PermissionError, IsADirectoryError))


if __name__ == "__main__":
    sys.exit(main())
