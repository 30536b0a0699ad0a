"""The `databricks labs uninstall oauth-rotator` hook: stop and remove the background service.

The CLI deletes the project's folder, virtualenv included, right after this hook succeeds, so the service must
not outlive it. A service that is not installed is a no-op that says so; `.pgpass` lines stay (they expire).
Run by path with no payload: imports are absolute, and the script's own folder is dropped from sys.path.
"""

import os
import sys


def main() -> int:
    from databricks.labs.oauth_rotator.app.service import LINES_STAY
    from databricks.labs.oauth_rotator.errors import RotatorError
    from databricks.labs.oauth_rotator.service import ServiceError, for_platform

    try:
        manager = for_platform()
    except ServiceError as err:  # no background service on this OS: nothing can be running
        print(f"oauth-rotator: nothing to stop ({err.args[0]})")
        return 0
    try:
        print(manager.uninstall())
    except RotatorError as err:
        # Failing stops the CLI from deleting the virtualenv under a service that still runs from it.
        from databricks.labs.oauth_rotator.commands.way_out import say

        say("oauth-rotator uninstall", str(err))
        return err.exit_code or 1
    print(LINES_STAY)
    return 0


if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    sys.exit(main())
