"""The background service as a systemd user unit, driven with `systemctl --user`.

Quoting follows systemd.service(5) "Command lines" and systemd.exec(5): ExecStart words and Environment=
assignments are double-quoted with C-style backslash escapes, `%` is doubled everywhere (specifiers), and `$` is
doubled in command arguments (variable substitution). Settings that take a bare path (StandardOutput=append:,
EnvironmentFile=) are read verbatim, so only `%` is escaped there.

Versions: `StandardOutput=append:` exists since systemd 240 (systemd.exec(5), NEWS for 240); RHEL 8 has 239, which
rejects the line and falls back to the journal with a warning. The manager asks `systemctl --version` and, below
240, sends output to the journal on purpose (`journalctl --user -u databricks-oauth-rotator`).
`network-online.target` is a system unit: a user manager has no such target (it is never reached there, and a
user unit cannot order itself after system units), so the unit does not name it; the daemon retries a cycle that
found no network with backoff instead.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from databricks.labs.oauth_rotator.deadlines import CYCLE_TIMEOUT_SECONDS
from databricks.labs.oauth_rotator.errors import ConfigError
from databricks.labs.oauth_rotator.files.writer import write_public
from databricks.labs.oauth_rotator.names import SYSTEMD_SHOW_PROPERTIES, SYSTEMD_UNIT_NAME
from databricks.labs.oauth_rotator.paths import systemd_unit_file_name
from databricks.labs.oauth_rotator.service.base import (
    CommandRunner,
    ServiceError,
    ServiceManager,
    ServiceSpec,
    ServiceStatus,
    default_runner,
    prepare_log_files,
)

logger = logging.getLogger(__name__)

UNIT_NAME = SYSTEMD_UNIT_NAME
ENV_BINARY = "/usr/bin/env"
SHOW_PROPERTIES = SYSTEMD_SHOW_PROPERTIES
APPEND_SINCE = 240
"""The first systemd with `StandardOutput=append:`."""
# systemd refuses an executable path with quotes, backslashes or control characters ("Executable name contains
# special characters"), whatever the quoting; such an interpreter is started through env(1) instead.
_UNSAFE_EXECUTABLE = re.compile(r"[\"'\\\x00-\x1f\x7f]")
_C_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "s": " "}
_START_LIMIT_FIX = (
    f"see `systemctl --user status {UNIT_NAME}`; if the start limit was hit, fix the cause, then run "
    f"`systemctl --user reset-failed {UNIT_NAME}`"
)


def quote_word(word: str, *, dollars: bool = True) -> str:
    """`word` as one double-quoted systemd word; `dollars=False` for Environment= and the executable path."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if dollars:
        escaped = escaped.replace("$", "$$")
    return f'"{escaped}"'


def exec_start(argv: Sequence[str]) -> str:
    """The ExecStart= value that runs exactly `argv` (its first item an absolute path)."""
    executable, *args = argv
    if _UNSAFE_EXECUTABLE.search(executable) or ".." in PurePosixPath(executable).parts:
        if "=" in executable:  # env(1) would take it for a VAR=value assignment
            raise ConfigError(f"systemd cannot run an interpreter at {executable!r}", fix="move the virtualenv")
        words = [ENV_BINARY, quote_word(executable)]
    else:
        words = [quote_word(executable, dollars=False)]  # systemd never substitutes $ in the executable
    return " ".join(words + [quote_word(arg) for arg in args])


def _bare_path(setting: str, path: Path) -> str:
    text = str(path)
    # The unit parser strips trailing whitespace and joins a line ending in a backslash with the next one.
    if text != text.rstrip() or text.endswith("\\"):
        raise ConfigError(f"{setting}: systemd cannot store a path that ends in whitespace or '\\': {text!r}")
    return text.replace("%", "%%")


def render_unit(spec: ServiceSpec, *, systemd_version: int | None = None) -> str:
    """The unit file text for `spec`; it holds paths and a profile name, never a secret.

    Output goes to `spec.stdout_log`/`stderr_log`, or to the journal when `systemd_version` is known to be older
    than 240 (no `append:` there)."""
    service = [
        "[Service]",
        # The scheduler says READY=1 once its first cycle has ended (rotation/readiness.py): `systemctl start` and
        # the units ordered after ours wait for the first credential. Only the main process may say so.
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={exec_start(spec.argv)}",
        # SIGHUP reloads the config in place (`systemctl --user reload`): no restart, the front's sessions stay.
        "ExecReload=/bin/kill -HUP $MAINPID",
        # Longer than a first cycle may take (its watchdog ends it after CYCLE_TIMEOUT_SECONDS), then READY=1.
        f"TimeoutStartSec={int(CYCLE_TIMEOUT_SECONDS) + 30}",
        # on-failure, not always: a clean exit (e.g. a configuration error reported once) must not loop.
        "Restart=on-failure",
        # Exit code 2 is an unusable configuration: restarting cannot fix it, the user must.
        "RestartPreventExitStatus=2",
        "RestartSec=30",
        *(f"Environment={quote_word(f'{k}={v}', dollars=False)}" for k, v in spec.service_environment.items()),
    ]
    if spec.env_file is not None:
        service.append(f"EnvironmentFile=-{_bare_path('env_file', spec.env_file)}")
    if systemd_version is not None and systemd_version < APPEND_SINCE:
        service += ["StandardOutput=journal", "StandardError=journal"]
    else:
        service += [
            f"StandardOutput=append:{_bare_path('stdout_log', spec.stdout_log)}",
            f"StandardError=append:{_bare_path('stderr_log', spec.stderr_log)}",
        ]
    service += [
        "NoNewPrivileges=true",
        "LimitCORE=0",  # a core dump would hold the credentials in memory
        "UMask=0077",
    ]
    lines = [
        "# Written by databricks-labs-oauth-rotator; `databricks labs oauth-rotator install` rewrites it.",
        "# No secrets here: the daemon authenticates with a ~/.databrickscfg profile or a 0600 EnvironmentFile.",
        "[Unit]",
        "Description=Databricks OAuth Rotator: fresh Lakebase credentials in ~/.pgpass",
        "Documentation=https://github.com/databrickslabs/oauth-rotator",
        "StartLimitIntervalSec=300",
        "StartLimitBurst=5",
        "",
        *service,
        "",
        "[Install]",
        "WantedBy=default.target",
    ]
    return "\n".join(lines) + "\n"


def extract_argv(unit_text: str) -> list[str]:
    """The argv systemd runs for the unit's ExecStart= (after unquoting, specifiers and `$$`)."""
    for line in unit_text.splitlines():
        if line.startswith("ExecStart="):
            words = split_command_line(line.removeprefix("ExecStart="))
            return [_resolve(word, substitute=index > 0) for index, word in enumerate(words)]
    raise ValueError("no ExecStart= line in the unit")


def split_command_line(value: str) -> list[str]:
    """Split a systemd command line into words: double/single quotes and C escapes, as systemd's parser does."""
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quote = ""
    chars = iter(value)
    for char in chars:
        if char == "\\":
            current.append(_unescape(next(chars, ""), value))
            in_word = True
        elif quote:
            if char == quote:
                quote = ""
            else:
                current.append(char)
        elif char in "\"'":
            quote, in_word = char, True
        elif char.isspace():
            if in_word:
                words.append("".join(current))
            current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if quote:
        raise ValueError(f"unterminated quote in {value!r}")
    return [*words, "".join(current)] if in_word else words


def _unescape(char: str, value: str) -> str:
    if char not in _C_ESCAPES:
        raise ValueError(f"unsupported escape \\{char} in {value!r}")
    return _C_ESCAPES[char]


def _resolve(word: str, *, substitute: bool) -> str:
    def specifier(match: re.Match[str]) -> str:
        if match.group(0) != "%%":  # we only ever write %%; anything else would be expanded by systemd
            raise ValueError(f"unexpected specifier {match.group(0)!r} in {word!r}")
        return "%"

    word = re.sub(r"%.?", specifier, word)
    return word.replace("$$", "$") if substitute else word


def parse_properties(text: str) -> dict[str, str]:
    """`Key=Value` lines (as `systemctl show` prints them) as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class SystemdServiceManager(ServiceManager):
    """The service as a systemd user unit under `$XDG_CONFIG_HOME/systemd/user/` (default `~/.config/...`).

    `environ` (XDG_CONFIG_HOME, USER) defaults to `os.environ` only when `home` is not given, so a test that
    passes a temporary home never writes into the real configuration directory.
    """

    def __init__(
        self,
        runner: CommandRunner = default_runner,
        *,
        home: Path | None = None,
        environ: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> None:
        super().__init__(runner, home=home)
        self._environ: Mapping[str, str] = environ if environ is not None else (os.environ if home is None else {})
        self._user = user

    @property
    def definition_path(self) -> Path:
        return Path(systemd_unit_file_name(str(self._home), self._environ))

    def render(self, spec: ServiceSpec) -> bytes:
        return render_unit(spec, systemd_version=self.version()).encode("utf-8")

    def version(self) -> int | None:
        """The systemd version `systemctl --version` names on its first line ("systemd 252 (252.30-1~deb12u2)")."""
        try:
            result = self._runner(["systemctl", "--version"])
        except ServiceError:
            return None
        match = re.match(r"systemd (\d+)", result.stdout) if result.returncode == 0 else None
        return int(match.group(1)) if match else None

    def install(self, spec: ServiceSpec) -> str:
        data = self.render(spec)
        existed = self.definition_path.exists()
        was_active = existed and self._systemctl_ok("is-active", "--quiet", UNIT_NAME)
        write_public(self.definition_path, data, mode=0o644)
        prepare_log_files(spec)
        self._systemctl("daemon-reload")
        if existed and not was_active:
            self._systemctl_ok("reset-failed", UNIT_NAME)  # a unit that hit its start limit would refuse to start
        self._systemctl("enable", "--now", UNIT_NAME, fix=_START_LIMIT_FIX)
        if was_active:  # enable --now leaves a running process on the old definition
            self._systemctl("restart", UNIT_NAME, fix=_START_LIMIT_FIX)
        verb = "Updated" if existed else "Installed"
        messages = [f"{verb} {self.definition_path} and {'restarted' if was_active else 'started'} {UNIT_NAME}."]
        notice = self._linger_notice()
        if notice:
            logger.warning(notice)
            messages.append(notice)
        return "\n".join(messages)

    def uninstall(self) -> str:
        if not self.definition_path.exists():
            message = f"{UNIT_NAME} is not installed ({self.definition_path} does not exist); nothing to do."
            logger.info(message)
            return message
        fix = f"remove {self.definition_path} by hand, then run `systemctl --user daemon-reload`"
        self._systemctl("disable", "--now", UNIT_NAME, fix=fix)
        self.definition_path.unlink(missing_ok=True)
        self._systemctl("daemon-reload")
        return f"Stopped {UNIT_NAME} and removed {self.definition_path}."

    def restart(self) -> None:
        self._systemctl_ok("reset-failed", UNIT_NAME)  # an explicit restart should get past the start limit
        self._systemctl("restart", UNIT_NAME, fix=_START_LIMIT_FIX)

    def status(self) -> ServiceStatus:
        result = self._systemctl("show", UNIT_NAME, f"--property={SHOW_PROPERTIES}")
        props = parse_properties(result.stdout)
        installed = self.definition_path.exists()
        detail = f"{props.get('ActiveState', 'unknown')} ({props.get('SubState', 'unknown')})"
        if installed and props.get("LoadState") != "loaded":
            detail += f", unit {props.get('LoadState', 'unknown')}: run `systemctl --user daemon-reload`"
        return ServiceStatus(
            installed=installed,
            running=props.get("ActiveState") == "active",
            pid=_positive_int(props.get("MainPID")),
            last_exit_code=_int_or_none(props.get("ExecMainStatus")),
            detail=detail,
        )

    def _linger_notice(self) -> str | None:
        try:
            user = self._user or self._environ.get("USER") or getpass.getuser()
            result = self._runner(["loginctl", "show-user", user, "--property=Linger"])
        except (ServiceError, KeyError, OSError) as e:  # no logind, or no name for our uid: nothing to advise
            logger.debug(f"could not check lingering: {e}")
            return None
        if result.returncode == 0 and parse_properties(result.stdout).get("Linger") == "no":
            return (
                f"Lingering is off for {user}: the service stops when your last session ends and starts at your "
                f"next login. On a headless host run `loginctl enable-linger {user}` so it keeps running."
            )
        return None

    def _systemctl(self, *args: str, fix: str | None = None) -> subprocess.CompletedProcess[str]:
        return self._run(["systemctl", "--user", *args], fix=fix)

    def _systemctl_ok(self, *args: str) -> bool:
        return self._runner(["systemctl", "--user", *args]).returncode == 0


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _positive_int(value: str | None) -> int | None:
    number = _int_or_none(value)
    return number if number else None
