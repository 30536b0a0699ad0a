"""labs.yml as the Databricks CLI reads it: it ignores unknown keys silently, so a typo must fail here instead."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from databricks.labs.oauth_rotator.app.status import COLUMNS, render_table
from databricks.labs.oauth_rotator.commands import labs_cli, record

ROOT = Path(__file__).resolve().parents[3]

# The fields of the Go structs in databricks/cli cmd/labs/project (project.go, proxy.go, installer.go).
TOP_KEYS = {"name", "description", "install", "uninstall", "entrypoint", "min_python", "commands"}
HOOK_KEYS = {"script", "min_runtime_version", "require_databricks_connect", "warehouse_types", "extras"}
COMMAND_KEYS = {
    "name",
    "description",
    "flags",
    "table_template",
    "is_unauthenticated",
    "is_account_level",
    "require_running_cluster",
    "is_bundle_aware",
}
FLAG_KEYS = {"name", "description", "default"}


def load() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "labs.yml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def ignored_keys(document: dict[str, Any]) -> list[str]:
    """Every key the CLI would ignore, as a path."""
    found = [k for k in document if k not in TOP_KEYS]
    for hook in ("install", "uninstall"):
        found += [f"{hook}.{k}" for k in document.get(hook) or {} if k not in HOOK_KEYS]
    for command in document.get("commands") or []:
        name = command.get("name", "?")
        found += [f"commands.{name}.{k}" for k in command if k not in COMMAND_KEYS]
        for flag in command.get("flags") or []:
            found += [f"commands.{name}.flags.{flag.get('name', '?')}.{k}" for k in flag if k not in FLAG_KEYS]
    return found


@pytest.fixture
def document() -> dict[str, Any]:
    return load()


@pytest.fixture
def commands(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in document["commands"]}


def test_every_key_is_one_the_cli_reads(document):
    assert ignored_keys(document) == []


@pytest.mark.parametrize(
    ("where", "key", "expected"),
    [
        ("status", "is_account", "commands.status.is_account"),  # blueprint's spelling; the CLI's is is_account_level
        ("status", "unauthenticated", "commands.status.unauthenticated"),
        ("install", "is_unauthenticated", "install.is_unauthenticated"),  # ignored in hooks
    ],
)
def test_a_key_the_cli_ignores_is_caught(document, where, key, expected):
    broken = copy.deepcopy(document)
    if where in {"install", "uninstall"}:
        broken[where][key] = True
    else:
        next(c for c in broken["commands"] if c["name"] == where)[key] = True
    assert ignored_keys(broken) == [expected]


def test_the_project_is_named_for_its_repository_and_its_scripts_exist(document):
    assert document["name"] == "oauth-rotator"
    assert document["description"]
    assert document["min_python"] == "3.10"  # quoted: unquoted YAML reads 3.10 as the float 3.1
    for script in (document["install"]["script"], document["uninstall"]["script"], document["entrypoint"]):
        assert (ROOT / script).is_file(), script
    assert document["install"]["script"] == "install.py"
    assert document["entrypoint"] == "src/databricks/labs/oauth_rotator/commands/labs_main.py"


def test_labs_yml_says_what_the_command_record_says(commands):
    """labs.yml is data for the Databricks CLI: the record is the one declaration, and this file must match it."""
    offered = record.offered_by(record.LABS)
    assert list(commands) == [command.name for command in offered]
    for command in offered:
        declared = commands[command.name]
        assert declared["description"] == command.help, command.name
        assert declared.get("is_unauthenticated", False) == (not command.needs_login), command.name
        assert declared.get("table_template") == command.table_template, command.name
        flags = [
            {"name": flag.name, "description": flag.labs_description, "default": flag.default}
            for flag in command.flags_for(record.LABS)
        ]
        assert declared.get("flags", []) == flags, command.name


def test_every_command_is_routed_and_every_routed_command_is_declared(commands):
    registered = labs_cli.build_app()._mapping  # pylint: disable=protected-access
    assert set(commands) == set(registered)


def test_flags_are_strings_with_a_description(commands):
    for name, command in commands.items():
        for flag in command.get("flags") or []:
            assert flag["name"] != "log_level", "the CLI adds log_level itself"
            assert isinstance(flag["description"], str) and flag["description"].strip(), (name, flag)
            assert isinstance(flag["default"], str), f"{name} --{flag['name']}: quote the default"


def test_commands_that_need_no_login_say_so_in_yaml_and_in_python(commands):
    registered = labs_cli.build_app()._mapping  # pylint: disable=protected-access
    for name, command in commands.items():
        assert "is_account_level" not in command  # no account-level command: it would prompt on every run
        unauthenticated = command.get("is_unauthenticated", False)
        assert isinstance(unauthenticated, bool), name
        if unauthenticated:
            assert registered[name].is_unauthenticated, f"blueprint would build a WorkspaceClient for {name}"
    assert {"status", "logs", "doctor"} <= {name for name, c in commands.items() if c.get("is_unauthenticated")}
    assert all(record.command_named(name).needs_login for name in ("configure", "rotate", "run"))


def test_the_status_table_shows_the_status_columns(commands):
    template = commands["status"]["table_template"]
    header, row = template.splitlines()[:2]
    assert header.split("\\t") == list(COLUMNS.values())
    assert re.findall(r"\{\{\.(\w+)\}\}", row) == list(COLUMNS)
    assert "{{range .}}" in row and template.rstrip().endswith("{{end}}")


def test_the_status_table_shows_the_front_and_its_password_as_the_console_does(commands):
    """The labs table ends with the console's front line for each row served by the pgbouncer front (Go's
    template language: `{{if .front}}` is false for a row without the key, so other rows print nothing)."""
    template = commands["status"]["table_template"]
    block = re.search(r"\{\{range \.\}\}\{\{if \.front\}\}(.*?)\{\{end\}\}\{\{end\}\}$", template, flags=re.DOTALL)
    assert block is not None, template
    served = {key: "" for key in COLUMNS}
    served.update(target="sales", front="host=127.0.0.1 port=6432 dbname=sales user=lakebase", front_password="pw")
    rows = [served, {**served, "target": "other", "front": ""}]
    rendered = "".join(_filled(block.group(1), row) for row in rows if row["front"])
    console = render_table(rows).splitlines()
    assert rendered == console[-1] + "\n"
    assert sum(line.startswith("pgbouncer front for") for line in console) == 1


def _filled(template: str, row: dict[str, str]) -> str:
    return re.sub(r"\{\{\.(\w+)\}\}", lambda m: row[m.group(1)], template)
