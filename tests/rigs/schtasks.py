"""A `schtasks` stand-in that keeps Task Scheduler's state and answers in the system's language (no Windows here).

It is a CommandRunner for the Windows manager. Facts it models, and their sources:
- `/Query /TN NAME` exits 0 for a registered task and 1 with a localized "ERROR: The system cannot find the file
  specified." (German "FEHLER: Das System kann die angegebene Datei nicht finden.") otherwise; `/XML` prints the
  task's XML, which is not localized (the Task Scheduler schema).
- `/FO LIST /V` prints localized field names and a localized Status ("Running", "Wird ausgeführt",
  "En cours d'exécution"); `/FO CSV /NH /V` prints the same fields without a header, in a fixed order, with
  Last Result as a decimal number in every language (267009, SCHED_S_TASK_RUNNING, while it runs; 267011 before
  the first run; 267014, SCHED_S_TASK_TERMINATED, after /End) (Microsoft's Task Scheduler error and success
  constants; `schtasks query` documentation).
- `/Run` under `MultipleInstancesPolicy IgnoreNew` does nothing while an instance runs, and still exits 0.
- `/End` asks the instance to end; it may take a few queries to be gone (`end_turns`).
- `RestartOnFailure` applies to a launch that failed, not to an action that exited (Task Scheduler settings
  documentation and field reports); a trigger's `Repetition` interval starts the task again when it is due,
  subject to IgnoreNew.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from subprocess import CompletedProcess

NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
RUNNING, HAS_NOT_RUN, TERMINATED = 267009, 267011, 267014
LANGUAGES = {
    "en": {"status": "Status", "result": "Last Result", "running": "Running", "ready": "Ready",
           "missing": "ERROR: The system cannot find the file specified.", "ok": "SUCCESS: "},
    "de": {"status": "Status", "result": "Letztes Ergebnis", "running": "Wird ausgeführt", "ready": "Bereit",
           "missing": "FEHLER: Das System kann die angegebene Datei nicht finden.", "ok": "ERFOLGREICH: "},
    "fr": {"status": "Statut", "result": "Dernier résultat", "running": "En cours d'exécution", "ready": "Prêt",
           "missing": "ERREUR : Le fichier spécifié est introuvable.", "ok": "Opération réussie : "},
}  # fmt: skip


@dataclass
class Task:
    """One registered task: its XML, whether an instance runs, its Last Result, and its launches."""

    xml: bytes
    running: bool = False
    result: int = HAS_NOT_RUN
    launches: int = 0
    end_turns: int | None = None

    @property
    def root(self) -> ET.Element:
        return ET.fromstring(self.xml)  # noqa: S314 - our own test XML

    def setting(self, name: str) -> str | None:
        return self.root.findtext(f"t:Settings/t:{name}", namespaces=NS)

    def repetition(self) -> str | None:
        return self.root.findtext("t:Triggers/t:LogonTrigger/t:Repetition/t:Interval", namespaces=NS)


@dataclass
class TaskScheduler:
    """Task Scheduler's state for one user, driven through `__call__` as `schtasks` would drive it."""

    language: str = "en"
    end_turns: int = 0
    """How many queries an instance keeps running after /End (0: it ends at once)."""
    tasks: dict[str, Task] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, argv: Sequence[str], /) -> CompletedProcess[str]:
        command = list(argv)
        self.calls.append(command)
        if command[0] == "whoami":
            return CompletedProcess(command, 0, '"pc\\\\ana","S-1-12-1-1111-2222-3333-4444"\n', "")
        assert command[0] == "schtasks", command
        verb, name = command[1], command[command.index("/TN") + 1]
        return getattr(self, f"_{verb[1:].lower()}")(command, name)

    # ---- what tests do ---------------------------------------------------------------------------------------

    def exited(self, name: str, code: int) -> None:
        """The running action exited with `code` (or was killed): RestartOnFailure does not apply."""
        task = self.tasks[name]
        task.running, task.result = False, code

    def minutes_pass(self, name: str, minutes: int) -> None:
        """Time passes: a trigger repetition that is due starts the task (IgnoreNew if it runs)."""
        task = self.tasks[name]
        interval = task.repetition()
        if interval and interval.startswith("PT") and interval.endswith("M") and minutes >= int(interval[2:-1]):
            self._start(task)

    # ---- schtasks' verbs -------------------------------------------------------------------------------------

    def _create(self, command: list[str], name: str) -> CompletedProcess[str]:
        with open(command[command.index("/XML") + 1], "rb") as f:
            xml = f.read()
        old = self.tasks.get(name)
        if old is not None and "/F" not in command:
            return self._fail(command, "ERROR: Cannot create a file when that file already exists.")
        task = self.tasks[name] = Task(xml)
        if old is not None:  # /Create /F replaces the definition, not the running instance
            task.running, task.result, task.launches, task.end_turns = old.running, old.result, old.launches, None
        return self._ok(command, f'The scheduled task "{name}" has successfully been created.')

    def _query(self, command: list[str], name: str) -> CompletedProcess[str]:
        task = self.tasks.get(name)
        if task is None:
            return self._fail(command, self._words["missing"])
        self._tick(task)
        if "/XML" in command:
            return CompletedProcess(command, 0, task.xml.decode("utf-16"), "")
        status = self._words["running" if task.running else "ready"]
        if "CSV" in command:
            row = ["PC", f"\\\\{name}", "N/A", status, "Interactive only", "06.12.2026 09:00:00", str(task.result)]
            return CompletedProcess(command, 0, ",".join(f'"{value}"' for value in row) + "\n", "")
        lines = [f"{self._words['status']}: {status}", f"{self._words['result']}: {task.result}"]
        return CompletedProcess(command, 0, "\n".join(lines) + "\n", "")

    def _run(self, command: list[str], name: str) -> CompletedProcess[str]:
        task = self.tasks.get(name)
        if task is None:
            return self._fail(command, self._words["missing"])
        self._tick(task)
        self._start(task)
        return self._ok(command, f'Attempted to run the scheduled task "{name}".')

    def _end(self, command: list[str], name: str) -> CompletedProcess[str]:
        task = self.tasks.get(name)
        if task is None:
            return self._fail(command, self._words["missing"])
        if not task.running:
            return self._fail(command, f'ERROR: The task "{name}" is not running.')
        if self.end_turns:
            task.end_turns = self.end_turns
        else:
            task.running, task.result = False, TERMINATED
        return self._ok(command, f'The scheduled task "{name}" was terminated.')

    def _delete(self, command: list[str], name: str) -> CompletedProcess[str]:
        if self.tasks.pop(name, None) is None:
            return self._fail(command, self._words["missing"])
        return self._ok(command, f'The scheduled task "{name}" was successfully deleted.')

    # ---- the model -------------------------------------------------------------------------------------------

    @property
    def _words(self) -> dict[str, str]:
        return LANGUAGES[self.language]

    @staticmethod
    def _start(task: Task) -> None:
        if task.running and task.setting("MultipleInstancesPolicy") == "IgnoreNew":
            return
        task.running, task.result, task.launches = True, RUNNING, task.launches + 1

    @staticmethod
    def _tick(task: Task) -> None:
        if task.end_turns is not None:
            if task.end_turns <= 0:
                task.running, task.result, task.end_turns = False, TERMINATED, None
            else:
                task.end_turns -= 1

    def _ok(self, command: list[str], text: str) -> CompletedProcess[str]:
        return CompletedProcess(command, 0, self._words["ok"] + text + "\n", "")

    @staticmethod
    def _fail(command: list[str], text: str) -> CompletedProcess[str]:
        return CompletedProcess(command, 1, "", text + "\n")
