"""deploy/kubernetes/ and the Containerfile: schema-valid manifests that share the password file right, and the
image's entrypoint, run as a plain process with a manifest's environment and volume layout, rotating for psql."""

from __future__ import annotations

import copy
import json
import os
import posixpath
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.integration.conftest import USER, UserHome
from tests.rigs.net import call, free_port, listening
from tests.rigs.users import OtherUser, reachable_directory, throwaway_user
from tests.rigs.workspace import DEMO_INSTANCE

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
KUBERNETES_VERSION = "1.33.0"
"""The schemas the manifests are held to: native sidecars (restartPolicy on an init container) are GA in 1.33."""
ROTATOR = "oauth-rotator"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifest(name: str) -> list[dict[str, Any]]:
    return documents(ROOT / "deploy" / "kubernetes" / name)


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in MANIFESTS:
        for doc in documents(path):
            if doc["kind"] in {"Deployment", "Job"}:
                yield path.name, doc["spec"]["template"]["spec"]


def rotator_of(spec: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in spec["initContainers"] if c["name"] == ROTATOR)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


def test_the_manifests_are_found():
    assert {p.name for p in MANIFESTS} >= {
        "deployment.yaml",
        "deployment-workload-identity.yaml",
        "job.yaml",
        "job-once.yaml",
        "configmap.yaml",
    }


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(path: Path):
    for doc in documents(path):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validation_is_strict_enough_to_fail():
    doc = manifest("deployment.yaml")[0]
    rotator_of(doc["spec"]["template"]["spec"])["restartPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def _run_as(spec: dict[str, Any], container: dict[str, Any]) -> tuple[Any, Any]:
    own, pod = container.get("securityContext", {}), spec.get("securityContext", {})
    return own.get("runAsUser", pod.get("runAsUser")), own.get("runAsGroup", pod.get("runAsGroup"))


@pytest.mark.parametrize(("name", "spec"), list(pod_specs()), ids=lambda v: v if isinstance(v, str) else "")
def test_app_and_rotator_run_as_one_non_root_user_and_share_the_password_folder_in_memory(name: str, spec: dict):
    rotator = rotator_of(spec)
    pgpassfile = env_of(rotator)["PGPASSFILE"]["value"]
    folder = posixpath.dirname(pgpassfile)
    mounts = {m["mountPath"]: m["name"] for m in rotator["volumeMounts"]}
    volume = next(v for v in spec["volumes"] if v["name"] == mounts[folder])
    assert volume["emptyDir"]["medium"] == "Memory", name
    assert env_of(rotator)["DATABRICKS_OAUTH_ROTATOR_ALLOW_SHARED_DIR"]["value"] == "1", "an emptyDir is 0777"
    assert spec["securityContext"]["fsGroup"] == _run_as(spec, rotator)[1]
    assert _run_as(spec, rotator)[0] not in {None, 0}
    for app in spec["containers"]:
        assert _run_as(spec, app) == _run_as(spec, rotator), f"{name}: {app['name']} runs as another user"
        assert {m["mountPath"]: m["name"] for m in app["volumeMounts"]}[folder] == volume["name"]
        assert env_of(app)["PGPASSFILE"]["value"] == pgpassfile


@pytest.mark.parametrize(("name", "spec"), list(pod_specs()), ids=lambda v: v if isinstance(v, str) else "")
def test_a_sidecar_has_its_probes_on_the_port_it_serves(name: str, spec: dict):
    rotator = rotator_of(spec)
    if "--once" in rotator["args"]:
        assert "restartPolicy" not in rotator, f"{name}: a one-shot init container must end"
        return
    assert rotator["restartPolicy"] == "Always", f"{name}: a native sidecar"
    port = int(rotator["args"][rotator["args"].index("--http-port") + 1])
    named = {p["name"]: p["containerPort"] for p in rotator["ports"]}
    for probe, path in (("startupProbe", "/startup"), ("livenessProbe", "/liveness")):
        assert rotator[probe]["httpGet"]["path"] == path
        assert named[rotator[probe]["httpGet"]["port"]] == port


RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected"}
RESTRICTED_VOLUMES |= {"secret"}


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What in a pod spec breaks the "restricted" Pod Security Standard (Kubernetes 1.33's checks, baseline ones
    included), and a service-account API token mounted although nothing uses it."""
    found = [f"{key}: true" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    if spec.get("automountServiceAccountToken") is not False:
        found.append("the service-account API token is mounted (automountServiceAccountToken is not false)")
    found += [
        f"volume {v['name']}: not a restricted type"
        for v in spec["volumes"]
        if not set(v) - {"name"} <= RESTRICTED_VOLUMES
    ]
    pod = spec.get("securityContext", {})
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        own, name = container.get("securityContext", {}), container["name"]
        merged = {**pod, **own}
        if own.get("privileged"):
            found.append(f"{name}: privileged")
        if own.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        if merged.get("runAsNonRoot") is not True or merged.get("runAsUser") == 0:
            found.append(f"{name}: may run as root")
        if merged.get("seccompProfile", {}).get("type") not in {"RuntimeDefault", "Localhost"}:
            found.append(f"{name}: no RuntimeDefault seccomp profile")
        capabilities = own.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []) or set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: capabilities are not dropped")
        if any(p.get("hostPort") for p in container.get("ports", [])):
            found.append(f"{name}: hostPort")
    return found


@pytest.mark.parametrize(("name", "spec"), list(pod_specs()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_pod_is_restricted_and_mounts_no_api_token(name: str, spec: dict):
    assert restricted_violations(spec) == [], name


def test_the_restricted_check_catches_each_rule():
    spec = manifest("deployment.yaml")[0]["spec"]["template"]["spec"]
    breaks = {
        "hostNetwork": lambda s: s.update(hostNetwork=True),
        "automount": lambda s: s.pop("automountServiceAccountToken"),
        "hostPath": lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "seccomp": lambda s: s["securityContext"].pop("seccompProfile"),
        "unconfined": lambda s: s["initContainers"][0]["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        "root": lambda s: s["containers"][0]["securityContext"].update(runAsUser=0),
        "escalation": lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
        "capabilities": lambda s: s["containers"][0]["securityContext"].pop("capabilities"),
        "added": lambda s: s["initContainers"][0]["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
        "privileged": lambda s: s["containers"][0]["securityContext"].update(privileged=True),
        "hostPort": lambda s: s["initContainers"][0]["ports"][0].update(hostPort=9091),
    }
    for rule, change in breaks.items():
        broken = copy.deepcopy(spec)
        change(broken)
        assert restricted_violations(broken), rule


SECRET_NAMES = re.compile(r"SECRET|TOKEN|PASSWORD", re.IGNORECASE)
NOT_SECRET = {"DATABRICKS_OIDC_TOKEN_FILEPATH"}
"""A path to the projected token, checked by test_the_workload_identity_pod_mounts_its_own_token_and_no_secret."""


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_no_manifest_holds_a_secret(path: Path):
    text = path.read_text()
    assert not re.search(r"\b(dapi|dose)[0-9a-f]{8,}", text), "a Databricks token"
    for doc in documents(path):
        assert doc["kind"] != "Secret", "the Secret is created with kubectl, never kept in a manifest"
        for container in _containers(doc):
            for name, entry in env_of(container).items():
                if SECRET_NAMES.search(name) and name not in NOT_SECRET:
                    assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], f"{path.name}: {name}"
        config = doc.get("data", {}).get("config.yml")
        if config is not None:
            assert not SECRET_NAMES.search(config)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] not in {"Deployment", "Job"}:
        return []
    spec = doc["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def entrypoint() -> list[str]:
    """The Containerfile's ENTRYPOINT (exec form)."""
    line = next(x for x in (ROOT / "Containerfile").read_text().splitlines() if x.startswith("ENTRYPOINT "))
    return list(json.loads(line.removeprefix("ENTRYPOINT ")))


class Pod:
    """The pod's file layout on this machine: each mount of the manifest a folder under one reachable root."""

    def __init__(self, root: Path, home: UserHome, runner: OtherUser | None) -> None:
        self.root, self.home, self.runner = root, home, runner
        self.mounts = {
            "/var/run/lakebase": self._folder("lakebase", 0o777),  # an emptyDir: 0777
            "/var/lib/oauth-rotator": self._folder("state", 0o777),
            "/etc/oauth-rotator": self._folder("config", 0o755),  # a ConfigMap: root's, read-only
            "/home/rotator": self._folder("home", 0o700, own=True),
            "/var/run/secrets/databricks": self._folder("token", 0o755),  # a projected volume: root's folder
        }

    def _folder(self, name: str, mode: int, *, own: bool = False) -> Path:
        path = self.root / name
        path.mkdir()
        path.chmod(mode)
        if own and self.runner is not None:
            os.chown(path, self.runner.uid, self.runner.gid)
        return path

    def local(self, text: str) -> str:
        for mount, folder in self.mounts.items():
            text = text.replace(mount, str(folder))
        return text

    def write_config(self) -> None:
        """The ConfigMap's config.yml, its placeholder instance the fake workspace's, at the local PostgreSQL."""
        raw = yaml.safe_load(manifest("configmap.yaml")[0]["data"]["config.yml"])
        raw["targets"] = [{"instance": DEMO_INSTANCE, "port": self.home.postgres.port}]
        # A ConfigMap volume's layout: config.yml -> ..data/config.yml, ..data -> a timestamped folder (all root's).
        mount = self.mounts["/etc/oauth-rotator"]
        version = mount / "..2026_01_01_00_00_00.000000001"
        version.mkdir(mode=0o755)
        (version / "config.yml").write_text(self.local(yaml.safe_dump(raw)))
        (version / "config.yml").chmod(0o644)
        (mount / "..data").symlink_to(version.name)
        (mount / "config.yml").symlink_to("..data/config.yml")

    def environment(self, container: dict[str, Any]) -> dict[str, str]:
        """The container's env from the manifest; the Secret's keys and the placeholder host the fake workspace's."""
        workspace = self.home.workspace
        secret = {"client-id": workspace.client_id, "client-secret": workspace.client_secret}
        env = {"PATH": os.environ["PATH"], "HOME": str(self.mounts["/home/rotator"]), "LANG": "C.UTF-8"}
        for name, entry in env_of(container).items():
            if "valueFrom" in entry:
                env[name] = secret[entry["valueFrom"]["secretKeyRef"]["key"]]
            else:
                env[name] = self.local(entry["value"])
        env["DATABRICKS_HOST"] = self.home.workspace.host
        return env

    def command(self, container: dict[str, Any], port: int) -> list[str]:
        program, *rest = entrypoint()
        args = [self.local(a) for a in container["args"]]
        if "--http-port" in args:
            args[args.index("--http-port") + 1] = str(port)
        return [str(Path(sys.executable).parent / program), *rest, *args]

    def start(self, container: dict[str, Any], port: int) -> subprocess.Popen[str]:
        ids: dict[str, Any] = {}
        if self.runner is not None:
            ids = {"user": self.runner.uid, "group": self.runner.gid, "extra_groups": []}
        return subprocess.Popen(
            self.command(container, port),
            env=self.environment(container),
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **ids,
        )

    @property
    def pgpass(self) -> Path:
        return self.mounts["/var/run/lakebase"] / "pgpass"

    def files_written(self) -> list[str]:
        """The text of everything the rotator wrote in the pod's volumes but the password file."""
        folders = [self.mounts["/var/lib/oauth-rotator"], self.mounts["/home/rotator"]]
        return [p.read_text(errors="replace") for f in folders for p in f.rglob("*") if p.is_file()]

    def check_written(self) -> None:
        info = self.pgpass.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600
        assert info.st_uid == (self.runner.uid if self.runner is not None else os.geteuid())
        login = self.home.postgres.psql_login(user=USER, passfile=self.pgpass)
        assert login.returncode == 0, login.stderr


@contextmanager
def pod_layout(home: UserHome) -> Iterator[Pod]:
    """As a throwaway non-root user when this machine allows (root, useradd, and this venv readable by others, as
    on CI), else as the current user."""
    with reachable_directory() as root:
        if os.geteuid() == 0 and shutil.which("useradd"):
            with throwaway_user() as user:
                yield Pod(root, home, user if _can_run_the_rotator(user) else None)
        else:
            yield Pod(root, home, None)


def _can_run_the_rotator(user: OtherUser) -> bool:
    """Whether `user` can run our interpreter and import the project (a venv under a 0700 /root cannot be)."""
    probe = user.run(sys.executable, "-c", "import databricks.labs.oauth_rotator.commands.endpoints")
    return probe.returncode == 0


def wait_until_started(daemon: subprocess.Popen[str], port: int) -> None:
    """Until the sidecar's `/startup` answers 200, within a minute; it must not exit first."""
    deadline = time.monotonic() + 60
    while not (listening(port) and call(port, "/startup")[0] == 200):
        assert daemon.poll() is None, daemon.communicate()[1]
        assert time.monotonic() < deadline, "the sidecar never started"
        time.sleep(0.3)


def test_the_deployments_sidecar_command_rotates_for_psql_and_exits_0_on_sigterm(home: UserHome):
    rotator = rotator_of(manifest("deployment.yaml")[0]["spec"]["template"]["spec"])
    port = free_port()
    with pod_layout(home) as pod:
        pod.write_config()
        daemon = pod.start(rotator, port)
        try:
            wait_until_started(daemon, port)
            pod.check_written()
            assert call(port, "/readiness")[0] == 200
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, err
        assert home.secrets_seen(out, err, *pod.files_written()) == []


WORKLOAD_IDENTITY = "deployment-workload-identity.yaml"


def test_the_workload_identity_pod_mounts_its_own_token_and_no_secret():
    docs = manifest(WORKLOAD_IDENTITY)
    assert "secretKeyRef" not in (ROOT / "deploy" / "kubernetes" / WORKLOAD_IDENTITY).read_text()
    account = next(d for d in docs if d["kind"] == "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    spec = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    rotator = rotator_of(spec)
    env = {name: entry.get("value") for name, entry in env_of(rotator).items()}
    assert env["DATABRICKS_AUTH_TYPE"] == "file-oidc" and "DATABRICKS_CLIENT_SECRET" not in env
    token_dir, token_name = posixpath.split(env["DATABRICKS_OIDC_TOKEN_FILEPATH"])
    mount = next(m for m in rotator["volumeMounts"] if m["mountPath"] == token_dir)
    assert mount.get("readOnly") is True
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    (source,) = volume["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["path"] == token_name
    assert token["audience"] not in {"", "https://kubernetes.default.svc"}, "its own audience, not the API server's"
    assert 600 <= token["expirationSeconds"] <= 3600, "short-lived (600 s is the shortest Kubernetes issues)"
    for app in spec["containers"]:
        assert mount["name"] not in {m["name"] for m in app.get("volumeMounts", [])}, "the app gets no token"


def test_the_workload_identity_sidecar_rotates_for_psql_with_only_the_projected_token(home: UserHome):
    spec = next(d for d in manifest(WORKLOAD_IDENTITY) if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    rotator = rotator_of(spec)
    env = {name: entry.get("value") for name, entry in env_of(rotator).items()}
    volume = next(v for v in spec["volumes"] if "projected" in v)
    audience = volume["projected"]["sources"][0]["serviceAccountToken"]["audience"]
    issuer, subject = "https://oidc.cluster.example", "system:serviceaccount:my-namespace:my-app"
    home.workspace.federate(
        env["DATABRICKS_CLIENT_ID"], issuer=issuer, subject=subject, audience=audience, user_name=USER
    )
    port = free_port()
    with pod_layout(home) as pod:
        pod.write_config()
        token = Path(pod.local(env["DATABRICKS_OIDC_TOKEN_FILEPATH"]))
        token.write_text(
            home.workspace.subject_token(issuer=issuer, subject=subject, audience=audience, expires_in=600)
        )
        token.chmod(0o644)
        daemon = pod.start(rotator, port)
        try:
            wait_until_started(daemon, port)
            pod.check_written()
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=30)
        assert daemon.returncode == 0, err
        assert home.workspace.calls["token exchange"] >= 1
        assert home.secrets_seen(out, err, *pod.files_written()) == []


def test_the_jobs_init_container_command_rotates_once_for_psql(home: UserHome):
    rotator = rotator_of(manifest("job-once.yaml")[0]["spec"]["template"]["spec"])
    with pod_layout(home) as pod:
        pod.write_config()
        init = pod.start(rotator, 0)
        out, err = init.communicate(timeout=60)
        assert init.returncode == 0, err
        pod.check_written()
        assert home.secrets_seen(out, err, *pod.files_written()) == []


def containerfile_instructions() -> dict[str, str]:
    """The Containerfile's instructions, continuation lines joined and comments dropped (the last of each kind)."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", (ROOT / "Containerfile").read_text())
    lines = [x.strip() for x in text.splitlines() if x.strip() and not x.lstrip().startswith("#")]
    return {line.split(None, 1)[0]: line.split(None, 1)[1] for line in lines}


def test_the_image_and_the_manifests_agree_on_user_paths_and_command():
    image = containerfile_instructions()
    assert image["FROM"].startswith("python:3.12-slim")
    env = dict(re.findall(r"(\w+)=(\S+)", image["ENV"]))
    user, group = image["USER"].split(":")
    assert user != "0"
    for name, spec in pod_specs():
        rotator = rotator_of(spec)
        assert _run_as(spec, rotator) == (int(user), int(group)), name
        for key in ("PGPASSFILE", "DATABRICKS_LABS_STATE_DIR", "DATABRICKS_OAUTH_ROTATOR_ALLOW_SHARED_DIR"):
            assert env_of(rotator)[key]["value"] == env[key], f"{name}: {key}"
        mounts = {m["mountPath"] for m in rotator["volumeMounts"]}
        assert env["HOME"] in mounts, f"{name}: the home folder is writable with a read-only root file system"
    deployment = rotator_of(manifest("deployment.yaml")[0]["spec"]["template"]["spec"])
    assert json.loads(image["CMD"]) == deployment["args"]
    assert not any(k for k in env if SECRET_NAMES.search(k)), "no secret in the image"
