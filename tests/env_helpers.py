"""The environment for tests that start ``python -m learnafe`` (or ``python -c``) in a subprocess.

The subprocess imports the same ``learnafe`` the test process imported: the source tree with a
development build beside it, or the installed wheel. Pointing ``PYTHONPATH`` at the source tree
instead would hide an installed wheel's compiled extension.
"""

import os
from pathlib import Path

import learnafe

PACKAGE_PARENT = str(Path(learnafe.__file__).resolve().parent.parent)


def package_env(base=None, **extra) -> dict:
    """A copy of ``base`` (default ``os.environ``) whose PYTHONPATH starts with the directory that
    holds the imported ``learnafe``, plus ``extra`` variables."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env
