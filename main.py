"""Start the splatgen desktop app: ``python main.py [IMAGE] [--generate]`` (the same as ``splatgen-gui``)."""

import sys


def main() -> int:
    try:
        from splatgen.app.main import main as app_main
    except ModuleNotFoundError as exc:
        if exc.name in ("splatgen", "splatgen.app"):
            print("main.py: splatgen is not installed here; run scripts/install.sh, then "
                  ".venv/bin/python main.py", file=sys.stderr)
            return 1
        if exc.name != "splatgen.app.main":
            raise
        # TODO(gui): this branch goes once app/main.py exists.
        print("main.py: the splatgen desktop app (app/main.py) is not written yet; meanwhile use "
              "the command line: splatgen --help", file=sys.stderr)
        return 1
    return app_main()


if __name__ == "__main__":
    sys.exit(main())
