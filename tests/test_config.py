from pathlib import Path

import pytest

from optimizely_courier.config.sources import load_project, parse_sources_text
from optimizely_courier.errors import ConfigError
from tests.conftest import run_cli, sources_yaml

ROOT = Path(__file__).resolve().parent.parent
ENV = {"S3_ENDPOINT_URL": "http://127.0.0.1:9", "OPTIMIZELY_EXTERNAL_ID": "ext-1", "TEST_SECRET_KEY": "s3cr3t"}


def courier(body: str) -> str:
    entity = ("    entities:\n      - object/file-pattern: \"'type=decisions/date='yyyy-MM-dd'/experiment=*/'\"\n"
              "        object/land-as: {file/tag: decisions}\n")
    return "couriers:\n  optimizely:\n" + body + entity


# (sources.yml text, expected message, expected line)
INVALID = [
    ("{}\n", "`couriers`: is required", 1),
    ("couriers: {}\n", "expected at least one courier", 1),
    ("couriers:\n  opt-1:\n    bucket: b\n", "courier names use letters", 2),
    ("couriers:\n  optimizely:\n    bucket: b\n    bucket: c\n", "`bucket`: duplicate key", 4),
    ("couriers:\n  optimizely: [\n", "invalid YAML", 3),
    (courier("    bucket: b\n    local_path: /tmp\n"), "set exactly one of `bucket`", 2),
    (courier("    bucket: b\n    regoin: us-east-1\n"), "`couriers.optimizely.regoin`: unknown key; valid keys are: bucket",
     4),
    (courier("    bucket: b\n    credential: {type: iam-user}\n"),
     "`couriers.optimizely.credential.type`: expected one of iam-credential, iam-role-to-role", 4),
    (courier("    bucket: b\n    credential: {type: iam-role-to-role, external_id: x}\n"),
     "`couriers.optimizely.credential.role_arn`: is required for type iam-role-to-role", 4),
    (courier("    bucket: b\n    credential:\n      type: iam-credential\n      access_key_id: AKID\n"
             "      secret_access_key: wJalrXUtnFEMI\n"),
     "`couriers.optimizely.credential.secret_access_key`: a literal secret is refused", 7),
    (courier("    bucket: b\n    endpoint_url: localhost:9000\n"), "expected an http:// or https:// URL", 4),
    ("couriers:\n  optimizely:\n    bucket: b\n    entities: []\n", "expected at least one entity", 4),
    ("couriers:\n  optimizely:\n    bucket: b\n    entities:\n      - object/file-pattern: \"type='yyyy\"\n"
     "        object/land-as: {file/tag: decisions}\n", "unquoted text at position 1", 5),
    ("couriers:\n  optimizely:\n    bucket: b\n    entities:\n      - object/file-pattern: \"'t/'yyyy-MM'/'\"\n"
     "        object/land-as: {file/tag: decisions}\n", "needs the date tokens yyyy, MM and dd", 5),
    ("couriers:\n  optimizely:\n    bucket: b\n    entities:\n      - object/file-pattern: \"'t/'yyyy-MM-dd'/'\"\n"
     "        object/ready-marker: \"'t/'yyyy-MM-dd'/*'\"\n        object/land-as: {file/tag: decisions}\n",
     "a ready marker names one object", 6),
    ("couriers:\n  optimizely:\n    bucket: b\n    entities:\n      - object/file-pattern: \"'t/'yyyy-MM-dd'/'\"\n"
     "        object/land-as: {file/tag: ../x}\n", "file tags use letters, digits and _", 6),
    ("couriers:\n  optimizely:\n    bucket: b\n    entities:\n      - object/file-pattern: \"'t/'yyyy-MM-dd'/'\"\n"
     "        object/land-as: {file/tag: d, file/content-type: text/csv}\n", "expected one of application/x-parquet",
     6),
    ("couriers:\n  optimizely:\n    bucket: b\n    entities:\n      - object/file-pattern: \"'t/'yyyy-MM-dd'/'\"\n"
     "        object/land-as: {file/tag: d}\n      - object/file-pattern: \"'u/'yyyy-MM-dd'/'\"\n"
     "        object/land-as: {file/tag: d}\n", "tag 'd' is landed by another entity", 8),
    ("couriers:\n  optimizely:\n    bucket: b\n    entities:\n      - object/file-pattern: \"'t/'yyyy-MM-dd'/'\"\n"
     "        object/land-as: {file/tag: d}\n        object/optional: yes please\n", "expected true or false", 7),
    (courier("    bucket: b\n    load_operations: '{\"df-1\": [}'\n"), "`couriers.optimizely.load_operations`: "
     "invalid JSON", 4),
    (courier("    bucket: b\n    freshness: {warn_after: 72h, error_after: 48h}\n"),
     "`couriers.optimizely.freshness.error_after`: must be longer than `warn_after`", 4),
    (courier("    bucket: b\n    freshness: {warn_after: 72h}\n"), "set both `warn_after` and `error_after`", 4),
]


@pytest.mark.parametrize("text, message, line", INVALID)
def test_invalid_sources_name_file_line_and_key(tmp_path, text, message, line):
    with pytest.raises(ConfigError) as caught:
        parse_sources_text(text, tmp_path, ENV)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "sources.yml") + (f":{line}:" if line else ":"))
    assert caught.value.line == line


def test_shipped_sources_yml_is_the_real_bucket_layout():
    project = load_project(ROOT, ENV)
    courier = project.courier("optimizely")
    assert (courier.bucket, courier.prefix, courier.region) == ("optimizely-events-data", "v1/account_id=12345",
                                                                 "us-east-1")
    assert courier.credential.type == "iam-role-to-role"
    assert courier.credential.external_id == "ext-1"
    assert courier.endpoint_url == "http://127.0.0.1:9"
    assert [e.tag for e in courier.entities] == ["decisions", "conversions"]
    assert courier.load_operations == {"df-7k2m9q": [{"type": "load", "file": "decisions"}],
                                       "df-3p8x1w": [{"type": "load", "file": "conversions"}]}


def test_required_credential_from_an_unset_variable_fails_only_when_connecting(make_project):
    project = make_project(courier("    bucket: b\n    credential:\n      type: iam-role-to-role\n"
                                   "      role_arn: arn:aws:iam::1:role/r\n      external_id: ${NOT_SET_ANYWHERE}\n"))
    assert run_cli(project, "validate").exit_code == 0
    result = run_cli(project, "run", "optimizely", "--date", "2026-11-27")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (f"Error: {project / 'sources.yml'}:7: `couriers.optimizely.credential."
                                              "external_id`: environment variable NOT_SET_ANYWHERE is not set")


def test_unset_optional_endpoint_means_aws_itself():
    env = {k: v for k, v in ENV.items() if k != "S3_ENDPOINT_URL"}
    assert load_project(ROOT, env).courier("optimizely").endpoint_url is None


def test_secret_references_resolve_from_environment_and_never_show_in_repr(tmp_path):
    project = parse_sources_text(sources_yaml(bucket="b", endpoint="http://127.0.0.1:9"), tmp_path, ENV)
    credential = project.courier("optimizely").credential
    assert credential.secret_access_key == "s3cr3t"
    assert "s3cr3t" not in repr(project)


def test_secrets_toml_supplies_a_secret_left_out_of_sources(tmp_path):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text(
        '[couriers.optimizely.credential]\nsecret_access_key = "from-toml"\n')
    (tmp_path / "sources.yml").write_text(courier(
        "    bucket: b\n    credential: {type: iam-credential, access_key_id: AKID}\n"))
    assert load_project(tmp_path, ENV).courier("optimizely").credential.secret_access_key == "from-toml"


def test_dlt_environment_variables_supply_a_secret_and_win_over_secrets_toml(tmp_path, monkeypatch):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text(
        '[couriers.optimizely.credential]\nsecret_access_key = "from-toml"\n')
    (tmp_path / "sources.yml").write_text(courier(
        "    bucket: b\n    credential: {type: iam-credential, access_key_id: AKID}\n"))
    monkeypatch.setenv("COURIERS__OPTIMIZELY__CREDENTIAL__SECRET_ACCESS_KEY", "from-env")

    assert load_project(tmp_path, ENV).courier("optimizely").credential.secret_access_key == "from-env"


def test_an_unreadable_secrets_toml_is_one_error_naming_it(tmp_path):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text('[couriers.optimizely.credential\n')
    (tmp_path / "sources.yml").write_text(courier("    bucket: b\n"))

    with pytest.raises(ConfigError, match=r"\.dlt/secrets\.toml: cannot read secrets file: .*line 1") as error:
        load_project(tmp_path, ENV)
    assert "\n" not in str(error.value)


def test_json_string_load_operations_are_accepted(tmp_path):
    text = courier("    bucket: b\n    load_operations: '{\"df-7k2m9q\": [{\"type\": \"truncate\"}]}'\n")
    assert parse_sources_text(text, tmp_path, ENV).courier("optimizely").load_operations == {
        "df-7k2m9q": [{"type": "truncate"}]}


def test_warehouse_defaults_to_project_file_and_courier_duckdb_overrides(tmp_path):
    text = courier("    bucket: b\n")
    assert parse_sources_text(text, tmp_path, ENV).warehouse == tmp_path / "warehouse.duckdb"
    assert parse_sources_text(text, tmp_path, {**ENV, "COURIER_DUCKDB": "data/w.duckdb"}).warehouse == \
        tmp_path / "data" / "w.duckdb"


def test_config_error_on_the_command_line_is_one_line_without_traceback(make_project):
    project = make_project("couriers:\n  optimizely:\n    bucket: b\n    colour: blue\n")
    result = run_cli(project, "run", "optimizely", "--date", "2026-11-27")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {project / 'sources.yml'}:4: `couriers.optimizely.colour`: unknown key; valid keys are: bucket, "
        "local_path, prefix, region, endpoint_url, credential, entities, load_operations, notify, freshness"]


def test_unknown_courier_lists_configured_ones(make_project):
    project = make_project(sources_yaml(bucket="b", endpoint="http://127.0.0.1:9"))
    result = run_cli(project, "run", "optimisely", "--date", "2026-11-27")
    assert result.exit_code == 1
    assert "no such courier; configured couriers: optimizely" in result.output


@pytest.mark.parametrize("args, message", [
    ([], "give exactly one of --date D, --from D --to D, or --all"),
    (["--date", "2026-11-27", "--all"], "give exactly one of"),
    (["--from", "2026-11-01"], "--from and --to go together"),
    (["--date", "27/11/2026"], "--date: expected a date as YYYY-MM-DD, got '27/11/2026'"),
    (["--from", "2026-11-05", "--to", "2026-11-05"], "must be after --from"),
])
def test_run_date_options_are_validated_before_any_work(make_project, args, message):
    project = make_project(sources_yaml(bucket="b", endpoint="http://127.0.0.1:9"))
    result = run_cli(project, "run", "optimizely", *args)
    assert result.exit_code == 2  # a usage error
    assert message in result.output
    assert not (project / "warehouse.duckdb").exists()


def group(name: str, schedule: str, wait: str = "0", offset: str = "24h") -> str:
    return (f"  {name}:\n    schedule: \"{schedule}\"\n    timezone: UTC\n"
            f"    couriers: [{{name: optimizely, wait: {wait}, offset: {offset}}}]\n")


def hours(delta) -> float:
    return delta.total_seconds() / 3600


@pytest.mark.parametrize("groups, warn, error", [
    ("", 48, 72),  # run by hand only: the default
    # before each run, the newest landed date is two days and the run's time of day old; then `wait`, and an
    # hour to land; one interval (the longest gap between runs) more is an error
    (group("daily", "30 16 * * *", wait="6h"), 72, 72 + 24),  # 48 + 16.5 + 6 + 1, rounded up
    # the Friday run lands Thursday; Monday 09:00 is 105 h after Thursday began
    (group("weekdays", "0 9 * * 1-5"), 105 + 1, 106 + 72),
    # an hourly run lands yesterday: just before midnight, the day before yesterday is the newest (48 h)
    (group("weekly", "@weekly") + group("hourly", "0 * * * *"), 48 + 1, 49 + 1),  # the tightest group decides
])
def test_freshness_thresholds_follow_the_schedules_that_run_the_courier(tmp_path, groups, warn, error):
    text = courier("    bucket: b\n") + (f"courier_groups:\n{groups}" if groups else "")

    limits = parse_sources_text(text, tmp_path, ENV).freshness("optimizely")

    assert (hours(limits.warn_after), hours(limits.error_after)) == (warn, error)


def test_a_couriers_own_freshness_wins_and_reaches_dbt_source_freshness(tmp_path):
    text = (courier("    bucket: b\n    freshness: {warn_after: 30h, error_after: 2d}\n")
            + "courier_groups:\n" + group("daily", "30 16 * * *"))
    (tmp_path / "sources.yml").write_text(text)
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "decisions.yml").write_text(
        "id: df-aaaaaa\nsource: Optimizely\nname: Decisions\ncourier: optimizely\ntag: decisions\n"
        "primary_key: [uuid]\ncolumns:\n  - {name: uuid, type: String}\n")

    limits = load_project(tmp_path, ENV).freshness("optimizely")
    compiled = run_cli(tmp_path, "feeds", "compile")

    assert (hours(limits.warn_after), hours(limits.error_after)) == (30, 48)
    assert compiled.exit_code == 0, compiled.output
    import yaml
    [source] = yaml.safe_load((tmp_path / "models/staging/__sources.yml").read_text())["sources"]
    assert source["config"]["freshness"] == {"warn_after": {"count": 30, "period": "hour"},
                                             "error_after": {"count": 48, "period": "hour"}}
