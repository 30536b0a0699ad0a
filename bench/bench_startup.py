"""Benchmark 2: the commands that need no workspace, against `python -c pass` measured in the same run.

* `status` through the labs entrypoint (`python .../cli.py '{"command": "status", ...}'`, as the Databricks CLI
  runs it) and through the console script `databricks-oauth-status`, with a status.json of three targets (one of
  them failing, so its error is cleaned of secrets as users see it, which takes `re`) and no service unit: goal ≤ 2
  times the floor (issue 18);
* `databricks-oauth-rotator password` and labs `password` with a fresh credential on file (the saved config, our
  line in .pgpass, status.json recording it), as pgAdmin's password exec command runs it on every connection, with
  the installer's config and with one written by hand (comments, quotes, keys in another order, an indented list):
  goal ≤ 2.5 times (issue 22). The first run of each reads the config in full and leaves the config's cache, as the
  first rotation does; the runs measured answer from it;
* `databricks-oauth-rotator --help`: goal ≤ 2.5 times;
* `databricks-oauth-rotator --version`: goal ≤ 2 times.

Wall time per process (spawn to exit) and peak RSS, from `os.wait4`. Compiled bytecode is cached and read back,
as in an install, whatever `PYTHONDONTWRITEBYTECODE` says. One more run of each with `PYTHONPROFILEIMPORTTIME=1`
counts the modules it imports (and how many of them `python -c pass` does not), says whether the SDK, requests,
PyYAML or blueprint were among them, and names the heaviest imports the floor does not make: the outermost modules
that are not this project's, with their cumulative time.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.harness import REPO, BenchError, Options, scratch, standalone
from bench.processes import child_env, rotator_command, run_child, with_bytecode
from bench.stats import figure, measure_interleaved

NAME = "startup"
GOAL_RATIOS: dict[str, float | None] = {
    "labs status": 2.0,
    "console status": 2.0,
    "password": 2.5,
    "password, hand-written config": 2.5,
    "labs password": 2.5,
    "--help": 2.5,
    "--version": 2.0,
}
"""Each case and its goal, as a multiple of the floor's median wall time (issues 12, 18 and 22)."""
FLOOR = "floor"
HAND_WRITTEN_CASE = "password, hand-written config"
FLOOR_LABEL = "python -c pass"
CLI_SCRIPT = REPO / "src" / "databricks" / "labs" / "oauth_rotator" / "commands" / "labs_main.py"
STATUS_PAYLOAD = json.dumps({"command": "status", "flags": {"log_level": "warn"}, "output_type": ""})
PASSWORD_PAYLOAD = json.dumps({"command": "password", "flags": {"target": "", "log_level": "warn"}, "output_type": ""})
TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzb21lb25lQGV4YW1wbGUuY29tIn0." + "c2ln" * 150
"""A credential of about a Lakebase one's length (JWT-shaped; `password` never decodes the one it recorded)."""
TARGETS = 3
HEAVY = ("databricks.sdk", "requests", "yaml", "databricks.labs.blueprint")
OWN = ("databricks", "databricks.labs", "databricks.labs.oauth_rotator", "databricks_oauth_rotator")
"""The namespace packages, then this project's packages (and their modules): the heaviest imports named are what
these import."""


def write_status(state_dir: Path) -> None:
    """A status.json as a few rotations leave it: `TARGETS` targets rotated a minute ago, the last one failing."""
    from databricks.labs.oauth_rotator.rotation.state import StateStore, TargetState

    now = time.time()

    def change(status: Any) -> None:
        status.pgpass_file = str(state_dir.parent / ".pgpass")
        status.updated_at = now - 60
        for i in range(TARGETS):
            host = f"h{i}.example.com"
            status.targets[f"db-{i}"] = TargetState(
                name=f"db-{i}",
                user="someone@example.com",
                hosts=[host],
                keys=[[host, "5432", "*", "someone@example.com"]],
                fingerprint=f"{i:016x}",
                issued_at=now - 60,
                expires_at=now + 3540,
                due_at=now + 2940,
                last_success=now - 60,
                last_attempt=now - 60,
            )
        failing = status.targets[f"db-{TARGETS - 1}"]
        failing.last_error = "the Databricks login has expired: token=eyJhbGciOi.eyJzdWIi.c2ln is invalid"
        failing.needs_person = True
        failing.fix = "run `databricks auth login --profile prod`"
        failing.failures = 3

    StateStore(state_dir / "status.json").update(change)


HAND_WRITTEN = """\
# Lakebase databases, written by hand
pgpass_file: "{pgpass}"   # quoted
margin_minutes: 10
targets:
{targets}
version: 1
"""
HAND_WRITTEN_TARGET = """\
    -   user: 'someone@example.com'   # the login
        host: "h{i}.example.com"
        name: db-{i}
        extra_hosts:
            - ro{i}.example.com
"""


def write_config_and_pgpass(home: Path, *, hand_written: bool = False) -> None:
    """The saved config of the `TARGETS` targets (or one written by hand) and .pgpass with the first one's
    credential, which status.json records (by its fingerprint): what `password` answers from."""
    from databricks.labs.oauth_rotator.config import RotatorConfig, TargetConfig
    from databricks.labs.oauth_rotator.files import pgpass
    from databricks.labs.oauth_rotator.files.config_store import save_config
    from databricks.labs.oauth_rotator.lakebase.tokeninfo import token_fingerprint
    from databricks.labs.oauth_rotator.rotation.state import StateStore

    targets = [
        TargetConfig(name=f"db-{i}", host=f"h{i}.example.com", user="someone@example.com") for i in range(TARGETS)
    ]
    (home / "config").mkdir(parents=True, exist_ok=True)
    config = home / "config" / "config.yml"
    if hand_written:
        listed = "".join(HAND_WRITTEN_TARGET.format(i=i) for i in range(TARGETS))
        config.write_text(HAND_WRITTEN.format(pgpass=home / ".pgpass", targets=listed.rstrip("\n")))
        config.chmod(0o600)
    else:
        save_config(RotatorConfig(targets=targets, pgpass_file=str(home / ".pgpass")), config)
    entry = pgpass.PgpassEntry("h0.example.com", "5432", "*", "someone@example.com", TOKEN)
    (home / ".pgpass").write_bytes(b"# other lines\n*:*:*:other:secret\n" + pgpass.format_entry(entry) + b"\n")
    (home / ".pgpass").chmod(0o600)

    def change(status: Any) -> None:
        status.targets["db-0"].fingerprint = token_fingerprint(TOKEN)

    StateStore(home / "state" / "status.json").update(change)


def status_command() -> list[str]:
    """The `databricks-oauth-status` console script next to this Python, as users run it."""
    script = Path(sys.executable).with_name("databricks-oauth-status")
    if script.exists():
        return [str(script)]
    entry = (
        "import sys\n"
        "from databricks.labs.oauth_rotator.commands.service_scripts import status_main\n"
        "sys.exit(status_main())"
    )
    return [sys.executable, "-c", entry]


# ---- where the imports go --------------------------------------------------------------------------------------


def import_tree(stderr: str) -> list[tuple[str, int, list[Any]]]:
    """`-X importtime` output as a tree: (name, cumulative microseconds, children) for each top-level import.

    The output is in post-order (a module's imports come before it) and indented two spaces per level.
    """
    pending: dict[int, list[tuple[str, int, list[Any]]]] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, field = line.removeprefix("import time:").split("|", 2)
        name = field.strip()
        level = (len(field) - len(field.lstrip(" ")) - 1) // 2
        pending.setdefault(level, []).append((name, int(cumulative), pending.pop(level + 1, [])))
    return pending.get(0, [])


def walk(tree: list[tuple[str, int, list[Any]]]) -> Iterator[tuple[str, int, list[Any]]]:
    for node in tree:
        yield node
        yield from walk(node[2])


def outermost_foreign(tree: list[tuple[str, int, list[Any]]]) -> Iterator[tuple[str, int]]:
    """Each import that is not this package's, not inside another such import: what our modules asked for."""
    for name, cumulative, children in tree:
        if name in OWN or name.startswith(tuple(f"{own}." for own in OWN[2:])):
            yield from outermost_foreign(children)
        else:
            yield name, cumulative


def import_profile(argv: list[str], env: dict[str, str], floor_modules: set[str]) -> dict[str, Any]:
    """Run once with `PYTHONPROFILEIMPORTTIME=1`: module counts, the heavy ones, the five heaviest beyond the floor."""
    result = run_child(argv, env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    tree = import_tree(result.stderr.decode("utf-8", "replace"))
    modules = {name for name, _, _ in walk(tree)}
    beyond = sorted(
        ((name, us) for name, us in outermost_foreign(tree) if name not in floor_modules), key=lambda m: -m[1]
    )
    heavy = sorted(m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY))
    return {
        "modules": len(modules),
        "beyond_floor": len(modules - floor_modules),
        "heavy": heavy,
        "sdk_imported": any(m.startswith("databricks.sdk") for m in heavy),
        "heaviest_ms": [[name, round(us / 1000, 1)] for name, us in beyond[:5]],
    }


def floor_modules(env: dict[str, str]) -> set[str]:
    result = run_child([sys.executable, "-c", "pass"], env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    return {name for name, _, _ in walk(import_tree(result.stderr.decode("utf-8", "replace")))}


# ---- the benchmark ---------------------------------------------------------------------------------------------


def run(options: Options) -> dict[str, Any]:
    if not CLI_SCRIPT.exists():
        raise BenchError(f"{CLI_SCRIPT} does not exist yet")
    with scratch(options, NAME) as tmp:
        env, hand_env = (
            home_with_config(tmp / name, hand_written=hand) for name, hand in (("home", False), ("hand", True))
        )
        commands = {
            "labs status": [sys.executable, str(CLI_SCRIPT), STATUS_PAYLOAD],
            "console status": status_command(),
            "password": [*rotator_command(), "password"],
            "labs password": [sys.executable, str(CLI_SCRIPT), PASSWORD_PAYLOAD],
            "--help": [*rotator_command(), "--help"],
            "--version": [*rotator_command(), "--version"],
            FLOOR: [sys.executable, "-c", "pass"],
        }
        envs = {name: hand_env if name == HAND_WRITTEN_CASE else env for name in commands}
        commands[HAND_WRITTEN_CASE] = commands["password"]
        envs[HAND_WRITTEN_CASE] = hand_env
        check_outputs(commands, envs)  # also fills the bytecode cache, and the config's
        runs = measure_interleaved(
            {name: functools.partial(run_child, argv, env=envs[name]) for name, argv in commands.items()},
            runs=options.cheap_runs,
            warmup=max(options.warmup, 1),
        )
        in_floor = floor_modules(env)
        imports = {name: import_profile(argv, envs[name], in_floor) for name, argv in commands.items()}
    floor = runs[FLOOR]
    figures = []
    for case, goal in GOAL_RATIOS.items():
        measured = runs[case]
        figures.append(
            figure(
                case,
                "wall time",
                "ms",
                [r.wall * 1000 for r in measured],
                floor=FLOOR_LABEL,
                floor_values=[r.wall * 1000 for r in floor],
                goal_ratio=goal,
            )
        )
        figures.append(
            figure(
                case,
                "peak RSS",
                "MiB",
                [r.max_rss_mib for r in measured],
                floor=FLOOR_LABEL,
                floor_values=[r.max_rss_mib for r in floor],
            )
        )
    return {
        "title": "status, password, --help and --version: commands without the SDK",
        "floor": FLOOR_LABEL,
        "bytecode": "cached in __pycache__, as in an install (PYTHONDONTWRITEBYTECODE is unset for the children)",
        "imports": imports,
        "figures": figures,
    }


def home_with_config(home: Path, *, hand_written: bool) -> dict[str, str]:
    """A user's home with status.json, .pgpass and the config; the environment its commands run with."""
    (home / "state").mkdir(parents=True)
    write_status(home / "state")
    write_config_and_pgpass(home, hand_written=hand_written)
    return with_bytecode(
        child_env(
            home,
            {
                "PYTHONPATH": f"{REPO}:{REPO / 'src'}",
                "DATABRICKS_LABS_CONFIG_DIR": str(home / "config"),
                "DATABRICKS_LABS_STATE_DIR": str(home / "state"),
            },
        )
    )


def check_outputs(commands: dict[str, list[str]], envs: dict[str, dict[str, str]]) -> None:
    """Each command does what it is for: status shows every target (the error without its token), password the
    credential on file, --help the usage, --version the version; none imports the SDK."""
    env = envs[FLOOR]
    rows = json.loads(run_child(commands["labs status"], env=env).stdout)
    if len(rows) != TARGETS or "<redacted>" not in rows[-1]["last_error"]:
        raise BenchError(f"labs status printed {rows}, expected {TARGETS} rows, the last one's error redacted")
    table = run_child(commands["console status"], env=env).stdout.decode().splitlines()
    if len(table) != TARGETS + 1 or not table[0].startswith("TARGET"):
        raise BenchError(f"console status printed {table}, expected a header and {TARGETS} rows")
    for case in ("password", "labs password", HAND_WRITTEN_CASE):
        printed = run_child(commands[case], env=envs[case]).stdout.decode()
        if printed != f"{TOKEN}\n":
            raise BenchError(f"{case} printed {printed[:40]!r}..., expected the credential on file and a newline")
    if b"usage:" not in run_child(commands["--help"], env=env).stdout:
        raise BenchError("--help printed no usage")
    from databricks.labs.oauth_rotator import __version__

    if __version__ not in run_child(commands["--version"], env=env).stdout.decode():
        raise BenchError(f"--version did not print {__version__}")
    run_child(commands[FLOOR], env=env)


if __name__ == "__main__":
    standalone(NAME, run, __doc__ or NAME)
