"""Commands that need no workspace import nothing they do not use; the resident scheduler stays small.

Each command runs in a subprocess under `python -X importtime`, which names every module the process imports
(the interpreter's own start-up included); the assertions are on those names, never on times (timing is
`bench/bench_startup.py`'s job). Each test also checks that the command did its work, so that a command that
failed early cannot pass for a light one. The light `status` path reads `status.json` and finds the systemd unit
itself; the tests below also hold it to what `state.Status` and `SystemdServiceManager` would say.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from importlib import metadata
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.__about__ import __version__
from databricks.labs.oauth_rotator.app import status
from databricks.labs.oauth_rotator.commands import flags, way_out
from databricks.labs.oauth_rotator.files import logs
from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
from databricks.labs.oauth_rotator.rotation.state import StateStore, Status, TargetState
from databricks.labs.oauth_rotator.service import systemd
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "src" / "databricks" / "labs" / "oauth_rotator" / "commands" / "labs_main.py"
"""The labs.yml entrypoint."""
NOW = 1_767_225_600.0
HEAVY = ("databricks.sdk", "databricks.labs.blueprint", "requests", "urllib3", "yaml", "google.protobuf")
"""Never imported by a command that needs no workspace (each costs tens of MB and up to seconds)."""
NOT_FOR_STATUS = (
    "logging",
    "dataclasses",
    "inspect",
    "pathlib",
    "datetime",
    "subprocess",
    "shutil",
    "databricks.labs.oauth_rotator.service",
    "databricks.labs.oauth_rotator.rotation.state",
    "databricks.labs.oauth_rotator.files.logs",
    "databricks.labs.oauth_rotator.files.pgpass",
    "databricks.labs.oauth_rotator.files.writer",
    "databricks.labs.oauth_rotator.files.config_store",
    "databricks.labs.oauth_rotator.config",
    *("pkgutil", "typing", "weakref", "importlib.util"),
    *("json", "argparse"),
)
"""What `status` no longer imports: the log machinery, the Status dataclasses, the service managers, paths, and
pkgutil with typing (which the `databricks` namespace packages' `__init__.py` would import)."""
NOT_FOR_HELP = (
    "logging",
    "dataclasses",
    "pathlib",
    "shutil",
    "json",
    "databricks.labs.oauth_rotator.config",
    "databricks.labs.oauth_rotator.files.logs",
    "databricks.labs.oauth_rotator.paths",
)
NOT_FOR_PASSWORD = (
    *NOT_FOR_STATUS,
    *("re", "base64", "hashlib", "_hashlib", "yaml", "databricks.labs.oauth_rotator.lakebase"),
    *("databricks.labs.oauth_rotator.app.rotate", "databricks.labs.oauth_rotator.rotation"),
)
"""What `password` does without while the credential on file is fresh: no argparse, json or PyYAML (their `re`
alone costs half a Python start-up), no pgpass parser (dataclasses) and no token decoding (base64)."""
NOT_FOR_VERSION = (*NOT_FOR_HELP, "argparse", "re")
WITHOUT_PKGUTIL = ("pkgutil", "typing")
"""Not imported by the console scripts (`python -m` imports pkgutil itself, through runpy)."""


def console_script(name: str) -> str:
    """What pip's script `name` runs: the installed distribution's entry point, imported and called."""
    (entry,) = (e for e in metadata.distribution(DISTRIBUTION).entry_points if e.name == name)
    assert entry.group == "console_scripts"
    return f"import sys\nfrom {entry.module} import {entry.attr}\nsys.argv[0] = {name!r}\nsys.exit({entry.attr}())\n"


DISTRIBUTION = "databricks-labs-oauth-rotator"
STATUS_ENTRY = console_script("databricks-oauth-status")
ROTATOR_ENTRY = console_script("databricks-oauth-rotator")
FAKE_SYSTEMCTL = """#!/bin/sh
# `systemctl --user show UNIT --property=...` as a user manager with the unit running answers it.
echo "$@" >> "$0.calls"
printf 'ActiveState=active\\nSubState=running\\nMainPID=4242\\nExecMainStatus=0\\nLoadState=loaded\\n'
"""
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the light service probe is systemd's")


def environment(home: Path, **extra: str) -> dict[str, str]:
    """A user's environment with `home` as HOME, nothing of the caller's Databricks, libpq or XDG settings."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "PG", "XDG_", "PYTHONPROFILE"))}
    return {
        **keep,
        "HOME": str(home),
        "DATABRICKS_LABS_STATE_DIR": str(home / "state"),
        "DATABRICKS_LABS_CONFIG_DIR": str(home / "config"),
        **extra,
    }


def labs_environment(home: Path) -> dict[str, str]:
    """As `databricks labs` runs the entrypoint: the checkout on PYTHONPATH."""
    return environment(home, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'src'}")


def imported(argv: list[str], env: dict[str, str], *, cwd: Path, check: bool = True) -> tuple[set[str], str]:
    """Run `python -X importtime ARGV`: the modules it imported, and its stdout (it must exit 0, with `check`)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    modules = imported_names(result.stderr)
    assert result.returncode == 0 or not check, [
        line for line in result.stderr.splitlines() if not line.startswith("import time")
    ]
    return modules, result.stdout


def imported_names(importtime_output: str) -> set[str]:
    """The module names in `-X importtime` output (`import time: self | cumulative | name`)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in importtime_output.splitlines()
        if line.startswith("import time:") and "[us]" not in line
    }


def loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    """The modules of `modules` that are one of `prefixes` or inside one."""
    return sorted(m for m in modules if any(m == p or m.startswith(f"{p}.") for p in prefixes))


def write_status(home: Path) -> None:
    """Two targets as rotations leave them: one fresh, one failing and waiting for a person."""

    def change(current: Status) -> None:
        current.pgpass_file = str(home / ".pgpass")
        current.targets["sales"] = TargetState(
            name="sales",
            user="someone@example.com",
            hosts=["sales.database.example.com", "ro.database.example.com"],
            keys=[["sales.database.example.com", "5432", "*", "someone@example.com"]],
            fingerprint="0123456789abcdef",
            issued_at=NOW - 13 * 60,
            expires_at=NOW + 47 * 60 + 0.9999996,  # rounds up to the next second, as datetime reads it
            last_success=NOW - 13 * 60 + 0.9999996,
        )
        current.targets["reports"] = TargetState(
            name="reports",
            user="someone@example.com",
            hosts=["reports.database.example.com"],
            expires_at=NOW - 3 * 60,
            last_success=NOW - 63 * 60,
            last_error="the Databricks login has expired:\trefresh token=abc.def is invalid",
            needs_person=True,
            fix="run `databricks auth login --profile prod`",
            failures=4,
        )
        current.targets["never"] = TargetState(name="never", last_error="no such instance", failures=1)

    StateStore(home / "state" / "status.json").update(change)


def test_password_reads_a_config_it_has_not_seen_in_full_then_from_the_cache(tmp_path):
    """A hand edit (or a config no full path has read yet) costs one PyYAML read, which leaves the cache."""
    write_fresh_credential(tmp_path, hand_written=True)
    config = tmp_path / "config" / "config.yml"
    config.write_text(config.read_text().replace("# the read-write host", "# edited"))
    first, out = imported(["-c", ROTATOR_ENTRY, "password"], environment(tmp_path), cwd=tmp_path)
    assert out == f"{TOKEN}\n" and "yaml" in first
    second, out = imported(["-c", ROTATOR_ENTRY, "password"], environment(tmp_path), cwd=tmp_path)
    assert out == f"{TOKEN}\n" and loaded(second, NOT_FOR_PASSWORD) == []


# ---- which modules each command imports ------------------------------------------------------------------------


def test_console_status_reads_the_file_without_logging_dataclasses_or_the_service_package(tmp_path):
    write_status(tmp_path)
    modules, out = imported(["-c", STATUS_ENTRY, "--json"], environment(tmp_path), cwd=tmp_path)
    assert [row["target"] for row in json.loads(out)] == ["never", "reports", "sales"]  # it did its work
    assert "databricks.labs.oauth_rotator.app.status" in modules
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, NOT_FOR_STATUS) == []


def test_labs_status_reads_the_file_without_logging_dataclasses_or_pkgutil(tmp_path):
    """As the Databricks CLI runs it: by path, with a JSON payload."""
    write_status(tmp_path)
    payload = json.dumps({"command": "status", "flags": {"log_level": "warn"}, "output_type": ""})
    modules, out = imported([str(CLI), payload], labs_environment(tmp_path), cwd=tmp_path)
    assert [row["target"] for row in json.loads(out)] == ["never", "reports", "sales"]
    assert "databricks.labs.oauth_rotator.app.status" in modules
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, NOT_FOR_STATUS) == []


@linux_only
def test_status_asks_systemctl_only_when_there_is_a_unit_and_still_without_the_service_package(tmp_path):
    write_status(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    systemctl = bin_dir / "systemctl"
    systemctl.write_text(FAKE_SYSTEMCTL)
    systemctl.chmod(0o755)
    env = environment(tmp_path, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    _, out = imported(["-c", STATUS_ENTRY, "--json"], env, cwd=tmp_path)
    assert {row["service"] for row in json.loads(out)} == {"not installed"}
    assert not Path(f"{systemctl}.calls").exists(), "no unit file: systemctl is not asked"

    unit = tmp_path / ".config" / "systemd" / "user" / systemd.UNIT_NAME
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\n")
    modules, out = imported(["-c", STATUS_ENTRY, "--json"], env, cwd=tmp_path)
    assert {row["service"] for row in json.loads(out)} == {"running (pid 4242)"}
    assert Path(f"{systemctl}.calls").read_text().split() == [
        "--user",
        "show",
        systemd.UNIT_NAME,
        f"--property={systemd.SHOW_PROPERTIES}",
    ]
    assert "subprocess" in modules
    assert loaded(modules, ("databricks.labs.oauth_rotator.service", "logging", "dataclasses", *HEAVY)) == []


@pytest.mark.parametrize(
    ("argv", "expected", "not_imported"),
    [
        (["-c", ROTATOR_ENTRY, "--help"], "usage: databricks-oauth-rotator", (*NOT_FOR_HELP, *WITHOUT_PKGUTIL)),
        (
            ["-c", ROTATOR_ENTRY, "--version"],
            f"databricks-oauth-rotator {__version__}",
            (*NOT_FOR_VERSION, *WITHOUT_PKGUTIL),
        ),
        (["-m", "databricks.labs.oauth_rotator", "--help"], "usage: ", NOT_FOR_HELP),
        (["-m", "databricks.labs.oauth_rotator", "--version"], f" {__version__}", NOT_FOR_HELP),  # runpy imports re
    ],
    ids=["--help", "--version", "-m --help", "-m --version"],
)
def test_help_and_version_import_argparse_and_little_else(tmp_path, argv, expected, not_imported):
    modules, out = imported(argv, environment(tmp_path), cwd=tmp_path)
    assert expected in out
    assert "databricks.labs.oauth_rotator.commands.rotator_script" in modules
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, not_imported) == []


TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzb21lb25lQGV4YW1wbGUuY29tIn0.c2ln"
KEY = ("sales.database.example.com", "5432", "*", "someone@example.com")


HAND_WRITTEN = """\
# my databases (written by hand, not by the installer)
targets:
    -   user: "someone@example.com"
        name: 'sales'
        host: sales.database.example.com   # the read-write host
pgpass_file: "{pgpass}"
"""


def write_fresh_credential(home: Path, *, expires_in: float = 3000.0, hand_written: bool = False) -> None:
    """What a rotation leaves: the saved config (and the cache of it), our line in .pgpass, and status.json
    recording it."""
    from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
    from databricks.labs.oauth_rotator.files import pgpass
    from databricks.labs.oauth_rotator.files.config_cache import remember
    from databricks.labs.oauth_rotator.files.config_store import read_config, save_config

    (home / "config").mkdir(exist_ok=True)
    config = home / "config" / "config.yml"
    target = TargetConfig(name="sales", host=KEY[0], user=KEY[3])
    if hand_written:
        config.write_text(HAND_WRITTEN.format(pgpass=home / ".pgpass"))
    else:
        save_config(RotatorConfig(targets=[target], pgpass_file=str(home / ".pgpass")), config)
    remember(read_config(config), environment(home))
    (home / ".pgpass").write_bytes(pgpass.format_entry(pgpass.PgpassEntry(*KEY, password=TOKEN)) + b"\n")
    (home / ".pgpass").chmod(0o600)

    def change(current: Status) -> None:
        current.targets["sales"] = TargetState(
            name="sales", keys=[list(KEY)], fingerprint=token_fingerprint(TOKEN), expires_at=time.time() + expires_in
        )

    StateStore(home / "state" / "status.json").update(change)


@pytest.mark.parametrize("hand_written", [False, True], ids=["installer's config", "hand-written config"])
def test_console_password_answers_from_the_file_with_no_sdk_argparse_json_or_yaml(tmp_path, hand_written):
    write_fresh_credential(tmp_path, hand_written=hand_written)
    modules, out = imported(["-c", ROTATOR_ENTRY, "password", "--target", "sales"], environment(tmp_path), cwd=tmp_path)
    assert out == f"{TOKEN}\n"  # it did its work
    assert "databricks.labs.oauth_rotator.app.password" in modules
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, NOT_FOR_PASSWORD) == []


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["--host", KEY[0], "--port", KEY[1], "--user", KEY[3]], {}),
        ([], {"PGADMIN_PASSEXEC_HOST": KEY[0], "PGADMIN_PASSEXEC_USERNAME": KEY[3]}),
    ],
    ids=["--host --port --user", "pgAdmin's variables"],
)
def test_password_picks_its_target_by_the_connection_on_the_fast_path_too(tmp_path, argv, extra):
    write_fresh_credential(tmp_path)
    modules, out = imported(["-c", ROTATOR_ENTRY, "password", *argv], environment(tmp_path, **extra), cwd=tmp_path)
    assert out == f"{TOKEN}\n"
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, NOT_FOR_PASSWORD) == []


def test_labs_password_answers_from_the_file_with_no_sdk_blueprint_or_yaml(tmp_path):
    write_fresh_credential(tmp_path)
    payload = json.dumps({"command": "password", "flags": {"target": "", "log_level": "warn"}, "output_type": ""})
    modules, out = imported([str(CLI), payload], labs_environment(tmp_path), cwd=tmp_path)
    assert out == f"{TOKEN}\n"
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, NOT_FOR_PASSWORD) == []


@pytest.mark.parametrize("argv", [["wait"], ["wait", "--target", "sales", "--timeout", "5"]], ids=["all", "one"])
def test_console_wait_answers_from_the_files_as_password_does(tmp_path, argv):
    """`until databricks-oauth-rotator wait; do ...`: as light as `password` on the file, so as fast as `status`."""
    write_fresh_credential(tmp_path)
    modules, out = imported(["-c", ROTATOR_ENTRY, *argv], environment(tmp_path), cwd=tmp_path)
    assert out == ""  # it did its work: exit 0 is checked by `imported`
    assert "databricks.labs.oauth_rotator.app.wait" in modules
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, NOT_FOR_PASSWORD) == []


def test_labs_wait_answers_from_the_files_with_no_sdk_blueprint_or_yaml(tmp_path):
    write_fresh_credential(tmp_path)
    payload = json.dumps({"command": "wait", "flags": {"target": "", "timeout": "1", "log_level": "warn"}})
    modules, _ = imported([str(CLI), payload], labs_environment(tmp_path), cwd=tmp_path)
    assert "databricks.labs.oauth_rotator.app.wait" in modules
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, NOT_FOR_PASSWORD) == []


def test_wait_within_the_margin_times_out_with_exit_1_and_still_no_sdk(tmp_path):
    write_fresh_credential(tmp_path, expires_in=60.0)
    modules, _ = imported(
        ["-c", ROTATOR_ENTRY, "wait", "--timeout", "1"], environment(tmp_path), cwd=tmp_path, check=False
    )
    assert loaded(modules, HEAVY) == []


def test_password_takes_the_minting_path_only_when_the_credential_on_file_is_due(tmp_path, fake_workspace):
    """Within the margin, the SDK is imported (and the fake workspace asked): the light path is not a cache that
    would print a credential about to expire."""
    write_fresh_credential(tmp_path, expires_in=5 * 60)
    env = environment(
        tmp_path,
        DATABRICKS_HOST=fake_workspace.host,
        DATABRICKS_CLIENT_ID=fake_workspace.client_id,
        DATABRICKS_CLIENT_SECRET=fake_workspace.client_secret,
    )
    modules, _ = imported(["-c", ROTATOR_ENTRY, "password"], env, cwd=tmp_path, check=False)
    assert "databricks.sdk" in modules
    assert fake_workspace.calls


@pytest.mark.timeout(180)
def test_the_resident_scheduler_imports_no_sdk_no_openssl_and_no_shutil(tmp_path, fake_workspace: FakeWorkspace):
    """The scheduler without `--once`, after its first cycle (in a worker child) and the lost-line check that
    follows it, which reads `.pgpass` and fingerprints our line: only the worker imports the SDK."""
    env = environment(
        tmp_path,
        DATABRICKS_HOST=fake_workspace.host,
        DATABRICKS_CLIENT_ID=fake_workspace.client_id,
        DATABRICKS_CLIENT_SECRET=fake_workspace.client_secret,
    )
    pgpass_file = tmp_path / ".pgpass"
    err_file = tmp_path / "daemon.err"
    argv = ["-X", "importtime", "-c", ROTATOR_ENTRY, f"--instance={DEMO_INSTANCE}", f"--pgpass-file={pgpass_file}"]
    with err_file.open("w") as err:
        daemon = subprocess.Popen(
            [sys.executable, *argv],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            deadline = time.monotonic() + 120
            # tokeninfo is imported by the first lost-line check, right after the first cycle recorded its status
            while "databricks.labs.oauth_rotator.lakebase.tokeninfo" not in imported_names(err_file.read_text()):
                assert daemon.poll() is None, err_file.read_text()[-3000:]
                assert time.monotonic() < deadline, "no lost-line check within two minutes"
                time.sleep(0.2)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
    assert daemon.returncode == 0
    assert pgpass_file.exists()
    modules = imported_names(err_file.read_text())
    assert "databricks.labs.oauth_rotator.rotation.daemon" in modules
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, ("_hashlib", "hashlib", "shutil", "bz2", "lzma")) == []
    rotation_only = (
        "rotation.cycle",
        "app.rotate",
        "app.service",
        "app.configure",
        "app.connect",
        "app.doctor",
        "lakebase.credentials",
        "lakebase.workspace",
        "lakebase.targets",
        "files.writer",  # the scheduler reads its config through `files.config_store`, the one reader, never writes
        "rotation.notify",
        "rotation.hooks",
    )
    assert loaded(modules, tuple(f"databricks.labs.oauth_rotator.{m}" for m in rotation_only)) == []


# ---- the light status path says what the full one says ----------------------------------------------------------


def test_rows_from_plain_json_equal_rows_from_the_status_dataclasses(tmp_path):
    write_status(tmp_path)
    path = tmp_path / "state" / "status.json"
    plain = status.read_targets(str(path), err=io.StringIO())
    assert status.status_rows(plain, "stopped", NOW) == status.status_rows(StateStore(path).load(), "stopped", NOW)
    reports = next(row for row in status.status_rows(plain, "stopped", NOW) if row["target"] == "reports")
    assert reports["last_error"] == (
        "the Databricks login has expired: refresh token=<redacted> is invalid; "
        "run `databricks auth login --profile prod` (4 attempts)"
    )


@pytest.mark.parametrize("epoch", [NOW, NOW + 0.5, NOW + 0.9999996, NOW - 0.0000004, 0.0, 1e10])
def test_local_time_reads_as_datetime_would(epoch):
    assert status.local_time(epoch) == datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize(
    ("content", "warns"),
    [
        (b"", False),
        (b"{not json", True),
        (b"[]", True),
        (b'"text"', True),
        (b'{"targets": []}', False),
        (b'{"targets": null}', False),
        (b'{"targets": {"a": 5}}', False),
    ],
)
def test_an_unreadable_status_file_reads_as_no_targets_with_a_warning(tmp_path, content, warns):
    (tmp_path / "status.json").write_bytes(content)
    err = io.StringIO()
    assert status.read_targets(str(tmp_path / "status.json"), err=err) == {}
    assert ("Ignoring unreadable status file" in err.getvalue()) is warns
    assert StateStore(tmp_path / "missing.json").load().targets == {}


def test_a_hand_edited_target_shows_what_can_be_read_and_never_a_traceback(tmp_path):
    raw = {"targets": {"a": {"hosts": "h", "user": 7, "expires_at": "soon", "last_success": 1e300, "failures": "4"}}}
    (tmp_path / "status.json").write_text(json.dumps(raw))
    (row,) = status.status_rows(status.read_targets(str(tmp_path / "status.json"), err=io.StringIO()), "x", NOW)
    assert row == {
        "target": "a",
        "host": "-",
        "user": "-",
        "expires_in": "-",
        "last_rotation": "never",
        "last_error": "-",
        "service": "x",
        "expires_at": "",
    }


@pytest.mark.parametrize(
    "shown",
    [
        "ActiveState=active\nSubState=running\nMainPID=42\nExecMainStatus=0\nLoadState=loaded\n",
        "ActiveState=active\nSubState=running\nMainPID=0\nExecMainStatus=0\nLoadState=loaded\n",
        "ActiveState=failed\nSubState=failed\nMainPID=0\nExecMainStatus=3\nLoadState=loaded\n",
        "ActiveState=inactive\nSubState=dead\nMainPID=0\nExecMainStatus=0\nLoadState=not-found\n",
        "ActiveState=inactive\nMainPID=\nExecMainStatus=x\n",
        "",
    ],
)
def test_the_service_state_reads_as_the_systemd_manager_reads_it(tmp_path, shown):
    """The same `systemctl show` output, through the manager and through the light path's parser."""
    unit = tmp_path / ".config" / "systemd" / "user" / systemd.UNIT_NAME
    unit.parent.mkdir(parents=True)
    unit.touch()

    def runner(argv: Sequence[str], /) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 0, stdout=shown, stderr="")

    manager = systemd.SystemdServiceManager(runner, home=tmp_path, environ={})
    assert status.describe_shown(shown) == status.service_state(lambda: manager)


def test_the_light_path_spells_names_as_their_modules_do():
    assert way_out.PACKAGE_LOGGER == logs.PACKAGE_LOGGER


@pytest.mark.parametrize("labs", [True, False], ids=["labs checkout", "installed"])
def test_namespace_packages_get_the_path_pkgutil_would_give_them(tmp_path, labs):
    """The console scripts and the labs `status` set up `databricks` and `databricks.labs` themselves."""
    show = "import databricks.labs, json; print(json.dumps([databricks.__path__, databricks.labs.__path__]))"
    env = labs_environment(tmp_path) if labs else environment(tmp_path)
    by_pkgutil = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True)
    ours = (
        "import sys\n"
        "from databricks_oauth_rotator.scripts import namespace_packages\n"
        "namespace_packages()\n"
        "assert 'pkgutil' not in sys.modules\n"
        "import pkgutil\n"  # only now, to prove it played no part above
        "import databricks.labs.oauth_rotator.commands.rotator_script\n"
        f"{show}\n"
    )
    by_us = subprocess.run([sys.executable, "-c", ours], env=env, capture_output=True, text=True, check=True)
    paths = json.loads(by_us.stdout)
    assert paths == json.loads(by_pkgutil.stdout)
    assert str(ROOT / "src" / "databricks" / "labs") in paths[1]


def test_the_compatibility_package_imports_the_api_on_first_use():
    probe = (
        "import sys, databricks_oauth_rotator\n"
        "assert 'databricks.labs.oauth_rotator' not in sys.modules\n"
        "from databricks_oauth_rotator import DatabricksOAuthRotator, __version__\n"
        "from databricks.labs.oauth_rotator import __about__\n"
        "from databricks.labs.oauth_rotator.commands import api\n"
        "assert DatabricksOAuthRotator is api.DatabricksOAuthRotator and __version__ == __about__.__version__\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


# ---- --help, and the scheduler's fingerprint -------------------------------------------------------------------


@pytest.mark.parametrize("columns", ["100", "43", "", "0", "wide"])
def test_help_is_as_wide_as_argparse_would_make_it(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    assert flags.terminal_columns() == shutil.get_terminal_size().columns
    ours = flags.build_parser()
    stock = flags.build_parser()
    stock.formatter_class = argparse.HelpFormatter
    assert ours.format_help() == stock.format_help()


def test_the_fingerprint_is_sha256_whichever_module_computes_it():
    for token in ("", "abc", "eyJhbGciOiJub25lIn0.eyJleHAiOjF9.c2ln", "ünïcode", "\udcff"):
        expected = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        assert token_fingerprint(token) == expected
