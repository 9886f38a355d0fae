"""Write an experiment's result as JSON with the command that produced it (``"command"``).

The command names the script, its arguments and the environment variables the experiments read
(``THREADS``, ``POSES``) where they were set, so a recorded figure can be re-run as it was made.
"""

from __future__ import annotations

import json
import os
import sys

ENV = ("THREADS", "POSES")


def save_result(result: dict, path: str) -> None:
    """Add ``result["command"]`` (this process's script, arguments and relevant environment) and write it to ``path``."""
    env = [f"{k}={os.environ[k]}" for k in ENV if k in os.environ]
    script = os.path.relpath(sys.argv[0])
    result["command"] = " ".join([*env, "python", script, *sys.argv[1:]])
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
