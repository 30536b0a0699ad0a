"""The `databricks labs install oauth-rotator` hook: the installer's questions, the config, the service if chosen.

The CLI runs it as `<venv python> install.py` from the project's folder, with no payload, the login it resolved
in the environment, and the terminal's stdin for the answers; `databricks labs upgrade` runs it again. With no
terminal and a saved config (an upgrade from a script), it keeps the config and updates the service without
asking. Errors are one line and a non-zero exit code.
"""

import sys


def main() -> int:
    from databricks.labs.blueprint.tui import Prompts

    from databricks.labs.oauth_rotator.app.configure import configure, keep
    from databricks.labs.oauth_rotator.commands.way_out import say
    from databricks.labs.oauth_rotator.errors import RotatorError
    from databricks.labs.oauth_rotator.paths import default_config_file

    try:
        if default_config_file().is_file() and not sys.stdin.isatty():
            keep()
        else:
            configure(Prompts())
    except RotatorError as err:  # one escaped, redacted line, as every entry point's way out writes it
        say("oauth-rotator install", str(err))
        return err.exit_code
    except (EOFError, KeyboardInterrupt):
        print("oauth-rotator install: cancelled before every question was answered", file=sys.stderr)
        return 1
    except ValueError as err:  # blueprint's prompts give up after ten unusable answers
        say("oauth-rotator install", str(err))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
