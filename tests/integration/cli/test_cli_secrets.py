"""``fabflow secrets set|list|delete`` on a real store (SQLite and PostgreSQL): the value comes
from stdin, is stored encrypted under the data folder's key, and is never printed."""

from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from fabflow.cli.app import EXIT_FAILED, EXIT_INVALID_INPUT, app
from fabflow.cli.main import _register
from fabflow.settings import Settings
from fabflow.store.repository import Store
from fabflow.store.schema import tenant_secrets
from fabflow.store.secrets import box, load_secrets
from tests.integration.cli.conftest import fabflow

VALUE = "mes-5eb8d1f0-token"
pytestmark = pytest.mark.usefixtures("env")


def set_secret(name: str, value: str, tenant: str = "acme") -> tuple[int, str]:
    _register()
    done = CliRunner().invoke(app, ["secrets", "set", "--tenant", tenant, name], input=value)
    return done.exit_code, done.output


def test_set_list_delete_and_the_value_never_printed(store: Store, db_settings: Settings) -> None:
    tenant = store.ensure_tenant("acme")
    code, output = set_secret("MES_TOKEN", VALUE + "\n")  # echo's newline is dropped
    assert (code, output.strip()) == (0, "secret MES_TOKEN of tenant acme set")
    assert set_secret("MES_TOKEN", VALUE)[1].strip().endswith("replaced")

    # The key was made in the data folder, readable by its owner only.
    key_file = db_settings.data_dir / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with store.read() as conn:
        [token] = conn.execute(tenant_secrets.select()).all()
        assert VALUE not in token.value and token.value.startswith("gAAAA")  # a Fernet token
        key = key_file.read_text().strip()
        assert load_secrets(conn, key, tenant) == {"MES_TOKEN": VALUE}
    assert box(key).decrypt("MES_TOKEN", token.value) == VALUE

    listed = fabflow("secrets", "list", "--tenant", "acme", "--json")
    assert listed.exit_code == 0
    assert [s["name"] for s in json.loads(listed.output)] == ["MES_TOKEN"]
    table = fabflow("secrets", "list", "--tenant", "acme")
    assert "MES_TOKEN" in table.output and VALUE not in table.output

    assert fabflow("secrets", "delete", "--tenant", "acme", "MES_TOKEN").exit_code == 0
    gone = fabflow("secrets", "delete", "--tenant", "acme", "MES_TOKEN")
    assert gone.exit_code == EXIT_FAILED and "no secret 'MES_TOKEN'" in gone.output
    assert json.loads(fabflow("secrets", "list", "--tenant", "acme", "--json").output) == []


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MES_TOKEN", "", "must not be empty"),
        ("MES_TOKEN", "\n", "must not be empty"),
        ("1ST", "v", "invalid secret name '1ST'"),
        ("MES-TOKEN", "v", "invalid secret name"),
    ],
)
def test_bad_names_and_empty_values_are_refused(
    store: Store, name: str, value: str, says: str
) -> None:
    store.ensure_tenant("acme")
    code, output = set_secret(name, value)
    assert code == EXIT_INVALID_INPUT and says in output
    assert json.loads(fabflow("secrets", "list", "--tenant", "acme", "--json").output) == []


def test_an_unknown_tenant_is_an_error(store: Store) -> None:
    code, output = set_secret("MES_TOKEN", VALUE, tenant="nobody")
    assert code == EXIT_FAILED and "no tenant 'nobody'" in output


def test_a_malformed_key_is_a_configuration_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.ensure_tenant("acme")
    monkeypatch.setenv("FABFLOW_SECRET_KEY", "not-a-fernet-key")
    code, output = set_secret("MES_TOKEN", VALUE)
    assert code == 3 and "FABFLOW_SECRET_KEY must be Fernet keys" in output
