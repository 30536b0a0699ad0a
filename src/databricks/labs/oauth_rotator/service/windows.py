"""The background service as a Task Scheduler task started at logon, driven with `schtasks`.

The task XML is built with ElementTree (which escapes XML) and written as UTF-16, as `schtasks /Create /XML`
expects. Arguments are one Windows command line (`subprocess.list2cmdline`), which the interpreter splits back
with the C runtime's rules; `split_windows_args` implements those rules so tests can check the round trip.
"""

from __future__ import annotations

import logging
import ntpath
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path

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

logger = logging.getLogger(__name__)

TASK_NAME = "Databricks OAuth Rotator"
TASK_NAMESPACE = "http://schemas.microsoft.com/windows/2004/02/mit/task"
_TASK_RUNNING = 267009  # SCHED_S_TASK_RUNNING (0x41301), reported as "Last Result" while it runs
_TASK_HAS_NOT_RUN = 267011  # SCHED_S_TASK_HAS_NOT_RUN (0x41303)
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
    arguments = subprocess.list2cmdline(spec.argv[1:])
    for name, value in (("interpreter", command), ("arguments", arguments), ("home", str(spec.home))):
        if _EXPANDABLE.search(value):
            raise ConfigError(f"{name}: Task Scheduler would expand the %...% in {value!r} as a variable")
    task = ET.Element("Task", {"version": "1.2", "xmlns": TASK_NAMESPACE})
    info = _child(task, "RegistrationInfo")
    _child(info, "Description", "Keeps ~/.pgpass supplied with fresh Databricks Lakebase credentials.")
    _child(info, "URI", "\\" + TASK_NAME)
    trigger = _child(_child(task, "Triggers"), "LogonTrigger")
    _child(trigger, "Enabled", "true")
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
    restart = _child(settings, "RestartOnFailure")  # what systemd's Restart=on-failure does
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


def parse_query(text: str) -> dict[str, str]:
    """`Key: Value` lines of `schtasks /Query /FO LIST /V` as a dict (the first occurrence of each key)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            fields.setdefault(key.strip(), value.strip())
    return fields


class WindowsServiceManager(ServiceManager):
    """The service as the Task Scheduler task `Databricks OAuth Rotator`, run at the user's logon.

    A copy of the task XML is kept at `definition_path` (default under ~/.databricks/labs/oauth-rotator/state/).
    """

    def __init__(
        self,
        runner: CommandRunner = default_runner,
        *,
        home: Path | None = None,
        user: str | None = None,
        definition_path: Path | None = None,
        environ: Mapping[str, str] | None = None,
        exists: Callable[[str], bool] = os.path.exists,
    ) -> None:
        super().__init__(runner, home=home)
        self._definition_path = definition_path
        self._environ: Mapping[str, str] = environ if environ is not None else (os.environ if home is None else {})
        self._user = user
        self._exists = exists

    @property
    def definition_path(self) -> Path:
        default = self._home / ".databricks" / "labs" / "oauth-rotator" / "state" / "windows-task.xml"
        return self._definition_path or default

    @property
    def user(self) -> str | None:
        """`DOMAIN\\name` of the user whose logon starts the task (from USERDOMAIN and USERNAME by default)."""
        if self._user:
            return self._user
        name, domain = self._environ.get("USERNAME"), self._environ.get("USERDOMAIN")
        return f"{domain}\\{name}" if name and domain else name

    def render(self, spec: ServiceSpec) -> bytes:
        command = task_command(spec.python, self._exists)
        return render_task_xml(spec, user=self.user, command=command).encode("utf-16")

    def install(self, spec: ServiceSpec) -> str:
        if spec.env_file is not None:
            raise ConfigError(
                "a Task Scheduler task cannot load an environment file, so its secrets would never reach the daemon",
                fix="put the service principal's client_id and client_secret in a ~/.databrickscfg profile",
            )
        data = self.render(spec)
        fields = self._query(strict=False)  # /Create /F below replaces whatever is there
        was_running = fields is not None and fields.get("Status") == "Running"
        write_public(self.definition_path, data, mode=0o644)
        self._schtasks("/Create", "/TN", TASK_NAME, "/XML", str(self.definition_path), "/F")
        if was_running:  # /Create /F does not touch a running instance, and IgnoreNew would ignore /Run
            self._schtasks("/End", "/TN", TASK_NAME)
        self._schtasks("/Run", "/TN", TASK_NAME)
        verb = "Updated" if fields is not None else "Installed"
        return f"{verb} the task '{TASK_NAME}' from {self.definition_path} and started it."

    def uninstall(self) -> str:
        try:
            fields = self._query()
        except ServiceError:
            fields = {}  # our copy of the XML exists, so it was installed: try to delete it all the same
        if fields is None:
            self.definition_path.unlink(missing_ok=True)
            message = f"The task '{TASK_NAME}' is not installed; nothing to do."
            logger.info(message)
            return message
        if fields.get("Status") == "Running":
            self._runner(["schtasks", "/End", "/TN", TASK_NAME])  # /Delete is what matters
        argv = ["schtasks", "/Delete", "/TN", TASK_NAME, "/F"]
        self._run(argv, fix=f"if the task no longer exists, delete {self.definition_path}")
        self.definition_path.unlink(missing_ok=True)
        return f"Stopped and deleted the task '{TASK_NAME}'."

    def restart(self) -> None:
        self._runner(["schtasks", "/End", "/TN", TASK_NAME])  # fails harmlessly when it is not running
        self._schtasks("/Run", "/TN", TASK_NAME)

    def status(self) -> ServiceStatus:
        fields = self._query()
        if fields is None:
            return ServiceStatus(installed=False, running=False, detail="not installed")
        state, last = fields.get("Status", "unknown"), fields.get("Last Result", "unknown")
        code = int(last) if re.fullmatch(r"-?\d+", last) else None
        return ServiceStatus(
            installed=True,
            running=state == "Running",
            last_exit_code=None if code in (_TASK_RUNNING, _TASK_HAS_NOT_RUN) else code,
            detail=f"Status: {state}, Last Result: {last}",
        )

    def _query(self, *, strict: bool = True) -> dict[str, str] | None:
        """The task's fields, or None when it is not registered (or, unless `strict`, cannot be queried)."""
        argv = ["schtasks", "/Query", "/TN", TASK_NAME, "/FO", "LIST", "/V"]
        result = self._runner(argv)
        if result.returncode == 0:
            return parse_query(result.stdout)
        # schtasks' "cannot find the file" is localized; our own copy of the XML tells whether we installed it.
        if not strict or not self.definition_path.exists():
            return None
        raise ServiceError.from_result(argv, result, fix=f'check the task with `schtasks /Query /TN "{TASK_NAME}"`')

    def _schtasks(self, *args: str) -> None:
        self._run(["schtasks", *args], fix=f'see `schtasks /Query /TN "{TASK_NAME}" /V /FO LIST`')
