"""Bad input from every side: command-line flags, environment variables, config files, labs payloads, and the
workspace's answers. Each gives one clear line on stderr, the right exit code (2 for usage or configuration, 1 for
a failed rotation), no traceback, and writes nothing: `.pgpass` stays as the user left it, and on exit 2 not even
the log or the state folder appears, and no credential is requested.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.reliability.conftest import Figures, Home
from tests.reliability.rig import ProductGap
from tests.rigs.workspace import DEMO_INSTANCE, FakeWorkspace

GROUP = "Hostile input"
CREDENTIALS = "/api/2.0/database/credentials"
ME = "/api/2.0/preview/scim/v2/Me"
TARGET = ("--instance", DEMO_INSTANCE)
MAX_LINE = 2000
"""An error line longer than this echoes too much of the input back."""


@dataclass(frozen=True)
class Bad:
    id: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    config: bytes | None = None
    """Written to `config.yml` in the test's home; `{config}` in args and env names it."""
    files: Mapping[str, tuple[bytes, int]] = field(default_factory=dict)
    """More files to create (relative path: content, mode); `{root}` in args and env is the home."""
    payload: str | None = None
    """A labs payload: the entrypoint is run with it (`"<none>"`: no argument, `"<two>"`: two arguments)."""
    server: Callable[[FakeWorkspace], None] | None = None
    code: int = 2
    message: str = ""
    gap: str = ""

    @property
    def kind(self) -> str:
        if self.payload is not None:
            return "labs payload"
        if self.server is not None:
            return "server response"
        if self.config is not None:
            return "config file"
        if self.env:
            return "environment"
        return "command line"


def cfg(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text


def labs(**payload: object) -> str:
    return json.dumps({"output_type": "", **payload})


def _deep() -> bytes:
    return b"targets: " + b"[" * 5000 + b"]" * 5000 + b"\n"


def _ten_megabytes_of_log() -> bytes:
    return b"2026-01-22 14:30:00 - INFO - Rotated sales (instance sales): 1 .pgpass line(s)\n" * 130_000


_LAUGHS = "".join(
    f"{name}: &{name} [{', '.join(['*' + prev] * 9) if prev else '1, 1, 1, 1, 1, 1, 1, 1, 1'}]\n"
    for name, prev in zip("abcdefg", ["", *"abcdef"], strict=True)
)


def _fail_with(body: str, path: str = CREDENTIALS, status: int = 200) -> Callable[[FakeWorkspace], None]:
    return lambda ws: ws.fail_next(1, status=status, body=body, path_prefix=path)


CASES = [
    # ---- command-line flags -------------------------------------------------------------------------------------
    Bad("flag-interval-nan", ("--interval", "nan", *TARGET), message="expected minutes"),
    Bad("flag-interval-inf", ("--interval", "inf", *TARGET), message="expected minutes"),
    Bad("flag-interval-negative", ("--interval", "-5", *TARGET), message="--interval"),
    Bad("flag-interval-huge", ("--interval", "1e308", *TARGET), message="expected minutes"),
    Bad("flag-interval-empty", ("--interval", "", *TARGET), message="expected minutes"),
    Bad("flag-port-zero", ("--pg-port", "0", *TARGET), message="expected a port number"),
    Bad("flag-port-spaces", ("--pg-port", " 5432 ", *TARGET), message="expected a port number"),
    Bad("flag-port-hex", ("--pg-port", "0x10", *TARGET), message="expected a port number"),
    Bad("flag-host-empty", ("--pg-host", ""), message="no target"),
    Bad("flag-host-newline", ("--pg-host", "db\nevil:5432:*:*:pw"), message="line breaks"),
    Bad("flag-instance-spaces", ("--instance", " sales "), message="surrounding spaces"),
    Bad("flag-endpoint-too-deep", ("--endpoint", "projects/a/branches/b/endpoints/c/d"), message="expected projects/"),
    Bad("flag-endpoint-empty-part", ("--endpoint", "projects//branches/b/endpoints/c"), message="expected projects/"),
    Bad("flag-url-no-host", ("--workspace-url", "http://", *TARGET), message="not a workspace URL"),
    Bad("flag-url-javascript", ("--workspace-url", "javascript:alert(1)", *TARGET), message="not a workspace URL"),
    Bad("flag-url-space", ("--workspace-url", "https://my workspace.com", *TARGET), message="not a workspace URL"),
    Bad("flag-pgpass-empty", ("--pgpass-file", "", *TARGET), message="not a path"),
    Bad("flag-pgpass-blank", ("--pgpass-file", "   ", *TARGET), message="not a path"),
    Bad("flag-pgpass-directory", ("--pgpass-file", "{root}", *TARGET), message="directory"),
    Bad("flag-log-missing-dir", ("--log-file", "{root}/nope/rotator.log", *TARGET), message="does not exist"),
    Bad(
        "flag-log-directory",
        ("--log-file", "{root}", *TARGET),
        message="directory",
    ),
    Bad("flag-config-directory", ("--config", "{root}"), message="no such file"),
    Bad("flag-positional", ("sales", *TARGET), message="unrecognized arguments"),
    Bad("flag-missing-value", ("--instance",), message="expected one argument"),
    Bad("flag-huge-value", ("--instance", "x" * 100_000), message="longer than 1024"),
    Bad("flag-database-newline", ("--pg-database", "db\nx", *TARGET), message="line breaks"),
    Bad("flag-username-carriage-return", ("--pg-username", "me\rx", *TARGET), message="line breaks"),
    Bad("flag-once-with-value", ("--once=yes", *TARGET), message="ignored explicit argument"),
    # ---- environment variables ----------------------------------------------------------------------------------
    Bad("env-pg-host-newline", env={"DATABRICKS_PG_HOST": "db\nx"}, message="line breaks"),
    Bad("env-pg-username-newline", TARGET, env={"DATABRICKS_PG_USERNAME": "me\nx"}, message="line breaks"),
    Bad("env-pg-username-spaces", TARGET, env={"DATABRICKS_PG_USERNAME": " me "}, message="surrounding spaces"),
    Bad(
        "env-pgpassfile-missing-dir",
        TARGET,
        env={"PGPASSFILE": "{root}/nope/.pgpass"},
        message="does not exist",
    ),
    Bad("env-pgpassfile-directory", TARGET, env={"PGPASSFILE": "{root}"}, message="directory"),
    Bad(
        "env-labs-config-dir-corrupt",
        env={"DATABRICKS_LABS_CONFIG_DIR": "{root}/labs"},
        files={"labs/config.yml": (b"targets: [unclosed\n", 0o600)},
        message="cannot read config",
    ),
    Bad(
        "env-databrickscfg-corrupt",
        ("--profile", "lakebase", *TARGET),
        env={"DATABRICKS_CONFIG_FILE": "{root}/secrets-cfg"},
        files={"secrets-cfg": (b"[lakebase\nhost = x\n", 0o600)},
        message="cannot be parsed",
    ),
    Bad(
        "env-env-file-shared",
        ("run", *TARGET),
        env={"DATABRICKS_OAUTH_ROTATOR_ENV_FILE": "{root}/secrets/env"},
        files={"secrets/env": (b"DATABRICKS_CLIENT_SECRET=x\n", 0o644)},
        message="readable by others",
    ),
    Bad(
        "env-env-file-garbage",
        ("run", *TARGET),
        env={"DATABRICKS_OAUTH_ROTATOR_ENV_FILE": "{root}/secrets/env"},
        files={"secrets/env": (b"this is not a pair\n", 0o600)},
        message="expected KEY=value",
    ),
    Bad(
        "env-env-file-missing",
        ("run", *TARGET),
        env={"DATABRICKS_OAUTH_ROTATOR_ENV_FILE": "{root}/secrets/none"},
        message="cannot read",
    ),
    # ---- config files -------------------------------------------------------------------------------------------
    Bad("cfg-corrupt-yaml", config=cfg("targets: [unclosed\n"), message="cannot read config"),
    Bad("cfg-tab-indent", config=cfg("version: 1\ntargets:\n\t- instance: a\n"), message="cannot read config"),
    Bad("cfg-targets-not-a-list", config=cfg("targets: sales\n"), message="targets: expected list"),
    Bad("cfg-newer-version", config=cfg("version: 99\ntargets: [{instance: a}]\n"), message="newer oauth-rotator"),
    Bad(
        "cfg-version-empty",
        config=cfg("version:\ntargets: [{instance: a}]\n"),
        message="version",
    ),
    Bad("cfg-version-text", config=cfg("version: one\ntargets: [{instance: a}]\n"), message="version: expected int"),
    Bad(
        "cfg-huge-margin",
        config=cfg("margin_minutes: 1.0e+308\ntargets: [{instance: a}]\n"),
        message="margin_minutes: expected minutes",
    ),
    Bad("cfg-huge-port", config=cfg("targets: [{instance: a, port: 99999999999999999999}]\n"), message="port"),
    Bad("cfg-nan-interval", config=cfg("interval_minutes: .nan\ntargets: [{instance: a}]\n"), message="interval"),
    Bad("cfg-unknown-key", config=cfg("colour: blue\ntargets: [{instance: a}]\n"), message="unknown key 'colour'"),
    Bad(
        "cfg-unknown-target-key",
        config=cfg("targets: [{instance: a, pasword: x}]\n"),
        message="unknown key 'pasword'",
    ),
    Bad("cfg-binary-garbage", config=bytes(range(256)) * 40, message="cannot read config"),
    Bad("cfg-10-megabytes", config=_ten_megabytes_of_log(), message="unknown key"),
    Bad("cfg-empty", config=b"", message="expected a mapping"),
    Bad("cfg-a-list", config=cfg("- sales\n- hr\n"), message="expected a mapping"),
    Bad("cfg-billion-laughs", config=cfg(_LAUGHS + "targets: *g\n"), message="unknown key 'a'"),
    Bad(
        "cfg-deep-nesting",
        config=_deep(),
        message="cannot read config",
    ),
    Bad(
        "cfg-duplicate-names",
        config=cfg("targets: [{name: x, instance: a}, {name: x, instance: b}]\n"),
        message="also named 'x'",
    ),
    Bad("cfg-no-targets", config=cfg("targets: []\n"), message="no target configured"),
    Bad("cfg-target-a-string", config=cfg("targets: [sales]\n"), message="expected a mapping"),
    Bad("cfg-extra-host-number", config=cfg("targets: [{instance: a, extra_hosts: [1]}]\n"), message="extra_hosts[0]"),
    Bad("cfg-port-boolean", config=cfg("targets: [{instance: a, port: true}]\n"), message="port: expected int"),
    Bad("cfg-service-text", config=cfg("service: 'yes'\ntargets: [{instance: a}]\n"), message="service: expected"),
    Bad("cfg-profile-newline", config=cfg('profile: "a\\nb"\ntargets: [{instance: a}]\n'), message="line breaks"),
    Bad("cfg-url-ftp", config=cfg("workspace_url: ftp://x\ntargets: [{instance: a}]\n"), message="not a workspace"),
    Bad("cfg-python-tag", config=cfg("targets: !!python/object:os.system {}\n"), message="cannot read config"),
    Bad("cfg-nul-byte", config=b"profile: a\x00b\ntargets: [{instance: a}]\n", message="cannot read config"),
    Bad("cfg-huge-string", config=cfg(f"profile: {'a' * 5000}\ntargets: [{{instance: a}}]\n"), message="1024"),
    Bad(
        "cfg-pgpass-missing-dir",
        config=cfg(f"pgpass_file: '{{root}}/nope/.pgpass'\ntargets: [{{instance: {DEMO_INSTANCE}}}]\n"),
        message="does not exist",
    ),
    # ---- labs payloads (the Databricks CLI runs the entrypoint with one JSON argument) -------------------------------
    Bad("labs-no-argument", payload="<none>", message="expected one argument"),
    Bad("labs-two-arguments", payload="<two>", message="expected one argument"),
    Bad("labs-not-json", payload="{", message="not JSON"),
    Bad("labs-an-array", payload="[]", message="must be a JSON object"),
    Bad("labs-no-command", payload=labs(flags={}), message='no "command"'),
    Bad("labs-unknown-command", payload=labs(command="destroy", flags={}), message="unknown command"),
    Bad("labs-command-number", payload=labs(command=5, flags={}), message='no "command"'),
    Bad("labs-flags-a-list", payload=labs(command="status", flags=[]), message='"flags"'),
    Bad("labs-flag-number", payload=labs(command="logs", flags={"lines": 5}), message="strings"),
    Bad("labs-flag-boolean", payload=labs(command="rotate", flags={"verify": True}), message="strings"),
    Bad("labs-flag-null", payload=labs(command="rotate", flags={"verify": None}), message="strings"),
    Bad("labs-flag-object", payload=labs(command="rotate", flags={"verify": {"a": "b"}}), message="strings"),
    Bad("labs-unknown-flag", payload=labs(command="rotate", flags={"force": "true"}), message="unknown flag"),
    Bad("labs-bad-boolean", payload=labs(command="uninstall", flags={"purge": "maybe"}), message="true or false"),
    Bad("labs-lines-zero", payload=labs(command="logs", flags={"lines": "0"}), message="--lines"),
    Bad("labs-lines-huge", payload=labs(command="logs", flags={"lines": "9" * 30}), message="--lines"),
    Bad("labs-log-level", payload=labs(command="status", flags={"log_level": "loud"}), message="unknown log level"),
    Bad(
        "labs-huge-command",
        payload=labs(command="x" * 100_000, flags={}),
        message="unknown command",
    ),
    # ---- the workspace's answers (`--once`: the rotation fails, exit 1, the old line stays) -----------------------
    Bad("srv-malformed-json", TARGET, server=lambda ws: ws.malformed_next(1, path_prefix=CREDENTIALS), code=1),
    Bad("srv-json-array", TARGET, server=_fail_with("[]"), code=1),
    Bad("srv-json-null", TARGET, server=_fail_with("null"), code=1, message="empty credential"),
    Bad("srv-token-number", TARGET, server=_fail_with('{"token": 12345}'), code=1),
    Bad("srv-token-newline", TARGET, server=_fail_with('{"token": "a\\nb:c"}'), code=1, message="newline"),
    Bad(
        "srv-expiry-garbage",
        TARGET,
        server=_fail_with('{"token": "abc", "expiration_time": "yesterday"}'),
        code=1,
        message="unreadable expiry",
    ),
    Bad("srv-empty-token", TARGET, server=lambda ws: ws.empty_token_next(1), code=1, message="empty credential"),
    Bad("srv-expired-token", TARGET, server=lambda ws: ws.expired_token_next(1), code=1, message="already expired"),
    Bad(
        "srv-wrong-user",
        TARGET,
        server=lambda ws: ws.wrong_user_next(1),
        code=1,
        message="someone-else@example.com",
    ),
    Bad(
        "srv-html-502",
        TARGET,
        server=_fail_with("<html><body>502 Bad Gateway</body></html>", status=502),
        code=1,
    ),
    Bad("srv-401", TARGET, server=lambda ws: ws.fail_next(1, status=401, path_prefix=CREDENTIALS), code=1),
    Bad("srv-403", TARGET, server=lambda ws: ws.fail_next(1, status=403, path_prefix=CREDENTIALS), code=1),
    Bad("srv-me-username-number", TARGET, server=_fail_with('{"userName": 5}', ME), code=1),
    Bad("srv-me-no-username", TARGET, server=_fail_with("{}", ME), code=1, message="did not say who we are"),
    Bad("srv-me-username-newline", TARGET, server=_fail_with('{"userName": "a\\nb"}', ME), code=1, message="newline"),
    Bad(
        "srv-oidc-token-number",
        TARGET,
        server=_fail_with('{"access_token": 5, "token_type": "Bearer"}', "/oidc/v1/token"),
        code=1,
    ),
]


def _fill(text: str, home: Home) -> str:
    return text.replace("{root}", str(home.root)).replace("{config}", str(home.root / "config.yml"))


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _run(home: Home, bad: Bad):
    if bad.payload == "<none>":
        return home.labs_argv()
    if bad.payload == "<two>":
        return home.labs_argv("{}", "{}")
    if bad.payload is not None:
        return home.labs(bad.payload)
    args = [_fill(a, home) for a in bad.args]
    if bad.config is not None:
        args = ["--config", str(home.root / "config.yml"), *args]
    if "run" not in args and "--once" not in args:
        args = ["--once", *args]
    if not any(a.startswith(("--pgpass-file", "--config")) for a in args) and "PGPASSFILE" not in bad.env:
        args += ["--pgpass-file", str(home.pgpass)]
    if bad.server is not None:
        args += ["--pg-port", str(home.postgres.port)]
    return home.rotator(*args, env={k: _fill(v, home) for k, v in bad.env.items()}, timeout=120)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b, marks=pytest.mark.xfail(raises=ProductGap, strict=True, reason=b.gap)) if b.gap else b
        for b in CASES
    ],
    ids=[b.id for b in CASES],
)
def test_bad_input_is_one_clear_line_with_the_right_exit_code_and_nothing_written(
    home: Home, figures: Figures, bad: Bad
):
    home.write_user_lines()
    if bad.config is not None:
        (home.root / "config.yml").write_bytes(bad.config.replace(b"{root}", str(home.root).encode()))
    for name, (content, mode) in bad.files.items():
        path = home.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    before = Snapshot.of(home)
    if bad.server is not None:
        bad.server(home.workspace)
    result = _run(home, bad)
    problems, error_lines = _problems(home, bad, result, before)
    figures.record(
        f"hostile/{bad.id}",
        group=GROUP,
        injected=f"{bad.kind}: {bad.id}",
        goal=f"exit {bad.code}, one clear line naming the problem, no traceback, nothing written",
        measured=f"exit {result.returncode}; "
        + ("; ".join(problems) if problems else "as required")
        + (f"; stderr: {error_lines[0][:160]!r}" if error_lines else ""),
        note=bad.gap,
        exit_code=result.returncode,
        problems=problems,
    )
    if problems:
        raise (ProductGap if bad.gap else AssertionError)(f"{problems}: {result.stderr[-1500:]!r}")


@dataclass(frozen=True)
class Snapshot:
    """What the user's home and the workspace looked like before the bad input."""

    pgpass: bytes
    files: set[str]
    calls: int
    credentials: int

    @classmethod
    def of(cls, home: Home) -> Snapshot:
        calls = home.workspace.calls
        return cls(home.pgpass.read_bytes(), _tree(home.root), sum(calls.values()), calls[f"POST {CREDENTIALS}"])


def _problems(
    home: Home, bad: Bad, result: subprocess.CompletedProcess[str], before: Snapshot
) -> tuple[list[str], list[str]]:
    """What is wrong with how the product answered `bad`, and the lines of stderr that carry its error."""
    lines = result.stderr.strip().splitlines()
    problems = []
    if result.returncode != bad.code:
        problems.append(f"exit {result.returncode}, expected {bad.code}")
    if "Traceback" in result.stderr or "Logging error" in result.stderr:
        problems.append("a traceback on stderr")
    if home.pgpass.read_bytes() != before.pgpass:
        problems.append(".pgpass changed")
    if bad.code == 2:
        error_lines = lines
        problems += _usage_problems(home, result, lines, before)
    else:
        error_lines = [line for line in lines if "Rotation of" in line and "failed" in line]
        if len(error_lines) != 1:
            problems.append(f"{len(error_lines)} lines saying the rotation failed")
        if any(line[:1].isspace() or line.startswith(("<", ">")) for line in lines):
            problems.append("a message spread over several lines")
        if home.workspace.calls[f"POST {CREDENTIALS}"] > before.credentials + 1:
            problems.append("asked for more than one credential")
    if not any(bad.message in line for line in error_lines):
        problems.append(f"no line says {bad.message!r}")
    if any(len(line) > MAX_LINE for line in lines):
        problems.append(f"a line of {max(len(line) for line in lines)} characters")
    return problems, error_lines


def _usage_problems(
    home: Home, result: subprocess.CompletedProcess[str], lines: list[str], before: Snapshot
) -> list[str]:
    """Exit 2 promises more: one line, nothing written (not even the log), nothing asked of the workspace."""
    problems = []
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr")
    if _tree(home.root) - before.files:
        problems.append(f"wrote {sorted(_tree(home.root) - before.files)[:3]}")
    if sum(home.workspace.calls.values()) != before.calls:
        problems.append("asked the workspace")
    if result.stdout:
        problems.append("printed on stdout")
    return problems


def test_the_table_covers_at_least_fifty_bad_inputs_from_every_side():
    kinds = {b.kind for b in CASES}
    assert len(CASES) >= 50
    assert kinds == {"command line", "environment", "config file", "labs payload", "server response"}
    assert len({b.id for b in CASES}) == len(CASES)
