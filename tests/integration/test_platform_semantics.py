"""The real scheduler as the Windows task runs it, under `pythonw.exe`'s semantics (issue #24, items 2 and 3).

Facts modelled, and their sources:
- `pythonw.exe` has no console: `sys.stderr` and `sys.__stderr__` are None (the `sys` documentation: "under some
  conditions stdin, stdout and stderr as well as the original values __stdin__, __stdout__ and __stderr__ can be
  None. It is usually the case for Windows GUI apps that aren't connected to a console and Python apps started
  with pythonw").
- The worker child it starts would inherit no usable stderr; the scheduler gives it a pipe of its own.
The scheduler, its worker and the config checks are the real ones; the configuration is unusable on purpose
(its `.pgpass` folder does not exist), which the scheduler's preflight refuses at start with exit code 2.
"""

import os
import subprocess
import sys
import textwrap


def test_under_pythonw_the_scheduler_logs_to_its_file_and_stops_on_a_configuration_error(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            workspace_url: https://example.cloud.databricks.com
            pgpass_file: {tmp_path}/missing/dir/.pgpass
            targets:
              - host: instance-1.database.cloud.databricks.com
                user: me@example.com
            """
        )
    )
    script = (
        "import sys; sys.stderr = sys.__stderr__ = None\n"
        "from databricks.labs.oauth_rotator.commands.rotator_script import rotator_main\n"
        f"rotator_main(['--config', {str(config)!r}])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "PGPASS"))}
    env["HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 2
    assert result.stdout == "" and result.stderr == ""  # nothing could be shown: it all went to the log
    log = (tmp_path / ".databricks_oauth_rotator.log").read_text()
    assert f" - ERROR - pgpass_file: cannot write {tmp_path}/missing/dir/.pgpass" in log
