"""Benchmark 2: the commands that need no workspace, against `python -c pass` measured in the same run.

* `status` through the labs entrypoint (`python .../cli.py '{"command": "status", ...}'`, as the Databricks CLI
  runs it) and through the console script `databricks-oauth-status`, with a status.json of three targets (one of
  them failing, so its error is cleaned of secrets as users see it) and no service unit: goal ≤ 3 times the floor;
* `databricks-oauth-rotator --help`: goal ≤ 2.5 times;
* `databricks-oauth-rotator --version`: no goal here (issue 18 asks ≤ 2 times), measured so the next step has a base.

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
GOAL_RATIOS: dict[str, float | None] = {"labs status": 3.0, "console status": 3.0, "--help": 2.5, "--version": None}
"""Each case and its goal, as a multiple of the floor's median wall time (issue 12)."""
FLOOR = "floor"
FLOOR_LABEL = "python -c pass"
CLI_SCRIPT = REPO / "src" / "databricks" / "labs" / "oauth_rotator" / "commands" / "labs_cli.py"
STATUS_PAYLOAD = json.dumps({"command": "status", "flags": {"log_level": "warn"}, "output_type": ""})
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
        home = tmp / "home"
        (home / "state").mkdir(parents=True)
        write_status(home / "state")
        env = with_bytecode(child_env(home, {"PYTHONPATH": f"{REPO}:{REPO / 'src'}"}))
        commands = {
            "labs status": [sys.executable, str(CLI_SCRIPT), STATUS_PAYLOAD],
            "console status": status_command(),
            "--help": [*rotator_command(), "--help"],
            "--version": [*rotator_command(), "--version"],
            FLOOR: [sys.executable, "-c", "pass"],
        }
        check_outputs(commands, env)  # also fills the bytecode cache
        runs = measure_interleaved(
            {name: functools.partial(run_child, argv, env=env) for name, argv in commands.items()},
            runs=options.cheap_runs,
            warmup=max(options.warmup, 1),
        )
        in_floor = floor_modules(env)
        imports = {name: import_profile(argv, env, in_floor) for name, argv in commands.items()}
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
        "title": "status, --help and --version: commands without the SDK",
        "floor": FLOOR_LABEL,
        "bytecode": "cached in __pycache__, as in an install (PYTHONDONTWRITEBYTECODE is unset for the children)",
        "imports": imports,
        "figures": figures,
    }


def check_outputs(commands: dict[str, list[str]], env: dict[str, str]) -> None:
    """Each command does what it is for: status shows every target (the error without its token), --help the usage,
    --version the version; none imports the SDK."""
    rows = json.loads(run_child(commands["labs status"], env=env).stdout)
    if len(rows) != TARGETS or "<redacted>" not in rows[-1]["last_error"]:
        raise BenchError(f"labs status printed {rows}, expected {TARGETS} rows, the last one's error redacted")
    table = run_child(commands["console status"], env=env).stdout.decode().splitlines()
    if len(table) != TARGETS + 1 or not table[0].startswith("TARGET"):
        raise BenchError(f"console status printed {table}, expected a header and {TARGETS} rows")
    if b"usage:" not in run_child(commands["--help"], env=env).stdout:
        raise BenchError("--help printed no usage")
    from databricks.labs.oauth_rotator import __version__

    if __version__ not in run_child(commands["--version"], env=env).stdout.decode():
        raise BenchError(f"--version did not print {__version__}")
    run_child(commands[FLOOR], env=env)


if __name__ == "__main__":
    standalone(NAME, run, __doc__ or NAME)
