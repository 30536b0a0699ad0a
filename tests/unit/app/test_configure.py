"""The installer's questions against the fake workspace (the real SDK over HTTP), with blueprint's MockPrompts."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from databricks.labs.blueprint.tui import MockPrompts
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config

from databricks.labs.oauth_rotator.app.configure import NO_PROFILE, TYPE_A_HOST, Installer, configure, keep
from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
from databricks.labs.oauth_rotator.errors import ConfigError, RotatorError
from databricks.labs.oauth_rotator.files.config_store import load_config, save_config
from databricks.labs.oauth_rotator.lakebase.workspace import databrickscfg_profiles, login_profile, pin_profile
from databricks.labs.oauth_rotator.secrets import CLI_AUTH_VARIABLES
from databricks.labs.oauth_rotator.service import MockServiceManager
from tests.rigs.workspace import DEMO_ENDPOINT, DEMO_INSTANCE, FakeWorkspace

PICK = r"Which Lakebase database"
ANOTHER = r"Add another database"


class RecordingPrompts(MockPrompts):
    """MockPrompts that records every question, and can give a pattern a sequence of answers (the last repeats)."""

    def __init__(self, answers: Mapping[str, str | list[str]]) -> None:
        self.sequences = {k: list(v) for k, v in answers.items() if isinstance(v, list)}
        super().__init__({k: (v if isinstance(v, str) else "") for k, v in answers.items()})
        self.asked: list[str] = []
        self.defaults: list[str | None] = []

    def question(self, text: str, default: str | None = None, **kwargs: Any) -> str:
        self.asked.append(text)
        self.defaults.append(default)
        for pattern, answers in self.sequences.items():
            if re.search(pattern, text):
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                return answer or default or ""
        return super().question(text, default=default, **kwargs)

    def choices_offered(self) -> list[str]:
        """The numbered options of the first database question, without blueprint's colours."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", next(q for q in self.asked if PICK in q))
        return re.findall(r"^\[\d+\] (.*)$", text, flags=re.MULTILINE)


def answers(**overrides: str | list[str]) -> dict[str, str | list[str]]:
    """Enter (the default) for every question, then the given answers by pattern."""
    base: dict[str, str | list[str]] = {
        r"Databricks profile": "",
        r"Keep the configured databases": "",
        PICK: "0",
        ANOTHER: "",
        r"Lakebase host name": "",
        r"PostgreSQL user name": "",
        r"Password file": "",
        r"Refresh when": "",
        r"background service": "no",
    }
    base.update({k.replace("_", " "): v for k, v in overrides.items()})
    return base


class ClientFactory:
    """The workspace-client factory the installer is given: records the profile asked for."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.profiles: list[str | None] = []

    def __call__(self, profile: str | None) -> WorkspaceClient:
        self.profiles.append(profile)
        return WorkspaceClient(config=self.config)


@pytest.fixture
def clients(fake_workspace: FakeWorkspace) -> ClientFactory:
    return ClientFactory(fake_workspace.sdk_config())


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {
        "HOME": str(tmp_path),
        "DATABRICKS_LABS_CONFIG_DIR": str(tmp_path / "config"),
        "DATABRICKS_CONFIG_FILE": str(tmp_path / ".databrickscfg"),
    }


def run(prompts: RecordingPrompts, clients: ClientFactory, environ: dict[str, str]) -> RotatorConfig:
    path = Path(environ["DATABRICKS_LABS_CONFIG_DIR"]) / "config.yml"
    return Installer(prompts, clients, config_path=path, environ=environ).run()


def test_the_workspace_instances_and_endpoints_are_the_choices(clients, environ, fake_workspace):
    fake_workspace.add_instance("sales", read_write_dns="sales.database.example.com")
    prompts = RecordingPrompts(answers(**{PICK: "1"}))
    config = run(prompts, clients, environ)
    assert prompts.choices_offered() == [
        f"instance {DEMO_INSTANCE} (127.0.0.1)",
        "instance sales (sales.database.example.com)",
        f"endpoint {DEMO_ENDPOINT} (127.0.0.2)",
        TYPE_A_HOST,
    ]
    assert config.targets == [TargetConfig(instance="sales", user="someone@example.com")]
    assert clients.profiles == [None]


def test_an_endpoint_and_a_typed_host_make_two_targets(clients, environ):
    prompts = RecordingPrompts(
        answers(**{PICK: ["1", "1"], ANOTHER: ["yes", "no"], "Lakebase host name": ["db.example.com"]})
    )
    config = run(prompts, clients, environ)
    assert [t.label for t in config.targets] == [DEMO_ENDPOINT, "db.example.com"]
    assert config.targets[1] == TargetConfig(host="db.example.com", user="someone@example.com")


def test_the_config_is_saved_and_reads_back_equal_with_its_false_values(clients, environ, tmp_path):
    (tmp_path / "pg").mkdir()
    prompts = RecordingPrompts(
        answers(**{"Password file": str(tmp_path / "pg" / "pgpass"), "Refresh when": "7", "background service": "no"})
    )
    config = run(prompts, clients, environ)
    saved = load_config(Path(environ["DATABRICKS_LABS_CONFIG_DIR"]) / "config.yml")
    assert saved == config
    assert saved.service is False
    assert saved.margin_minutes == 7
    assert saved.pgpass_file == str(tmp_path / "pg" / "pgpass")
    assert saved.profile is None


def test_running_it_again_and_pressing_enter_keeps_everything(clients, environ, tmp_path):
    path = Path(environ["DATABRICKS_LABS_CONFIG_DIR"]) / "config.yml"
    current = RotatorConfig(
        targets=[
            TargetConfig(instance=DEMO_INSTANCE, user="role@example.com"),
            TargetConfig(endpoint=DEMO_ENDPOINT, user="role@example.com"),
        ],
        profile="lakebase",
        workspace_url="https://example.cloud.databricks.com",
        pgpass_file=str(tmp_path / ".pgpass"),
        log_file=str(tmp_path / "rotator.log"),
        margin_minutes=15,
        interval_minutes=30,
        service=False,
    )
    save_config(current, path)
    prompts = RecordingPrompts(answers(**{"background service": ""}))
    again = run(prompts, clients, environ)
    assert again == current
    assert load_config(path) == current
    assert clients.profiles == ["lakebase"]
    assert not any(PICK in q for q in prompts.asked)  # kept, not asked again
    assert prompts.defaults[:2] == ["lakebase", "yes"]  # the profile and "keep the databases?" offered as defaults
    assert "role@example.com" in prompts.defaults


def test_the_login_json_profile_is_the_default(clients, environ, tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "login.json").write_text(json.dumps({"workspace_profile": "prod"}))
    config = run(RecordingPrompts(answers()), clients, environ)
    assert config.profile == "prod"
    assert clients.profiles == ["prod"]


def test_a_dev_checkout_login_json_is_read_too(tmp_path):
    (tmp_path / ".databricks-login.json").write_text(json.dumps({"workspace_profile": "dev"}))
    env = {"DATABRICKS_LABS_CONFIG_DIR": str(tmp_path / "missing"), "DATABRICKS_LABS_LIB_DIR": str(tmp_path)}
    assert login_profile(env) == "dev"
    assert login_profile({"DATABRICKS_LABS_CONFIG_DIR": str(tmp_path / "missing")}) is None


def test_answering_none_means_the_environment_login(clients, environ, tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "login.json").write_text(json.dumps({"workspace_profile": "prod"}))
    config = run(RecordingPrompts(answers(**{"Databricks profile": NO_PROFILE})), clients, environ)
    assert config.profile is None
    assert clients.profiles == [None]


def test_the_profile_question_lists_the_databrickscfg_profiles(clients, environ, tmp_path):
    (tmp_path / ".databrickscfg").write_text("[DEFAULT]\nhost = https://a\n[prod]\nhost = https://b\n")
    assert databrickscfg_profiles(environ) == ["DEFAULT", "prod"]
    prompts = RecordingPrompts(answers())
    run(prompts, clients, environ)
    assert "profiles found: DEFAULT, prod" in prompts.asked[0]


def test_a_login_that_does_not_work_fails_before_anything_is_saved(fake_workspace, environ):
    fake_workspace.revoke_client(fake_workspace.client_id)
    broken = ClientFactory(fake_workspace.sdk_config())
    with pytest.raises(RotatorError):
        run(RecordingPrompts(answers()), broken, environ)
    assert not (Path(environ["DATABRICKS_LABS_CONFIG_DIR"]) / "config.yml").exists()


def test_databases_that_cannot_be_listed_leave_the_others_and_typing_a_host(clients, environ, fake_workspace):
    fake_workspace.fail_next(5, status=403, path_prefix="/api/2.0/database/instances")
    prompts = RecordingPrompts(answers())
    run(prompts, clients, environ)
    assert prompts.choices_offered() == [f"endpoint {DEMO_ENDPOINT} (127.0.0.2)", TYPE_A_HOST]


def test_a_pgpass_file_in_a_missing_directory_is_refused(clients, environ, tmp_path):
    prompts = RecordingPrompts(answers(**{"Password file": str(tmp_path / "nope" / "pgpass")}))
    with pytest.raises(ConfigError, match="does not exist"):
        run(prompts, clients, environ)


def test_configure_installs_the_service_with_names_and_paths_only(clients, environ, tmp_path):
    environ = {**environ, "DATABRICKS_CLIENT_SECRET": "s3cr3t-" + tmp_path.name, "PGPASSFILE": str(tmp_path / "pgpass")}
    manager = MockServiceManager()
    out = io.StringIO()
    config = configure(
        RecordingPrompts(answers(**{"background service": "yes"})),
        workspace_client_factory=clients,
        environ=environ,
        manager_factory=lambda: manager,
        out=out,
    )
    assert config.service is True
    assert manager.calls == ["install"] and manager.spec is not None
    spec = manager.spec
    assert spec.config_path == tmp_path / "config" / "config.yml"
    assert spec.python == sys.executable
    assert dict(spec.environment).get("PGPASSFILE") == str(tmp_path / "pgpass")
    assert "s3cr3t" not in json.dumps(dict(spec.service_environment))
    assert "names no profile" in out.getvalue()  # the environment's login does not reach a service


def test_configure_without_the_service_says_how_to_rotate(clients, environ):
    manager = MockServiceManager()
    out = io.StringIO()
    configure(
        RecordingPrompts(answers()),
        workspace_client_factory=clients,
        environ=environ,
        manager_factory=lambda: manager,
        out=out,
    )
    assert manager.calls == []
    assert "oauth-rotator rotate" in out.getvalue()


def test_pinning_a_profile_drops_the_login_the_cli_exported():
    environ = {
        "DATABRICKS_HOST": "https://from-the-cli",
        "DATABRICKS_TOKEN": "x",
        "DATABRICKS_AUTH_TYPE": "pat",
        "ARM_CLIENT_SECRET": "y",
        "DATABRICKS_CONFIG_FILE": "/home/me/.databrickscfg",
        "DATABRICKS_CLI_PATH": "/usr/local/bin/databricks",
        "PATH": "/usr/bin",
    }
    dropped = pin_profile("prod", environ)
    assert sorted(dropped) == ["ARM_CLIENT_SECRET", "DATABRICKS_AUTH_TYPE", "DATABRICKS_HOST", "DATABRICKS_TOKEN"]
    assert environ == {
        "DATABRICKS_CONFIG_FILE": "/home/me/.databrickscfg",
        "DATABRICKS_CLI_PATH": "/usr/local/bin/databricks",
        "PATH": "/usr/bin",
    }


def test_without_a_profile_the_environment_login_stays_with_its_host_normalised():
    environ = {"DATABRICKS_HOST": "https://adb-1.azuredatabricks.net/?o=1", "DATABRICKS_TOKEN": "x"}
    assert pin_profile(None, environ) == []
    assert environ == {"DATABRICKS_HOST": "https://adb-1.azuredatabricks.net", "DATABRICKS_TOKEN": "x"}


def test_every_credential_the_sdk_reads_from_the_environment_is_dropped():
    """A guard for SDK upgrades: a new auth attribute with an environment variable must join the list."""
    kept = {"profile", "config_file", "databricks_cli_path"}  # names and paths: the pinned profile needs them
    for attribute in Config.attributes():
        if attribute.env is None or attribute.name in kept:
            continue
        if attribute.auth is not None or attribute.sensitive or attribute.name in {"host", "auth_type"}:
            assert attribute.env in CLI_AUTH_VARIABLES or attribute.env.startswith("ARM_"), attribute.name


def test_with_no_terminal_an_upgrade_keeps_the_config_and_updates_the_service(environ, tmp_path):
    path = Path(environ["DATABRICKS_LABS_CONFIG_DIR"]) / "config.yml"
    saved = RotatorConfig(targets=[TargetConfig(instance=DEMO_INSTANCE)], profile="lakebase", service=True)
    save_config(saved, path)
    manager = MockServiceManager()
    out = io.StringIO()
    assert keep(environ=environ, manager_factory=lambda: manager, out=out) == saved
    assert manager.calls == ["install"] and manager.spec is not None and manager.spec.profile == "lakebase"
    assert out.getvalue().startswith(f"Kept {path}")
    assert load_config(path) == saved


def test_kept_pooled_hosts_and_a_credential_ttl_are_kept_and_the_pooled_ones_warned_about(clients, environ):
    path = Path(environ["DATABRICKS_LABS_CONFIG_DIR"]) / "config.yml"
    current = RotatorConfig(
        targets=[TargetConfig(name="sales", endpoint=DEMO_ENDPOINT, pooled=True)], credential_ttl_minutes=15
    )
    save_config(current, path)
    out = io.StringIO()
    config = configure(
        RecordingPrompts(answers()), workspace_client_factory=clients, environ=environ, config_path=path, out=out
    )
    assert config.credential_ttl_minutes == 15 and config.targets[0].pooled
    assert "warning: pooled sales: pooled: true writes .pgpass lines for the pooled hosts" in out.getvalue()
    assert "Connection pooling requires native Postgres password authentication" in out.getvalue()
    assert "pgbouncer:" in out.getvalue()
