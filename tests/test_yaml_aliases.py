"""YAML alias bombs, recursive aliases and keys YAML reads alike, in every file itops loads (#12).

Inventories, playbooks and schedules all go through itops.yamlload; each case runs the real CLI.
"""

from __future__ import annotations

import textwrap
import time

import pytest
from click.testing import CliRunner

from itops.cli.main import cli
from itops.inventory import load_inventory
from itops.yamlload import parse_yaml_text

#: 9 aliases per level, 7 levels: about 4.8 million strings (11 million values) from a few hundred bytes
BOMB_VARS = "".join(f"      {chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(6))
BOMB_INVENTORY = (
    "version: 1\nhosts:\n  web1:\n    address: 10.0.0.1\n    vars:\n"
    '      a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + BOMB_VARS
)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout + result.stderr


def test_alias_bomb_inventory_is_refused_quickly_with_exit_4(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB_INVENTORY)
    assert len(BOMB_INVENTORY) < 600
    t0 = time.monotonic()
    code, out = invoke("inventory", "validate", str(path))
    took = time.monotonic() - t0
    assert code == 4, out
    assert f"{path}:1: aliases expand this file to 6,053,461 values" in out and "the limit is 1,000,000" in out
    assert took < 2.0, f"took {took:.1f}s"


@pytest.mark.parametrize(
    ("text", "line", "where"),
    [
        ("version: 1\nhosts:\n  web1: &h {address: 10.0.0.1, vars: {x: *h}}\n", 3, "hosts.web1.vars.x"),
        (
            "version: 1\nhosts:\n  web1:\n    address: 10.0.0.1\n    vars: &v\n      x: [1, *v]\n",
            6,
            "hosts.web1.vars.x[1]",
        ),
        ("version: 1\nhosts: &all\n  web1: {address: 10.0.0.1}\n  <<: *all\n", 4, "hosts"),
    ],
    ids=["mapping", "list-item", "merge"],
)
def test_recursive_alias_in_an_inventory_is_a_config_error_with_file_and_line(tmp_path, text, line, where):
    path = tmp_path / "cycle.yaml"
    path.write_text(text)
    code, out = invoke("inventory", "validate", str(path))
    assert code == 4, out
    assert f"{path}:{line}: {where}: recursive alias" in out


def test_recursive_alias_in_a_playbook_is_a_config_error(tmp_path):
    path = tmp_path / "pb.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: loop
        description: a playbook that contains itself
        systems: [x]
        rto: 1m
        rpo: 1h
        owner: tests
        vars: &v {again: *v}
        steps:
          - {name: s, local: "true"}
    """)
    )
    code, out = invoke("dr", "drill", str(path), "--dry-run")
    assert code == 4, out
    assert f"{path}:7: vars.again: recursive alias" in out


def test_recursive_alias_in_a_schedule_is_a_config_error(tmp_path):
    path = tmp_path / "schedule.yaml"
    path.write_text("version: 1\njobs: &j\n  again: *j\n")
    code, out = invoke("schedule", "export", "--cron", "-c", str(path))
    assert code == 4, out
    assert f"{path}:3: jobs.again: recursive alias" in out


def test_alias_bomb_in_a_playbook_is_refused(tmp_path):
    path = tmp_path / "pb.yaml"
    path.write_text("name: bomb\nvars:\n" + BOMB_INVENTORY.split("    vars:\n", 1)[1])
    t0 = time.monotonic()
    code, out = invoke("dr", "drill", str(path), "--dry-run")
    assert code == 4 and "aliases expand this file" in out, out
    assert time.monotonic() - t0 < 2.0


def test_shared_anchors_of_a_real_inventory_still_load(tmp_path):
    hosts = "".join(f"  web{i}: {{address: 10.0.{i // 250}.{i % 250 + 1}, vars: *common}}\n" for i in range(3000))
    path = tmp_path / "inv.yaml"
    path.write_text(
        "version: 1\ngroups:\n  web:\n    vars: &common {"
        + ", ".join(f"k{i}: v{i}" for i in range(30))
        + "}\nhosts:\n"
        + hosts
    )
    inv = load_inventory(path)
    assert len(inv.hosts) == 3000 and inv.hosts["web2999"].vars["k29"] == "v29"


def test_secret_inside_an_aliased_mapping_is_reported_once_at_the_anchor(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text(
        textwrap.dedent("""\
        version: 1
        hosts:
          web1: {address: 10.0.0.1, vars: &v {db: {password: hunter2}}}
          web2: {address: 10.0.0.2, vars: *v}
          web3: {address: 10.0.0.3, vars: *v}
    """)
    )
    code, out = invoke("inventory", "validate", str(path))
    assert code == 4, out
    assert out.count("secrets are never written inline") == 1
    assert f"{path}:3: hosts.web1.vars.db.password" in out and "hunter2" not in out


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ("1: b", "duplicate key '1': first at line 1, again at line 2"),
        ("true: b", "duplicate key 'true': YAML reads it as true, the same key as '1' at line 1 once loaded"),
        ("0x1: b", "duplicate key '0x1': YAML reads it as 1, the same key as '1' at line 1 once loaded"),
    ],
)
def test_duplicate_number_and_boolean_keys_are_named_as_written(second, message):
    doc = parse_yaml_text(f"1: a\n{second}\n", "f.yaml")
    (problem,) = doc.problems
    assert problem.line == 2 and problem.path == second.split(":")[0]
    assert problem.message.startswith(message)


def test_yes_and_true_keys_are_the_same_key_with_the_path_as_written(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text("version: 1\nhosts:\n  web1:\n    address: 10.0.0.1\n    vars:\n      true: a\n      yes: b\n")
    code, out = invoke("inventory", "validate", str(path))
    assert code == 4, out
    assert (
        f"{path}:7: hosts.web1.vars.yes: duplicate key 'yes': YAML reads it as true, the same key as 'true' "
        "at line 6 once loaded"
    ) in out
    assert "True" not in out
