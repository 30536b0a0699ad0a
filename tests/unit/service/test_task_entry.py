import subprocess
import sys

import pytest

from databricks.labs.oauth_rotator.service import ServiceError, for_platform
from databricks.labs.oauth_rotator.service.task_entry import split_arguments, task_arguments


def test_assignments_before_the_separator_and_arguments_after_it():
    args = task_arguments({"PGPASSFILE": "C:\\Users\\ana\\.pgpass", "X": "a=b"}, ["run", "--config", "c.yml"])
    assert args[:2] == ["-m", "databricks.labs.oauth_rotator.service.task_entry"]
    assert split_arguments(args[2:]) == (
        {"PGPASSFILE": "C:\\Users\\ana\\.pgpass", "X": "a=b"},
        ["run", "--config", "c.yml"],
    )


@pytest.mark.parametrize("argv", [["run"], ["not an assignment", "--", "run"], ["=x", "--"]])
def test_anything_else_is_refused(argv):
    with pytest.raises(ValueError):
        split_arguments(argv)


def test_bad_arguments_exit_2_with_one_line():
    argv = [sys.executable, "-m", "databricks.labs.oauth_rotator.service.task_entry", "oops"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr == "oauth-rotator: error: expected NAME=VALUE ... -- ARGUMENTS\n"


def test_cygwin_is_refused_with_a_fix():
    """Cygwin's Python would hand Task Scheduler POSIX paths Windows cannot start (issue #24, item 6)."""
    with pytest.raises(ServiceError, match="Cygwin") as err:
        for_platform("cygwin")
    assert err.value.fix is not None and "native Windows Python" in err.value.fix
