"""`exec`'s child supervision with real processes: exit codes, signals forwarded, the credential kept fresh."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from databricks.labs.oauth_rotator.app.run_program import NOT_FOUND, ProgramRun, exit_code_of

PY = sys.executable


def run(argv, **kwargs):
    err = io.StringIO()
    kwargs.setdefault("refresh", lambda: time.time() + 3600)
    code = ProgramRun(argv, env=dict(os.environ), err=err, **kwargs).run()
    return code, err.getvalue()


@pytest.mark.parametrize(("script", "expected"), [("exit 0", 0), ("exit 3", 3), ("kill -TERM $$", 143)])
def test_the_exit_code_is_the_programs_and_128_plus_n_for_a_signal(script, expected):
    assert run(["sh", "-c", script])[0] == expected


def test_the_program_gets_the_environment_it_is_given_and_no_shell(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PGHOST": "h.example.com"}
    # `$PGHOST;` would be expanded by a shell: passed as one argument, it reaches the program as written.
    code = ProgramRun(
        [PY, "-c", "import os, sys; open(sys.argv[1], 'w').write(os.environ['PGHOST'] + sys.argv[2])", str(out), "$X;"],
        env=env,
        refresh=lambda: 0.0,
    ).run()
    assert code == 0
    assert out.read_text() == "h.example.com$X;"


def test_a_missing_program_is_one_line_and_the_shells_127():
    code, err = run(["no-such-program-anywhere"])
    assert code == NOT_FOUND
    assert err == "databricks-oauth-rotator exec: no-such-program-anywhere: command not found\n"


def test_the_credential_is_kept_fresh_while_the_program_runs_and_a_failure_is_said_once():
    calls = []

    def refresh():
        calls.append(time.time())
        if len(calls) in (2, 3):
            raise RuntimeError("workspace unreachable")
        return time.time() + 3600

    code, err = run([PY, "-c", "import time; time.sleep(1.2)"], refresh=refresh, refresh_every=0.1)
    assert code == 0
    assert len(calls) >= 5
    assert err.count("could not refresh the credential: workspace unreachable") == 1


def test_a_program_that_outlives_its_handed_password_is_told_once():
    code, err = run([PY, "-c", "import time; time.sleep(0.6)"], handed_expiry=time.time() + 0.2, refresh_every=0.1)
    assert code == 0
    assert err.count("the PGPASSWORD handed to the program has expired") == 1


SUPERVISOR = textwrap.dedent(
    """
    import os, sys, time
    from databricks.labs.oauth_rotator.app.run_program import ProgramRun
    child = '''
    import signal, sys, time
    def bye(signum, frame):
        print("child got", signum, flush=True)
        sys.exit(7)
    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGHUP, bye)
    signal.signal(signal.SIGINT, bye)
    print("ready", flush=True)
    time.sleep(30)
    sys.exit(1)
    '''
    sys.exit(ProgramRun([sys.executable, "-c", child], env=dict(os.environ), refresh=lambda: 0.0).run())
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_sent_to_exec_reaches_the_program_and_its_exit_code_is_ours(signum):
    with subprocess.Popen(
        [PY, "-c", SUPERVISOR], stdout=subprocess.PIPE, text=True, start_new_session=True
    ) as supervisor:
        assert supervisor.stdout is not None
        assert supervisor.stdout.readline().strip() == "ready"
        supervisor.send_signal(signum)
        out, _ = supervisor.communicate(timeout=20)
    assert out.strip() == f"child got {int(signum)}"
    assert supervisor.returncode == 7


def test_exit_code_of():
    assert exit_code_of(0) == 0
    assert exit_code_of(-9) == 137
