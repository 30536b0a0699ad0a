from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.service.base import ServiceError, ServiceSpec
from databricks.labs.oauth_rotator.service.systemd import (
    UNIT_NAME,
    SystemdServiceManager,
    exec_start,
    extract_argv,
    render_unit,
    split_command_line,
)
from tests.unit.service.conftest import RecordingRunner, make_spec

GOLDEN_UNIT = r"""# Written by databricks-labs-oauth-rotator; `databricks labs oauth-rotator install` rewrites it.
# No secrets here: the daemon authenticates with a ~/.databrickscfg profile or a 0600 EnvironmentFile.
[Unit]
Description=Databricks OAuth Rotator: fresh Lakebase credentials in ~/.pgpass
Documentation=https://github.com/databrickslabs/oauth-rotator
StartLimitIntervalSec=300
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=main
ExecStart=/usr/bin/env "/home/ana maria/100%% $$x/\"q\"/ñ/.venv/bin/python" "-m" "databricks.labs.oauth_rotator" "run" "--config" "/home/ana maria/100%% $$x/\"q\"/ñ/.databricks/labs/oauth-rotator/config/config.yml"
ExecReload=/bin/kill -HUP $MAINPID
TimeoutStartSec=120
Restart=on-failure
RestartPreventExitStatus=2
RestartSec=30
Environment="DATABRICKS_CLI_PATH=/usr/local/bin/databricks"
Environment="DATABRICKS_CONFIG_PROFILE=DEFAULT"
Environment="HOME=/home/ana maria/100%% $x/\"q\"/ñ"
Environment="PGPASSFILE=/home/ana maria/100%% $x/\"q\"/ñ/.pgpass"
EnvironmentFile=-/home/ana maria/100%% $x/"q"/ñ/m2m.env
StandardOutput=append:/home/ana maria/100%% $x/"q"/ñ/.databricks_oauth_rotator_stdout.log
StandardError=append:/home/ana maria/100%% $x/"q"/ñ/.databricks_oauth_rotator_stderr.log
NoNewPrivileges=true
LimitCORE=0
UMask=0077

[Install]
WantedBy=default.target
"""  # noqa: E501

SHOW_RUNNING = "ActiveState=active\nSubState=running\nMainPID=4321\nExecMainStatus=0\nLoadState=loaded\n"
RELOAD = ["systemctl", "--user", "daemon-reload"]
ENABLE = ["systemctl", "--user", "enable", "--now", UNIT_NAME]
LINGER = ["loginctl", "show-user", "ana", "--property=Linger"]


def test_golden_unit_quotes_spaces_specifiers_dollars_quotes_and_non_ascii(golden_spec):
    assert render_unit(golden_spec) == GOLDEN_UNIT


def test_extract_argv_gives_back_what_systemd_runs(golden_spec):
    # The interpreter path holds a quote, which systemd refuses in an executable name: env(1) starts it.
    assert extract_argv(render_unit(golden_spec)) == ["/usr/bin/env", *golden_spec.argv]


def test_a_plain_interpreter_is_the_executable_and_its_dollar_is_not_doubled():
    spec = make_spec("/home/ana/100% $x", python="/opt/py $x/bin/python3")
    line = exec_start(spec.argv)
    assert line.startswith('"/opt/py $x/bin/python3" "-m"')
    assert extract_argv(render_unit(spec)) == spec.argv


def test_an_interpreter_path_env_would_misread_is_refused():
    with pytest.raises(ConfigError, match="systemd cannot run"):
        exec_start(['/opt/"a=b"/python', "-V"])


@pytest.mark.parametrize("field", ["stdout_log", "stderr_log", "env_file"])
@pytest.mark.parametrize("suffix", ["\\", " "])
def test_a_bare_path_systemd_would_mangle_is_refused(field, suffix):
    spec = make_spec("/home/ana", **{field: Path(f"/home/ana/log{suffix}")})
    with pytest.raises(ConfigError, match=field):
        render_unit(spec)


_SYSTEMD_ARG = st.text(st.sampled_from("\\\"' %$;{}ñ"), max_size=12) | st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=12
)


@given(st.lists(_SYSTEMD_ARG, max_size=5))
def test_any_arguments_survive_quoting(args):
    argv = ["/usr/bin/python3", *args]
    line = exec_start(argv)
    words = split_command_line(line)
    assert len(words) == len(argv)
    assert extract_argv(f"[Service]\nExecStart={line}\n") == argv


def test_split_command_line_follows_systemd_word_rules():
    line = r"""/bin/a b\sc "d e" 'f "g"' h"i"j \"k "l\\m" """
    assert split_command_line(line) == ["/bin/a", "b c", "d e", 'f "g"', "hij", '"k', "l\\m"]
    with pytest.raises(ValueError, match="unterminated"):
        split_command_line('"open')
    with pytest.raises(ValueError, match="unsupported escape"):  # systemd rejects "\ " too
        split_command_line("a\\ b")


# ---- systemd itself as the oracle -------------------------------------------------------------------------------


@pytest.fixture(name="shared_root")
def shared_root_fixture() -> Iterator[Path]:
    """A temp tree that `nobody` can read: `systemd --test` refuses to run as root, so it runs as nobody."""
    root = Path(tempfile.mkdtemp(prefix="oauth-rotator-systemd-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


def _tree(root: Path, *parts: str) -> Path:
    path = root
    for part in parts:
        path = path / part
        path.mkdir(exist_ok=True)
        path.chmod(0o755)
    return path


def _weird_home(root: Path, name: str) -> Path:
    home = _tree(root, "ana maria", "100% $x ${HOME} $$ %h", name, "ñ ☃")
    bin_dir = _tree(home, ".venv", "bin")
    (bin_dir / "python").symlink_to(sys.executable)  # the ExecStart binary must exist
    return home


def _install(root: Path, spec: ServiceSpec) -> Path:
    _tree(root, "config", "systemd", "user")
    manager = SystemdServiceManager(RecordingRunner(), home=root, environ={"XDG_CONFIG_HOME": str(root / "config")})
    manager.install(spec)
    return manager.definition_path


def _runtime_dir(root: Path, owner: int | None = None) -> Path:
    runtime = root / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    if owner is not None:
        os.chown(runtime, owner, owner)
    return runtime


def _verify(root: Path, unit: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(_runtime_dir(root)),
        "XDG_CONFIG_HOME": str(root / "config"),
        "SYSTEMD_LOG_COLOR": "0",
    }
    argv = ["systemd-analyze", "verify", "--user", str(unit)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (apt-get install systemd)"
)


@needs_systemd_analyze
@pytest.mark.parametrize("directory", ["\"q\" 's' back\\slash", "plain"])
def test_systemd_analyze_accepts_the_unit(shared_root, directory):
    home = _weird_home(shared_root, directory)
    spec = make_spec(home, python=str(home / ".venv" / "bin" / "python"), env_file=home / "m2m.env")
    result = _verify(shared_root, _install(shared_root, spec))
    # verify exits 0 even when it warns, so any output at all is a failure.
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


@needs_systemd_analyze
def test_systemd_analyze_check_can_fail(shared_root):
    unit = _tree(shared_root, "config", "systemd", "user") / UNIT_NAME
    unit.write_text(GOLDEN_UNIT.replace("Restart=on-failure", "Restart=bogus"))
    result = _verify(shared_root, unit)
    assert "Failed to parse service restart specifier" in result.stderr


def _systemd_binary() -> str | None:
    for candidate in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _systemd_test_dump(root: Path) -> str:
    """What systemd itself parsed from the unit (`systemd --test --user`), run as nobody when we are root."""
    systemd = _systemd_binary()
    if systemd is None:
        pytest.skip("no systemd binary to parse the unit with")
    argv = [systemd, "--test", "--user", f"--unit={UNIT_NAME}", "--no-pager"]
    owner = None
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("systemd --test refuses to run as root and setpriv (util-linux) is missing")
        argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
        owner = 65534
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "XDG_RUNTIME_DIR": str(_runtime_dir(root, owner)),
        "XDG_CONFIG_HOME": str(root / "config"),
    }
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    start = result.stdout.index(f"-> Unit {UNIT_NAME}:")
    end = result.stdout.find("\n\t-> Unit ", start)
    return result.stdout[start : end if end > 0 else None]


def _shell_words(line: str) -> list[str]:
    """Split systemd's printed command line as a POSIX shell would (shlex keeps `\\$` inside double quotes)."""
    words: list[str] = []
    current: list[str] | None = None
    chars = iter(line)
    quote = ""
    for char in chars:
        if char == "\\" and quote != "'":
            following = next(chars)
            keep = quote == '"' and following not in '$`"\\'
            current = [*(current or []), *("\\" if keep else ""), following]
        elif quote and char == quote:
            quote = ""
        elif quote:
            current = [*(current or []), char]
        elif char in "\"'":
            quote, current = char, current or []
        elif char == " ":
            if current is not None:
                words.append("".join(current))
            current = None
        else:
            current = [*(current or []), char]
    return [*words, "".join(current)] if current is not None else words


def _parsed(block: str, key: str) -> list[str]:
    return re.findall(rf"^\t\t{key}: (.*)$", block, flags=re.MULTILINE)


@pytest.mark.skipif(sys.platform != "linux", reason="systemd runs on Linux only")
def test_systemd_parses_exactly_the_argv_environment_and_paths_we_meant(shared_root):
    home = _weird_home(shared_root, "\"q\" 's' back\\slash")
    spec = make_spec(home, python=str(home / ".venv" / "bin" / "python"), env_file=home / "m2m.env")
    _install(shared_root, spec)
    block = _systemd_test_dump(shared_root)

    command_line, reload_line = re.findall(r"^\t\t\tCommand Line: (.*)$", block, flags=re.MULTILINE)
    assert _shell_words(reload_line) == ["/bin/kill", "-HUP", "$MAINPID"]  # ExecReload: SIGHUP reloads in place
    assert _parsed(block, "Type") == ["notify"] and _parsed(block, "NotifyAccess") == ["main"]
    words = _shell_words(command_line)
    # systemd turns $$ into $ when it starts the process (the dump shows the line before that step).
    assert [words[0], *(word.replace("$$", "$") for word in words[1:])] == ["/usr/bin/env", *spec.argv]
    assert _parsed(block, "Environment") == [f"{k}={v}" for k, v in spec.service_environment.items()]
    assert _parsed(block, "EnvironmentFile") == [f"-{spec.env_file}"]
    assert _parsed(block, "StandardOutputFileToAppend") == [str(spec.stdout_log)]
    assert _parsed(block, "StandardErrorFileToAppend") == [str(spec.stderr_log)]
    assert _parsed(block, "Restart") == ["on-failure"]
    assert "UMask: 0077" in block
    assert "LimitCORE: 0" in block


# ---- the manager's commands ------------------------------------------------------------------------------------


VERSION = ["systemctl", "--version"]


def test_before_systemd_240_output_goes_to_the_journal(tmp_path, runner):
    """`append:` arrived in systemd 240 (its NEWS); RHEL 8's 239 would reject the line: the journal, on purpose."""
    runner.on(*VERSION, stdout="systemd 239 (239-82.el8)\n+PAM +AUDIT +SELINUX\n")
    unit = _manager(tmp_path, runner).render(make_spec(tmp_path)).decode()
    assert "StandardOutput=journal\nStandardError=journal\n" in unit and "append:" not in unit
    runner.on(*VERSION, stdout="systemd 252 (252.30-1~deb12u2)\n")
    assert "StandardError=append:" in _manager(tmp_path, runner).render(make_spec(tmp_path)).decode()
    runner.on(*VERSION, returncode=1)
    assert "StandardError=append:" in _manager(tmp_path, runner).render(make_spec(tmp_path)).decode()


def test_a_user_unit_names_no_system_target():
    """network-online.target belongs to the system manager; a user manager never reaches it."""
    assert "network-online" not in render_unit(make_spec("/home/ana"))


def _manager(tmp_path: Path, runner: RecordingRunner, **environ: str) -> SystemdServiceManager:
    return SystemdServiceManager(runner, home=tmp_path, environ=environ, user="ana")


def test_first_install_writes_the_unit_then_reloads_and_enables_it(tmp_path, runner):
    runner.on(*LINGER, stdout="Linger=yes\n")
    manager = _manager(tmp_path, runner)
    spec = make_spec(tmp_path)
    message = manager.install(spec)
    assert runner.calls == [VERSION, RELOAD, ENABLE, LINGER]
    unit = tmp_path / ".config" / "systemd" / "user" / UNIT_NAME
    assert manager.definition_path == unit
    assert unit.read_text(encoding="utf-8") == render_unit(spec)
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert message == f"Installed {unit} and started {UNIT_NAME}."


def test_a_second_install_updates_in_place_and_restarts_the_running_service(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))
    runner.calls.clear()
    updated = make_spec(tmp_path, profile="other")
    message = manager.install(updated)
    assert runner.calls == [
        VERSION,
        ["systemctl", "--user", "is-active", "--quiet", UNIT_NAME],
        RELOAD,
        ENABLE,
        ["systemctl", "--user", "restart", UNIT_NAME],
        LINGER,
    ]
    assert "DATABRICKS_CONFIG_PROFILE=other" in manager.definition_path.read_text(encoding="utf-8")
    assert message.startswith("Updated ") and "restarted" in message


def test_reinstalling_a_failed_service_clears_its_start_limit(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))
    runner.on("systemctl", "--user", "is-active", returncode=3)
    runner.calls.clear()
    manager.install(make_spec(tmp_path))
    assert runner.calls[:5] == [
        VERSION,
        ["systemctl", "--user", "is-active", "--quiet", UNIT_NAME],
        RELOAD,
        ["systemctl", "--user", "reset-failed", UNIT_NAME],
        ENABLE,
    ]


def test_install_honours_an_absolute_xdg_config_home_only(tmp_path, runner):
    assert _manager(tmp_path, runner, XDG_CONFIG_HOME=str(tmp_path / "xdg")).definition_path == (
        tmp_path / "xdg" / "systemd" / "user" / UNIT_NAME
    )
    relative = _manager(tmp_path, runner, XDG_CONFIG_HOME="relative/xdg")
    assert relative.definition_path == tmp_path / ".config" / "systemd" / "user" / UNIT_NAME


def test_install_tells_about_linger_when_it_is_off(tmp_path, runner, caplog):
    runner.on(*LINGER, stdout="Linger=no\n")
    message = _manager(tmp_path, runner).install(make_spec(tmp_path))
    assert "loginctl enable-linger ana" in message
    assert "loginctl enable-linger ana" in caplog.text


def test_install_without_logind_gives_no_linger_notice(tmp_path, runner):
    runner.on("loginctl", returncode=1, stderr="Failed to connect to bus")
    assert "linger" not in _manager(tmp_path, runner).install(make_spec(tmp_path))


def test_a_failing_systemctl_is_a_service_error_with_its_output(tmp_path, runner):
    runner.on(*RELOAD, returncode=1, stderr="Failed to connect to bus: No medium found")
    with pytest.raises(ServiceError) as e:
        _manager(tmp_path, runner).install(make_spec(tmp_path))
    assert "`systemctl --user daemon-reload` failed with exit code 1" in str(e.value)
    assert "Failed to connect to bus: No medium found" in str(e.value)
    assert e.value.command == tuple(RELOAD)
    assert runner.calls == [VERSION, RELOAD]


def test_a_refused_start_points_at_reset_failed(tmp_path, runner):
    runner.on(*ENABLE, returncode=1, stderr="Job failed. See journalctl.")
    with pytest.raises(ServiceError, match="reset-failed"):
        _manager(tmp_path, runner).install(make_spec(tmp_path))


def test_uninstall_when_not_installed_is_a_no_op(tmp_path, runner):
    message = _manager(tmp_path, runner).uninstall()
    assert "not installed" in message and "nothing to do" in message
    assert runner.calls == []


def test_uninstall_disables_removes_and_reloads(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))
    runner.calls.clear()
    manager.uninstall()
    assert runner.calls == [["systemctl", "--user", "disable", "--now", UNIT_NAME], RELOAD]
    assert not manager.definition_path.exists()


def test_a_failed_disable_keeps_the_unit_and_says_how_to_remove_it(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))
    runner.on("systemctl", "--user", "disable", returncode=1, stderr="Access denied")
    with pytest.raises(ServiceError, match=r"Access denied.*remove .* by hand"):
        manager.uninstall()
    assert manager.definition_path.exists()


def test_restart_clears_a_failed_state_first(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.restart()
    assert runner.calls == [
        ["systemctl", "--user", "reset-failed", UNIT_NAME],
        ["systemctl", "--user", "restart", UNIT_NAME],
    ]


def test_status_of_a_running_service(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    manager.install(make_spec(tmp_path))
    runner.on("systemctl", "--user", "show", stdout=SHOW_RUNNING)
    status = manager.status()
    assert runner.calls[-1] == [
        "systemctl",
        "--user",
        "show",
        UNIT_NAME,
        "--property=ActiveState,SubState,MainPID,ExecMainStatus,LoadState",
    ]
    assert (status.installed, status.running, status.pid, status.last_exit_code) == (True, True, 4321, 0)
    assert status.detail == "active (running)"


def test_status_of_a_crashed_and_of_a_missing_service(tmp_path, runner):
    manager = _manager(tmp_path, runner)
    runner.on(
        "systemctl", "--user", "show", stdout="ActiveState=inactive\nSubState=dead\nMainPID=0\nLoadState=not-found\n"
    )
    assert manager.status() == manager.status().__class__(False, False, None, None, "inactive (dead)")
    manager.install(make_spec(tmp_path))
    runner.on(
        "systemctl",
        "--user",
        "show",
        stdout="ActiveState=failed\nSubState=failed\nMainPID=0\nExecMainStatus=2\nLoadState=loaded\n",
    )
    status = manager.status()
    assert (status.installed, status.running, status.pid, status.last_exit_code) == (True, False, None, 2)
