"""pgAdmin's own password exec module runs `password` as pgAdmin desktop does: its placeholders substituted (the user
name quoted as an identifier), the line run through a shell, stdout stripped, and the result is the credential.

pgAdmin 4 is a 126 MB wheel with some fifty pinned dependencies, so it is not a dev dependency: `make test` builds
it a virtual environment of its own (`.venv-pgadmin`, pgAdmin 9.18) and points `PGADMIN4_PYTHON` at that
interpreter; a run without it (a bare `pytest`) skips this test.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap

import pytest

from tests.integration.conftest import USER, UserHome
from tests.integration.test_password_pick import configure_two, line_of

PGADMIN_PYTHON = os.environ.get("PGADMIN4_PYTHON", "")

HARNESS = textwrap.dedent(
    """
    import glob, os, sys
    sys.path.insert(0, glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "pgadmin4"))[0])
    import config
    config.SERVER_MODE = False  # desktop mode: the command line with its placeholders
    from flask import Flask
    from pgadmin.utils.driver import DriverRegistry
    from pgadmin.utils.passexec import PasswordExec
    app = Flask("oauth-rotator-test")
    DriverRegistry.load_modules(app)
    with app.app_context():
        command, host, port, user = sys.argv[1:]
        sys.stdout.write(PasswordExec(command, host, int(port), user).get())
    """
)


@pytest.mark.skipif(not PGADMIN_PYTHON, reason="set PGADMIN4_PYTHON to an interpreter with pgadmin4 installed")
def test_pgadmins_passexec_gets_the_credential_of_the_server_it_is_for(home: UserHome):
    configure_two(home)
    command = (
        f"{shlex.quote(sys.executable)} -m databricks.labs.oauth_rotator password "
        "--host %HOSTNAME% --port %PORT% --user %USERNAME%"
    )
    result = subprocess.run(
        [PGADMIN_PYTHON, "-c", HARNESS, command, "127.0.0.1", str(home.postgres.port), USER],
        env={**home.env, "HOME": str(home.root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=home.root,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == line_of(home, USER)
