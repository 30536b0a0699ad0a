"""The fake workspace in a process of its own, for the benchmarks: `python -m bench.workspace_server`, which
`fleet_workspace.WorkspaceServer` starts.

Prints one JSON line (`host`, `client_id`, `client_secret`, `user_name`), then answers `stats` lines on stdin
with a JSON line of request counts, and stops at the end of stdin.
"""

from __future__ import annotations

import argparse
import json
import sys

from tests.rigs.workspace import FakeWorkspace

from bench.fleet_workspace import instance_host, instance_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=1, help="Provisioned instances inst-<i> (host h<i>...)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every response")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime of the database credentials issued")
    args = parser.parse_args()
    with FakeWorkspace(ttl_seconds=args.ttl) as workspace:
        for i in range(args.instances):
            workspace.add_instance(instance_name(i), read_write_dns=instance_host(i))
        workspace.delay_seconds = args.delay
        info = {
            "host": workspace.host,
            "client_id": workspace.client_id,
            "client_secret": workspace.client_secret,
            "user_name": workspace.user_name,
        }
        print(json.dumps(info), flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                calls = dict(workspace.calls)
                stats = {"requests": sum(calls.values()), "issued": len(workspace.issued), "calls": calls}
                print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
