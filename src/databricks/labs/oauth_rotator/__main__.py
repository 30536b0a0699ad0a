"""`python -m databricks.labs.oauth_rotator [run] [flags]`: the rotator as the background service runs it."""

from databricks.labs.oauth_rotator.commands.rotator_script import rotator_main

if __name__ == "__main__":
    import sys

    args = sys.argv[1:]
    rotator_main(args[1:] if args[:1] == ["run"] else args)
