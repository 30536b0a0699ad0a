"""databrickslabs/sandbox as the Databricks CLI installs and runs it, for tests of contrib/sandbox/.

`LAYOUT` is a minimal tree laid out like the sandbox (written for these tests, not the sandbox's code): a root
`labs.yml` with one tool, a `cli.py` router of the sandbox's shape (`MAPPING[command](**flags)`, every flag a string,
`-` turned into `_`, `log_level` popped first), a hatchling `pyproject.toml` with the sandbox's pins, and a no-op
`install.py`. The few lines the patch needs as context are the sandbox's own, as they must be.

`SandboxInstall` lays that tree out as `~/.databricks/labs/sandbox/lib` in a temporary home, applies
contrib/sandbox/sandbox.patch to it, gives it a virtualenv that reuses this one's packages (oauth-rotator included),
and runs its commands exactly as the CLI runs a labs entrypoint: `<venv python> <lib>/cli.py '<json payload>'`.

`FAKE_SYSTEMCTL` stands in for `systemctl --user` (there is no user manager here): it keeps the unit's state in a
file next to itself, so the real `SystemdServiceManager` installs, reports and uninstalls against a temporary home.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PATCH = ROOT / "contrib" / "sandbox" / "sandbox.patch"

LAYOUT = {
    "labs.yml": """\
name: sandbox
install:
  script: install.py
description: A tree laid out like databrickslabs/sandbox
entrypoint: cli.py
min_python: 3.10
commands:
  - name: ip-access-list-analyzer
    description: "A tool that was there before"
    flags:
      - name: input
        description: "A file to read"
        default: ''
      - name: apply
        description: "If script should do the changes"
        default: false""",  # the sandbox's labs.yml ends without a newline
    "cli.py": """\
import json
import logging
import sys


def ip_access_list_analyzer(**args):
    print(json.dumps({"tool": "ip-access-list-analyzer", "args": args}))

def sql_migration_assistant(**args):
    from sql_migration_assistant import hello
    hello()

MAPPING = {
    "ip-access-list-analyzer": ip_access_list_analyzer,
    "sql-migration-assistant": sql_migration_assistant
}


def main(raw):
    payload = json.loads(raw)
    command = payload["command"]
    if command not in MAPPING:
        raise KeyError(f"cannot find command: {command}")
    flags = payload["flags"]
    log_level = flags.pop("log_level")
    if log_level != "disabled":
        logging.getLogger("databricks").setLevel(log_level.upper())
    MAPPING[command](**{k.replace("-", "_"): v for k, v in flags.items()})


if __name__ == "__main__":
    main(*sys.argv[1:])
""",
    "pyproject.toml": """\
[project]
name = "sandbox-layout"
version = "0.0.1"
authors = [
    {name = "tests"},
]
requires-python = ">=3.10"
dependencies = [
    "databricks-sdk==0.40.0",
    "pyyaml~=6.0.2",
    "mlflow[databricks]~=2.16.0",
    "databricks-labs-blueprint==0.12.0",
    "databricks-labs-lsql==0.14.1",
]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
""",
    "install.py": "",
}

FAKE_SYSTEMCTL = """#!/bin/sh
# `systemctl --user ...` for one unit, its state in "$0.state" (absent: inactive); each call in "$0.calls".
echo "$@" >> "$0.calls"
[ "$1" = "--user" ] && shift
case "$1" in
  enable) echo active > "$0.state" ;;
  disable) rm -f "$0.state" ;;
  restart) echo active > "$0.state" ;;
  is-active) [ -f "$0.state" ] || exit 3 ;;
  show)
    if [ -f "$0.state" ]; then
      printf 'ActiveState=active\\nSubState=running\\nMainPID=4242\\nExecMainStatus=0\\nLoadState=loaded\\n'
    else
      printf 'ActiveState=inactive\\nSubState=dead\\nMainPID=0\\nExecMainStatus=0\\nLoadState=loaded\\n'
    fi ;;
esac
exit 0
"""
FAKE_LOGINCTL = """#!/bin/sh
printf 'Linger=yes\\n'
"""


def write_layout(root: Path) -> None:
    """The minimal sandbox tree in `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in LAYOUT.items():
        (root / name).write_text(text, encoding="utf-8")


def apply_patch(root: Path, *, check: bool = False) -> subprocess.CompletedProcess[str]:
    """`git apply [--check] contrib/sandbox/sandbox.patch` in `root`, a plain folder (no repository needed)."""
    argv = ["git", "apply", *(["--check"] if check else []), "-v", str(PATCH)]
    # Inside a repository (a --basetemp under a checkout), git would apply the paths relative to its root.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(root.parent)}
    return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=30, check=False)


def install_fake_service_tools(bin_dir: Path) -> Path:
    """`systemctl` and `loginctl` stand-ins in `bin_dir`; returns the fake systemctl."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("systemctl", FAKE_SYSTEMCTL), ("loginctl", FAKE_LOGINCTL)):
        (bin_dir / name).write_text(text, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    return bin_dir / "systemctl"


def make_venv(venv: Path) -> Path:
    """A virtualenv without pip whose site-packages also reads this one's (oauth-rotator is installed there in
    editable mode, with the SDK and blueprint): the sandbox's venv, with our package in it, in a few milliseconds."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python3"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    # An `import` line, so that this venv's own .pth files (the editable install's) are processed too.
    Path(purelib, "oauth_rotator_tests.pth").write_text(f"import site; site.addsitedir({ours!r})\n", encoding="utf-8")
    return python


class SandboxInstall:
    """`databricks labs install sandbox` done in a temporary home, with the contribution applied."""

    def __init__(self, home: Path, *, bin_dir: Path, login: dict[str, str]) -> None:
        self.home = home
        self.folder = home / ".databricks" / "labs" / "sandbox"
        self.lib = self.folder / "lib"
        self.config_dir = self.folder / "config"
        self.state_dir = self.folder / "state"
        self.bin_dir = bin_dir
        self.login = login
        """The login the CLI resolved, flattened into variables."""
        write_layout(self.lib)
        applied = apply_patch(self.lib)
        assert applied.returncode == 0, applied.stderr
        for folder in (self.config_dir, self.state_dir, self.folder / "cache"):
            folder.mkdir(parents=True, exist_ok=True)
        self.python = make_venv(self.state_dir / "venv")
        self.labs_yml: dict[str, Any] = yaml.safe_load((self.lib / "labs.yml").read_text(encoding="utf-8"))

    def declared(self, command: str) -> dict[str, Any]:
        return next(c for c in self.labs_yml["commands"] if c["name"] == command)

    def env(self, command: str, **extra: str) -> dict[str, str]:
        """The environment `databricks labs sandbox COMMAND` gives the router."""
        user = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_", "PG", "XDG_CONFIG"))}
        env = {
            **user,
            "HOME": str(self.home),
            "DATABRICKS_CLI_VERSION": "0.270.0",
            "DATABRICKS_LABS_CONFIG_DIR": str(self.config_dir),
            "DATABRICKS_LABS_STATE_DIR": str(self.state_dir),
            "DATABRICKS_LABS_CACHE_DIR": str(self.folder / "cache"),
            "DATABRICKS_LABS_LIB_DIR": str(self.lib),
            "PYTHONPATH": f"{self.lib}{os.pathsep}{self.lib / 'src'}",  # replaces the user's
            "PATH": f"{self.bin_dir}{os.pathsep}{self.python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PGDATABASE": "postgres",
        }
        if not self.declared(command).get("is_unauthenticated"):
            env.update(self.login)
        env.update(extra)
        return env

    def run(
        self,
        command: str,
        *,
        flags: dict[str, str] | None = None,
        answers: list[str] | None = None,
        cwd: Path | None = None,
        timeout: float = 90,
        **env: str,
    ) -> subprocess.CompletedProcess[str]:
        """`databricks labs sandbox COMMAND`: every declared flag sent as a string, `log_level` added."""
        sent = {f["name"]: _sprint(f["default"]) for f in self.declared(command).get("flags") or []}
        sent.update(flags or {})
        payload = json.dumps({"command": command, "flags": {**sent, "log_level": "warn"}, "output_type": ""})
        return subprocess.run(
            [str(self.python), str(self.lib / self.labs_yml["entrypoint"]), payload],
            env=self.env(command, **env),
            cwd=cwd or self.home,
            input="".join(f"{a}\n" for a in answers) if answers is not None else None,
            stdin=None if answers is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _sprint(value: object) -> str:
    """A flag default as the CLI's `fmt.Sprint` writes it (`false`, not Python's `False`)."""
    return str(value).lower() if isinstance(value, bool) else str(value)
