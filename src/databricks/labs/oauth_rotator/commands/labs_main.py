"""The `databricks labs oauth-rotator` entrypoint (labs.yml): `labs_cli.main`, imported from its cached bytecode.

Python compiles the script it runs by path from source every time; it caches bytecode only for modules it
imports. For `labs_cli.py` that is 2.5 ms, a quarter of Python's start-up, on every `status` and `password`. This
file is all that is compiled; the commands live in `labs_cli` (which still runs by path too).
"""

import os
import sys


def main() -> None:
    """Drop this folder from sys.path (as `labs_cli` does), set up the namespace packages, run `labs_cli.main`."""
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == here:
        del sys.path[0]  # run by path, Python put this folder first, where `flags.py` or `api.py` would shadow
    from databricks_oauth_rotator.scripts import namespace_packages

    namespace_packages()  # before `databricks.labs...` is imported: without pkgutil
    from databricks.labs.oauth_rotator.commands.labs_cli import main as labs_main

    labs_main()


if __name__ == "__main__":
    main()
