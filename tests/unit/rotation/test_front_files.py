"""The files of one cycle: TLS that checks Lakebase's certificate, the local password, the state for `status`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from databricks.labs.oauth_rotator.config import PgbouncerConfig
from databricks.labs.oauth_rotator.rotation import front_files
from databricks.labs.oauth_rotator.rotation.front_folder import FrontFiles


def test_verify_full_against_the_system_cas_is_the_default(tmp_path: Path):
    settings = front_files.settings(PgbouncerConfig(), FrontFiles(tmp_path), ["127.0.0.1", "::1"])
    assert settings.server_tls_sslmode == "verify-full"
    assert settings.server_tls_ca_file == front_files.system_ca_file()
    assert settings.listen_address == "127.0.0.1,::1"
    assert b"server_tls_sslmode = verify-full\n" in settings.render()


def test_a_named_setting_takes_any_certificate_or_another_ca(tmp_path: Path):
    files = FrontFiles(tmp_path)
    relaxed = front_files.settings(PgbouncerConfig(server_tls_sslmode="require"), files, ["127.0.0.1"])
    assert (relaxed.server_tls_sslmode, relaxed.server_tls_ca_file) == ("require", "")
    pinned = front_files.settings(PgbouncerConfig(server_tls_ca_file="/etc/rig-ca.pem"), files, ["127.0.0.1"])
    assert pinned.server_tls_ca_file == "/etc/rig-ca.pem"


def test_the_system_ca_bundle_is_found_where_this_system_keeps_it():
    found = front_files.system_ca_file()
    assert found == "" or os.path.isfile(found)


def test_a_password_file_that_oauth_rotator_did_not_make_is_replaced(tmp_path: Path):
    files = FrontFiles(tmp_path)
    files.password_file.write_text('"lakebase" "$(id)"\n')
    made = front_files.local_password(PgbouncerConfig(), files)
    assert made != '"lakebase" "$(id)"' and len(made) >= 24
    assert front_files.local_password(PgbouncerConfig(), files) == made, "made once, then kept"
    assert stat.S_IMODE(files.password_file.stat().st_mode) == 0o600
    assert front_files.local_password(PgbouncerConfig(password="chosen-one"), files) == "chosen-one"


def test_the_state_is_merged_so_the_worker_and_the_supervisor_keep_each_others_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("DATABRICKS_LABS_STATE_DIR", str(tmp_path))
    front_files.record_state({"databases": ["sales"]})
    front_files.record_state({"process": "running"})
    assert json.loads((tmp_path / "pgbouncer.json").read_text()) == {"databases": ["sales"], "process": "running"}
    assert front_files.read_state() == {"databases": ["sales"], "process": "running"}
