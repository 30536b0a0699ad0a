"""Benchmark 2: the paths that must not import the SDK, against `python -c pass`.

* `status` through the labs entrypoint (`python .../cli.py '{"command": "status", ...}'`, as the Databricks CLI
  runs it), with a status.json of three targets present;
* `databricks-oauth-rotator --help`.

Wall time per process (spawn to exit) and peak RSS, from `os.wait4`. One more run of each with
`PYTHONPROFILEIMPORTTIME=1` counts the modules it imports, says whether the SDK was among them, and names the
heaviest top-level imports: where the time goes when the goal is missed.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in {None, ""}:  # `python bench/bench_startup.py` puts bench/, not the repository, on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    REPO,
    BenchError,
    Options,
    child_env,
    figure,
    measure_interleaved,
    rotator_command,
    run_child,
    scratch,
    standalone,
)

NAME = "startup"
GOAL_RATIO = 3.0
FLOOR_LABEL = "python -c pass"
CLI_SCRIPT = REPO / "src" / "databricks" / "labs" / "oauth_rotator" / "cli.py"
STATUS_PAYLOAD = json.dumps({"command": "status", "flags": {"log_level": "warn"}, "output_type": ""})
TARGETS = 3


def write_status(state_dir: Path) -> None:
    """A status.json as a few rotations leave it: `TARGETS` targets, rotated a minute ago."""
    from databricks.labs.oauth_rotator.state import StateStore, TargetState

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

    StateStore(state_dir / "status.json").update(change)


def import_profile(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run once with `PYTHONPROFILEIMPORTTIME=1`: module count, SDK or not, the five heaviest top-level imports."""
    result = run_child(argv, env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    modules: list[tuple[str, int]] = []  # (name with its nesting indent, cumulative microseconds)
    for line in result.stderr.decode("utf-8", "replace").splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|", 2)
        modules.append((name.rstrip(), int(cumulative)))
    top_level = sorted(
        ((n.strip(), us) for n, us in modules if n.startswith(" ") and not n.startswith("  ")), key=lambda m: -m[1]
    )
    return {
        "modules": len(modules),
        "sdk_imported": any(n.strip().startswith("databricks.sdk") for n, _ in modules),
        "heaviest_ms": [[name, round(us / 1000, 1)] for name, us in top_level[:5]],
    }


def run(options: Options) -> dict[str, Any]:
    if not CLI_SCRIPT.exists():
        raise BenchError(f"{CLI_SCRIPT} does not exist yet")
    with scratch(options, NAME) as tmp:
        home = tmp / "home"
        (home / "state").mkdir(parents=True)
        write_status(home / "state")
        env = child_env(home, {"PYTHONPATH": f"{REPO}:{REPO / 'src'}"})
        commands = {
            "labs status": [sys.executable, str(CLI_SCRIPT), STATUS_PAYLOAD],
            "--help": [*rotator_command(), "--help"],
            "floor": [sys.executable, "-c", "pass"],
        }
        check_outputs(commands, env)
        runs = measure_interleaved(
            {name: functools.partial(run_child, argv, env=env) for name, argv in commands.items()},
            runs=options.cheap_runs,
            warmup=max(options.warmup, 1),
        )
        imports = {name: import_profile(argv, env) for name, argv in commands.items()}
    floor = runs["floor"]
    figures = []
    for case in ("labs status", "--help"):
        measured = runs[case]
        figures.append(
            figure(
                case,
                "wall time",
                "ms",
                [r.wall * 1000 for r in measured],
                floor=FLOOR_LABEL,
                floor_values=[r.wall * 1000 for r in floor],
                goal_ratio=GOAL_RATIO,
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
        "title": "labs status and --help, paths without the SDK",
        "floor": FLOOR_LABEL,
        "imports": imports,
        "figures": figures,
    }


def check_outputs(commands: dict[str, list[str]], env: dict[str, str]) -> None:
    """Each command does what it is for: status prints one row per target, --help prints the usage."""
    rows = json.loads(run_child(commands["labs status"], env=env).stdout)
    if len(rows) != TARGETS:
        raise BenchError(f"status printed {len(rows)} rows, expected {TARGETS}")
    if b"usage:" not in run_child(commands["--help"], env=env).stdout:
        raise BenchError("--help printed no usage")


if __name__ == "__main__":
    standalone(NAME, run, __doc__ or NAME)
