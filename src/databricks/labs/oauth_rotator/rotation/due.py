"""What a cycle does for each configured target: nothing (not due), adopt the credential already on its lines
(it outlives ours), or mint a new one (due)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from databricks.labs.oauth_rotator.config import TargetConfig
from databricks.labs.oauth_rotator.files import pgpass
from databricks.labs.oauth_rotator.rotation.adoption import OnFile, outliving
from databricks.labs.oauth_rotator.rotation.schedule import RefreshPolicy
from databricks.labs.oauth_rotator.rotation.state import Status, TargetState


@dataclass
class Plan:
    """The targets to mint a credential for, and those whose lines keep a longer-lived one (label: what to record)."""

    due: list[TargetConfig] = field(default_factory=list)
    adopted: dict[str, OnFile] = field(default_factory=dict)


def is_due(known: TargetState | None, current: bytes, on_file: Mapping[pgpass.Key, str | None], now: float) -> bool:
    """Whether the target needs attention now: never rotated, its refresh or retry time has come, or its lines
    are not what status.json recorded (a line deleted or edited by the user, or a lost file, is restored now)."""
    if known is None or known.expires_at is None or known.due_at is None:
        return True
    action_at = known.next_action_at()
    if action_at is not None and now >= action_at:
        return True
    return known.lines_lost(current, on_file)


def plan(  # pylint: disable=too-many-arguments  # the cycle's whole view of the moment
    targets: Sequence[TargetConfig],
    status: Status,
    current: bytes,
    *,
    now: float,
    policy: RefreshPolicy,
    force: bool = False,
    only: Collection[str] | None = None,
) -> Plan:
    """Sort the targets (those of the `only` labels, when given) into due and adopted; `force` makes all due.

    `current` is the `.pgpass` file's bytes; it is read once for every target.
    """
    on_file = pgpass.lookup_many(current, [k for t in status.targets.values() for k in t.pgpass_keys()])
    result = Plan()
    for target in targets:
        if only is not None and target.label not in only:
            continue
        known = status.targets.get(target.label)
        if not force and not is_due(known, current, on_file, now):
            continue
        found = None if force or known is None else outliving(known, on_file, now=now, policy=policy)
        if found is not None:
            result.adopted[target.label] = found
        else:
            result.due.append(target)
    return result
