"""Start the splatgen desktop app: ``python main.py [IMAGE] [--generate]`` (the same as ``splatgen-gui``)."""

import sys


def main() -> int:
    try:
        from splatgen.app.main import main as app_main
    except ModuleNotFoundError as exc:
        if exc.name in ("splatgen", "splatgen.app", "splatgen.app.main"):
            print("main.py: splatgen is not installed here; run scripts/install.sh, then "
                  ".venv/bin/python main.py", file=sys.stderr)
            return 1
        raise
    return app_main()


if __name__ == "__main__":
    sys.exit(main())
