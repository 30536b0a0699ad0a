"""The background service as a Task Scheduler task started at logon, driven with `schtasks`. Experimental: built
and tested against Windows' documented behaviour, not yet run on Windows.

The task XML is built with ElementTree (which escapes XML) and written as UTF-16, as `schtasks /Create /XML`
expects. Arguments are one Windows command line (`subprocess.list2cmdline`), which the interpreter splits back
with the C runtime's rules; `split_windows_args` implements those rules so tests can check the round trip.
What Windows does, and where each choice comes from:
- `schtasks /Query` prints its field names and the Status column in the system's language ("Wird ausgeführt",
  "En cours d'exécution"); the task is therefore found by the exit code of `/Query /XML`, and its state read
  from the numeric Last Result column of `/FO CSV /NH /V` (267009, SCHED_S_TASK_RUNNING, while it runs).
- `RestartOnFailure` restarts a task whose *launch* failed, not an action that exited or was killed (Task
  Scheduler's settings documentation and field reports): the logon trigger also repeats every 5 minutes, and
  `MultipleInstancesPolicy IgnoreNew` makes that a no-op while the scheduler runs, a relaunch when it died.
- `/End` then `/Run` at once can be ignored under IgnoreNew while the old instance is still ending: we wait
  until the task no longer runs before `/Run`.
- A task has no environment of its own: the variables install forwards travel as arguments (`task_entry`).
- The Microsoft Store Python writes new files under AppData into a private per-package copy (Python's "Using
  Python on Windows", redirection of local data; python/cpython#85368) that psql never reads: install refuses
  it unless PGPASSFILE points outside AppData.
- The principal is the user's SID (`whoami /user`), which also names Entra ID (AzureAD) accounts; DOMAIN\name
  is the fallback.
"""

from __future__ import annotations

import logging
import ntpath
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path, PureWindowsPath

from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files.writer import write_public
from databricks.labs.oauth_rotator.service.base import (
    CommandRunner,
    ServiceError,
    ServiceManager,
    ServiceSpec,
    ServiceStatus,
    default_runner,
)
from databricks.labs.oauth_rotator.service.task_entry import task_arguments

logger = logging.getLogger(__name__)

TASK_NAME = "Databricks OAuth Rotator"
TASK_NAMESPACE = "http://schemas.microsoft.com/windows/2004/02/mit/task"
_TASK_RUNNING = 267009  # SCHED_S_TASK_RUNNING (0x41301), reported as "Last Result" while it runs
_TASK_HAS_NOT_RUN = 267011  # SCHED_S_TASK_HAS_NOT_RUN (0x41303)
_LAST_RESULT_COLUMN = 6  # /FO CSV /V: HostName, TaskName, Next Run Time, Status, Logon Mode, Last Run Time, Last Result
_RELAUNCH_INTERVAL = "PT5M"
_STOP_POLLS = 20
_POLL_SECONDS = 0.5
_SID = re.compile(r"S-1-\d+(-\d+)+\Z")
# Task Scheduler expands %NAME% in an action's command, arguments and working directory, with no escape.
_EXPANDABLE = re.compile(r"%[^%]+%")
_SETTINGS = (
    ("MultipleInstancesPolicy", "IgnoreNew"),
    ("DisallowStartIfOnBatteries", "false"),
    ("StopIfGoingOnBatteries", "false"),
    ("AllowHardTerminate", "true"),
    ("StartWhenAvailable", "true"),
    ("RunOnlyIfNetworkAvailable", "false"),
    ("AllowStartOnDemand", "true"),
    ("Enabled", "true"),
    ("Hidden", "false"),
    ("RunOnlyIfIdle", "false"),
    ("WakeToRun", "false"),
    ("ExecutionTimeLimit", "PT0S"),  # no limit: the daemon runs until logoff
    ("Priority", "7"),  # below normal, the default for tasks
)


def task_command(python: str, exists: Callable[[str], bool] = os.path.exists) -> str:
    """`pythonw.exe` next to `python.exe` when it exists, so no console window opens at logon."""
    tail = ntpath.basename(python)
    if tail.lower() != "python.exe":
        return python
    candidate = python[: len(python) - len(tail)] + "pythonw.exe"
    return candidate if exists(candidate) else python


def render_task_xml(spec: ServiceSpec, *, user: str | None = None, command: str | None = None) -> str:
    """The task definition for `spec` (text with a UTF-16 declaration: encode it as UTF-16 to write it).

    `user` (`DOMAIN\\name`) restricts the logon trigger and the principal to that user; `command` replaces
    `spec.python` (see `task_command`). A task has no environment of its own: it runs with the user's logon
    environment, and the daemon takes its profile from the config file.
    """
    command = command or spec.python
    arguments = subprocess.list2cmdline(task_argv(spec)[1:])
    for name, value in (("interpreter", command), ("arguments", arguments), ("home", str(spec.home))):
        if _EXPANDABLE.search(value):
            raise ConfigError(f"{name}: Task Scheduler would expand the %...% in {value!r} as a variable")
    task = ET.Element("Task", {"version": "1.2", "xmlns": TASK_NAMESPACE})
    info = _child(task, "RegistrationInfo")
    _child(info, "Description", "Keeps ~/.pgpass supplied with fresh Databricks Lakebase credentials.")
    _child(info, "URI", "\\" + TASK_NAME)
    trigger = _child(_child(task, "Triggers"), "LogonTrigger")
    _child(trigger, "Enabled", "true")
    # The schema's order (triggerBaseType): Enabled, StartBoundary, EndBoundary, Repetition, ...; then UserId.
    repetition = _child(trigger, "Repetition")  # relaunches a scheduler that died; IgnoreNew while it runs
    _child(repetition, "Interval", _RELAUNCH_INTERVAL)
    _child(repetition, "StopAtDurationEnd", "false")
    principal = ET.SubElement(_child(task, "Principals"), "Principal", {"id": "Author"})
    if user:
        _child(trigger, "UserId", user)
        _child(principal, "UserId", user)
    _child(principal, "LogonType", "InteractiveToken")  # runs in the user's session; no password stored
    _child(principal, "RunLevel", "LeastPrivilege")
    _settings(_child(task, "Settings"))
    action = ET.SubElement(ET.SubElement(task, "Actions", {"Context": "Author"}), "Exec")
    _child(action, "Command", command)
    _child(action, "Arguments", arguments)
    _child(action, "WorkingDirectory", str(spec.home))
    ET.indent(task)
    return '<?xml version="1.0" encoding="UTF-16"?>\n' + ET.tostring(task, encoding="unicode") + "\n"


def _settings(settings: ET.Element) -> None:
    for name, value in _SETTINGS[:6]:
        _child(settings, name, value)
    idle = _child(settings, "IdleSettings")
    _child(idle, "StopOnIdleEnd", "false")
    _child(idle, "RestartOnIdle", "false")
    for name, value in _SETTINGS[6:]:
        _child(settings, name, value)
    restart = _child(settings, "RestartOnFailure")  # a launch that failed; an exit is the repetition's job
    _child(restart, "Interval", "PT1M")
    _child(restart, "Count", "3")


def _child(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def parse_task(xml: str | bytes) -> ET.Element:
    """The root of a task definition, from its text or its UTF-16 bytes."""
    # Our own definition, not untrusted input; and expat >= 2.4.1 refuses entity-expansion bombs while
    # ElementTree never fetches external entities.
    return ET.fromstring(xml.encode("utf-16") if isinstance(xml, str) else xml)  # noqa: S314


def extract_argv(xml: str | bytes) -> list[str]:
    """The argv the task's Exec action starts: Command, then Arguments split as the C runtime splits them."""
    action = parse_task(xml).find(f"{{{TASK_NAMESPACE}}}Actions/{{{TASK_NAMESPACE}}}Exec")
    if action is None:
        raise ValueError("no Exec action in the task")
    command = action.findtext(f"{{{TASK_NAMESPACE}}}Command") or ""
    return [command, *split_windows_args(action.findtext(f"{{{TASK_NAMESPACE}}}Arguments") or "")]


def split_windows_args(text: str) -> list[str]:
    """Split a command line's arguments like the Microsoft C runtime (the inverse of `list2cmdline`)."""
    args: list[str] = []
    current: list[str] = []
    in_arg = in_quotes = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            count = len(text[i:]) - len(text[i:].lstrip("\\"))
            before_quote = text[i + count : i + count + 1] == '"'
            # Backslashes are literal unless a quote follows: then each pair is one, and an odd one escapes it.
            current.append("\\" * (count // 2 if before_quote else count))
            escaped_quote = before_quote and count % 2 == 1
            current.extend('"' * escaped_quote)
            i += count + escaped_quote
        elif char == '"' and in_quotes and text[i + 1 : i + 2] == '"':
            current.append('"')  # "" inside quotes is a literal quote (runtime since 2008)
            i += 2
        elif char == '"':
            in_quotes = not in_quotes
            i += 1
        elif char in " \t" and not in_quotes:
            if in_arg:
                args.append("".join(current))
            current, in_arg = [], False
            i += 1
            continue
        else:
            current.append(char)
            i += 1
        in_arg = True
    return [*args, "".join(current)] if in_arg else args


def task_argv(spec: ServiceSpec) -> list[str]:
    """The argv the task starts: the daemon's, through `task_entry` when there are variables to forward."""
    if not spec.environment:
        return spec.argv
    return [spec.python, *task_arguments(dict(spec.environment), spec.argv[3:])]


def last_result(csv_text: str) -> int | None:
    """The Last Result of `schtasks /Query /FO CSV /NH /V` (a number in every language), None when absent."""
    import csv
    import io

    for row in csv.reader(io.StringIO(csv_text)):
        if len(row) > _LAST_RESULT_COLUMN and re.fullmatch(r"-?\d+", row[_LAST_RESULT_COLUMN].strip()):
            return int(row[_LAST_RESULT_COLUMN])
    return None


def is_store_python(python: str) -> bool:
    """Whether `python` is the Microsoft Store's (installed under WindowsApps, package PythonSoftwareFoundation)."""
    lowered = python.lower()
    return "\\windowsapps\\" in lowered or "pythonsoftwarefoundation.python" in lowered


def _under(path: str, folder: str) -> bool:
    try:
        PureWindowsPath(path).relative_to(PureWindowsPath(folder))
    except ValueError:
        return False
    return True


class WindowsServiceManager(ServiceManager):
    """The service as the Task Scheduler task `Databricks OAuth Rotator`, run at the user's logon.

    A copy of the task XML is kept at `definition_path` (default under ~/.databricks/labs/oauth-rotator/state/).
    """

    def __init__(  # pylint: disable=too-many-arguments
        self,
        runner: CommandRunner = default_runner,
        *,
        home: Path | None = None,
        user: str | None = None,
        definition_path: Path | None = None,
        environ: Mapping[str, str] | None = None,
        exists: Callable[[str], bool] = os.path.exists,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(runner, home=home)
        self._definition_path = definition_path
        self._environ: Mapping[str, str] = environ if environ is not None else (os.environ if home is None else {})
        self._user = user
        self._exists = exists
        self._sleep = sleep

    @property
    def definition_path(self) -> Path:
        default = self._home / ".databricks" / "labs" / "oauth-rotator" / "state" / "windows-task.xml"
        return self._definition_path or default

    @property
    def user(self) -> str | None:
        """Whose logon starts the task: the SID `whoami /user` prints (Entra ID accounts have no usable
        DOMAIN\\name), else `USERDOMAIN\\USERNAME` from the environment."""
        if self._user:
            return self._user
        if self._environ:
            sid = self._sid()
            if sid:
                return sid
        name, domain = self._environ.get("USERNAME"), self._environ.get("USERDOMAIN")
        return f"{domain}\\{name}" if name and domain else name

    def render(self, spec: ServiceSpec) -> bytes:
        command = task_command(spec.python, self._exists)
        return render_task_xml(spec, user=self.user, command=command).encode("utf-16")

    def install(self, spec: ServiceSpec) -> str:
        if spec.env_file is not None:
            raise ConfigError(
                "a Task Scheduler task cannot load an environment file, so its secrets would never reach the daemon",
                fix="put the login in a ~/.databrickscfg profile (a service principal's client_id and client_secret, "
                "or auth_type = file-oidc with its oidc_token_filepath)",
            )
        self._refuse_store_python(spec)
        data = self.render(spec)
        registered = self._registered(strict=False)
        was_running = registered and self._running()
        write_public(self.definition_path, data, mode=0o644)
        self._schtasks("/Create", "/TN", TASK_NAME, "/XML", str(self.definition_path), "/F")
        if was_running:  # /Create /F does not touch a running instance, and IgnoreNew would ignore /Run
            self._end()
        self._schtasks("/Run", "/TN", TASK_NAME)
        verb = "Updated" if registered else "Installed"
        return f"{verb} the task '{TASK_NAME}' from {self.definition_path} and started it."

    def uninstall(self) -> str:
        try:
            registered = self._registered()
        except ServiceError:
            registered = True  # our copy of the XML exists, so it was installed: try to delete it all the same
        if not registered:
            self.definition_path.unlink(missing_ok=True)
            message = f"The task '{TASK_NAME}' is not installed; nothing to do."
            logger.info(message)
            return message
        self._runner(["schtasks", "/End", "/TN", TASK_NAME])  # fails harmlessly when it is not running
        argv = ["schtasks", "/Delete", "/TN", TASK_NAME, "/F"]
        self._run(argv, fix=f"if the task no longer exists, delete {self.definition_path}")
        self.definition_path.unlink(missing_ok=True)
        return f"Stopped and deleted the task '{TASK_NAME}'."

    def restart(self) -> None:
        self._end()
        self._schtasks("/Run", "/TN", TASK_NAME)

    def status(self) -> ServiceStatus:
        if not self._registered():
            return ServiceStatus(installed=False, running=False, detail="not installed")
        code = self._last_result()
        running = code == _TASK_RUNNING
        shown = "unknown" if code is None else f"{code} (0x{code & 0xFFFFFFFF:X})"
        return ServiceStatus(
            installed=True,
            running=running,
            last_exit_code=None if code in (None, _TASK_RUNNING, _TASK_HAS_NOT_RUN) else code,
            detail=f"{'running' if running else 'not running'}, Last Result: {shown}",
        )

    def _refuse_store_python(self, spec: ServiceSpec) -> None:
        if not is_store_python(spec.python):
            return
        pgpass = spec.environment.get("PGPASSFILE", "")
        appdata = self._environ.get("APPDATA", str(spec.home / "AppData"))
        if pgpass and not _under(pgpass, appdata) and not _under(pgpass, str(spec.home / "AppData")):
            return
        raise ConfigError(
            f"the Microsoft Store Python ({spec.python}) writes new files under AppData to a private copy that psql "
            "never reads, so the credentials would never reach it",
            fix="install Python from python.org, or set PGPASSFILE to a file outside AppData (e.g. "
            "%USERPROFILE%\\.pgpass) and install again",
        )

    def _registered(self, *, strict: bool = True) -> bool:
        """Whether the task exists: `/Query /XML` exits 0 (its output and messages are localized, not its code)."""
        argv = ["schtasks", "/Query", "/TN", TASK_NAME, "/XML"]
        result = self._runner(argv)
        if result.returncode == 0:
            return True
        # Our own copy of the XML tells whether we installed it, whatever the localized message says.
        if not strict or not self.definition_path.exists():
            return False
        raise ServiceError.from_result(argv, result, fix=f'check the task with `schtasks /Query /TN "{TASK_NAME}"`')

    def _last_result(self) -> int | None:
        result = self._runner(["schtasks", "/Query", "/TN", TASK_NAME, "/FO", "CSV", "/NH", "/V"])
        return last_result(result.stdout) if result.returncode == 0 else None

    def _running(self) -> bool:
        return self._last_result() == _TASK_RUNNING

    def _end(self) -> None:
        """End the running instance and wait until it is gone, so that the next /Run is not ignored (IgnoreNew)."""
        self._runner(["schtasks", "/End", "/TN", TASK_NAME])  # fails harmlessly when it is not running
        for _ in range(_STOP_POLLS):
            if not self._running():
                return
            self._sleep(_POLL_SECONDS)
        raise ServiceError(
            f"the task '{TASK_NAME}' was still running {_STOP_POLLS * _POLL_SECONDS:g} s after `schtasks /End`",
            command=["schtasks", "/End", "/TN", TASK_NAME],
            fix="end `pythonw.exe` in Task Manager, then run the command again",
        )

    def _sid(self) -> str | None:
        try:
            result = self._runner(["whoami", "/user", "/fo", "csv", "/nh"])
        except ServiceError:  # no whoami (not Windows, or a stripped PATH): fall back to the name
            return None
        if result.returncode != 0:
            return None
        fields = [field.strip().strip('"') for field in result.stdout.strip().split(",")]
        return fields[-1] if fields and _SID.match(fields[-1]) else None

    def _schtasks(self, *args: str) -> None:
        self._run(["schtasks", *args], fix=f'see `schtasks /Query /TN "{TASK_NAME}" /V /FO LIST`')
