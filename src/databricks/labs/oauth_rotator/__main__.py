"""`python -m databricks.labs.oauth_rotator [run] [flags]`: the rotator as the background service runs it."""

from databricks.labs.oauth_rotator.commands.rotator_script import rotator_main

if __name__ == "__main__":
    import os
    import sys

    args = sys.argv[1:]
    try:
        rotator_main(args[1:] if args[:1] == ["run"] else args)
    except SystemExit as done:
        if done.code != 2:  # rotation.daemon.CONFIG_ERROR_EXIT, not imported here: --version and --help stay light
            raise
        from databricks.labs.oauth_rotator.rotation.daemon import config_error_exit_code

        # An unusable configuration, found by the entry point or by a cycle, exits as the service asked: launchd's
        # KeepAlive relaunches on any non-zero exit, so its agent asks for 0 (see `config_error_exit_code`).
        sys.exit(config_error_exit_code(os.environ))
