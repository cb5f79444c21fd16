"""Inventory loading: every class of bad inventory reported with file:line and key path."""

from __future__ import annotations

import hashlib
import re
import textwrap
from datetime import date
from pathlib import Path

import pytest
from pydantic import BaseModel

from itops.errors import ConfigError, ConfigProblem, InventoryError, UsageError
from itops.inlinesecrets import validate_or_raise
from itops.inventory import FileBackup, Inventory, S3Backup, load_inventory
from itops.yamlload import (
    StrictModel,
    load_yaml_with_lines,
    parse_duration,
    parse_size,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "inventory" / "example.yaml"
FILE = "inventory/lab.yaml"


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write YAML to inventory/lab.yaml (relative, as a user types it) and return a loader."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inventory").mkdir()

    def write(text: str) -> str:
        Path(FILE).write_text(textwrap.dedent(text))
        return FILE

    return write


def problems(path: str) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    return [str(p) for p in info.value.problems]


def load(path: str) -> Inventory:
    return load_inventory(path)


# --- the shipped example ---------------------------------------------------------------------


def test_example_inventory_loads_without_problems():
    inv = load_inventory(EXAMPLE)
    assert len(inv.hosts) >= 4 and len(inv.sites) == 2
    assert inv.digest == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert inv.hosts["web1"].jump == "bastion1"
    assert "linux" in inv.groups and inv.groups["linux"].children
    assert inv.clouds and inv.waivers
    assert any(isinstance(b, FileBackup) for b in inv.backups.values())


# --- one test per class of problem, exact file:line: path: message ---------------------------


def test_unknown_key_is_reported_with_a_suggestion(lab):
    path = lab(
        """\
        version: 1
        hosts:
          web1:
            address: 10.0.0.11
            prot: 22
        """
    )
    assert problems(path) == [f"{FILE}:5: hosts.web1.prot: unknown key 'prot' (did you mean 'port'?)"]


def test_unknown_top_level_and_ssh_keys_get_suggestions(lab):
    path = lab(
        """\
        version: 1
        defaults:
          ssh:
            usr: ops
        host:
          web1: {}
        """
    )
    assert problems(path) == [
        f"{FILE}:4: defaults.ssh.usr: unknown key 'usr' (did you mean 'user'?)",
        f"{FILE}:5: host: unknown key 'host' (did you mean 'hosts'?)",
    ]


def test_duplicate_key_names_both_lines(lab):
    path = lab(
        """\
        version: 1
        hosts:
          web1:
            address: 10.0.0.11
            port: 22
            user: ops
            port: 2222
        """
    )
    assert problems(path) == [f"{FILE}:7: hosts.web1.port: duplicate key 'port': first at line 5, again at line 7"]


def test_duplicate_host_names_are_reported(lab):
    path = lab(
        """\
        version: 1
        hosts:
          web1: {address: 10.0.0.11}
          web1: {address: 10.0.0.12}
        """
    )
    assert problems(path) == [f"{FILE}:4: hosts.web1: duplicate key 'web1': first at line 3, again at line 4"]


def test_wrong_types_are_reported(lab):
    path = lab(
        """\
        version: 1
        defaults:
          concurrency: many
        hosts:
          web1:
            port: abc
            tags: {pci: true}
            sudo: perhaps
          web2:
            port: 70000
        """
    )
    assert problems(path) == [
        f"{FILE}:3: defaults.concurrency: expected an integer, got 'many'",
        f"{FILE}:6: hosts.web1.port: expected an integer, got 'abc'",
        f"{FILE}:7: hosts.web1.tags: expected a list, got a mapping",
        f"{FILE}:8: hosts.web1.sudo: expected true or false, got 'perhaps'",
        f"{FILE}:10: hosts.web2.port: must be 1-65535",
    ]


def test_bad_durations_are_reported(lab):
    path = lab(
        """\
        version: 1
        defaults:
          ssh: {connect_timeout: 10x}
        hosts:
          web1: {command_timeout: 0}
        backups:
          b1: {kind: file, host: web1, path: /b/*.gz, rpo: soon}
        """
    )
    hint = "use seconds or a number with s/m/h/d, e.g. 90s, 30m, 1h30m, 2d"
    assert problems(path) == [
        f"{FILE}:3: defaults.ssh.connect_timeout: invalid duration '10x': {hint}",
        f"{FILE}:5: hosts.web1.command_timeout: must be greater than zero",
        f"{FILE}:7: backups.b1.rpo: invalid duration 'soon': {hint}",
    ]


def test_bad_size_is_reported(lab):
    path = lab(
        """\
        version: 1
        hosts:
          db1: {}
        backups:
          db:
            kind: file
            host: db1
            path: /var/backups/db/*.gz
            rpo: 26h
            min_size: 10XB
        """
    )
    assert problems(path) == [
        f"{FILE}:10: backups.db.min_size: invalid size '10XB': use bytes or a number with B, KB, MB, GB, TB "
        "(1000-based) or KiB, MiB, GiB, TiB (1024-based)"
    ]


def test_max_probe_output_is_a_size_with_a_16_mib_default_and_a_floor(lab):
    path = lab(
        """\
        version: 1
        defaults: {ssh: {max_probe_output: 2MiB}}
        hosts:
          web1: {}
          web2: {max_probe_output: 100}
        """
    )
    assert problems(path) == [f"{FILE}:5: hosts.web2.max_probe_output: must be at least 4KiB, got 100 bytes"]
    path = lab("version: 1\ndefaults: {ssh: {max_probe_output: 2MiB}}\nhosts: {web1: {}, web2: {address: x}}\n")
    assert load(path).hosts["web1"].ssh.max_probe_output == 2 << 20
    assert load(lab("version: 1\nhosts: {web1: {}}\n")).hosts["web1"].ssh.max_probe_output == 16 << 20


def test_unknown_groups_from_hosts_and_children_and_unknown_group_members(lab):
    path = lab(
        """\
        version: 1
        groups:
          web: {hosts: [web1, web9]}
          linux: {children: [web, dbs]}
        hosts:
          web1: {groups: [wbe]}
        """
    )
    assert problems(path) == [
        f"{FILE}:3: groups.web.hosts[1]: unknown host 'web9' (did you mean 'web1'?)",
        f"{FILE}:4: groups.linux.children[1]: unknown group 'dbs'; known groups: linux, web",
        f"{FILE}:6: hosts.web1.groups[0]: unknown group 'wbe' (did you mean 'web'?)",
    ]


def test_unknown_site(lab):
    path = lab(
        """\
        version: 1
        sites:
          dc1: {owner: infra}
        hosts:
          web1:
            site: dc2
        """
    )
    assert problems(path) == [f"{FILE}:6: hosts.web1.site: unknown site 'dc2' (did you mean 'dc1'?)"]


def test_unknown_jump_host_self_jump_and_jump_cycle(lab):
    path = lab(
        """\
        version: 1
        hosts:
          web1: {jump: bastoin1}
          bastion1: {}
          a: {jump: a}
          b: {jump: c}
          c: {jump: b}
        """
    )
    assert problems(path) == [
        f"{FILE}:3: hosts.web1.jump: unknown host 'bastoin1' (did you mean 'bastion1'?)",
        f"{FILE}:5: hosts.a.jump: a host cannot be its own jump host",
        f"{FILE}:7: hosts.c.jump: jump host cycle: b -> c -> b",
    ]


def test_group_cycle_names_the_cycle_path(lab):
    path = lab(
        """\
        version: 1
        groups:
          all: {children: [linux]}
          linux: {children: [web]}
          web: {children: [all]}
        """
    )
    assert problems(path) == [f"{FILE}:5: groups.web.children[0]: group cycle: all -> linux -> web -> all"]


def test_yaml_syntax_error_has_file_line_and_parser_message(lab):
    path = lab(
        """\
        version: 1
        hosts:
          web1: {address: 10.0.0.11
          web2: {}
        """
    )
    [problem] = problems(path)
    assert problem.startswith(f"{FILE}:4: YAML syntax error: while parsing a flow mapping")


def test_unsafe_yaml_tags_are_refused(lab):
    path = lab("version: 1\nhosts: !!python/object/apply:os.system [echo hi]\n")
    [problem] = problems(path)
    assert problem.startswith(f"{FILE}:2: YAML syntax error: could not determine a constructor")


def test_inline_password_is_an_error_telling_what_to_use(lab):
    path = lab(
        """\
        version: 1
        defaults:
          ssh: {user: ops}
        hosts:
          web1:
            password: hunter2
            vars:
              api_token: abc123
        """
    )
    found = problems(path)
    assert [p.split(": secrets")[0] for p in found] == [
        f"{FILE}:6: hosts.web1.password",
        f"{FILE}:8: hosts.web1.vars.api_token",
    ]
    assert all("use password_env: NAME" in p and "password_file: PATH" in p for p in found)
    assert not any("hunter2" in p or "abc123" in p for p in found)  # never echo the secret


def test_names_that_look_like_secret_keys_are_names_not_secrets(lab):
    # a host, group or backup NAMED like a secret key holds a mapping: it is searched, not flagged
    path = lab(
        """\
        version: 1
        groups:
          ops-secret: {hosts: [db-token]}
        hosts:
          db-token: {address: 10.0.0.5}
          needs-password:
            address: 10.0.0.6
            vars: {api_token: abc123}
        """
    )
    found = problems(path)
    assert [p.split(": secrets")[0] for p in found] == [f"{FILE}:8: hosts.needs-password.vars.api_token"]


def test_password_env_must_name_a_variable_and_not_both_sources(lab):
    path = lab(
        """\
        version: 1
        hosts:
          web1: {password_env: "s3cr3t pass"}
          web2: {password_env: WEB2_PW, password_file: /etc/itops/pw}
        """
    )
    assert problems(path) == [
        f"{FILE}:3: hosts.web1.password_env: must name an environment variable (letters, digits, '_'), "
        "not hold the secret",
        f"{FILE}:4: hosts.web2: set password_env or password_file, not both",
    ]


def test_several_problems_are_reported_at_once_in_line_order(lab):
    path = lab(
        """\
        version: 1
        sites:
          dc1: {}
        groups:
          web: {children: [nope]}
        hosts:
          web1: {prot: 22, site: dc9}
          web2: {port: 0, jump: web3}
        waivers:
          - {check: ssh.x, target: web1, justification: j, approver: a, expires: soon}
        """
    )
    found = problems(path)
    assert found == [
        f"{FILE}:5: groups.web.children[0]: unknown group 'nope'; known groups: web",
        f"{FILE}:7: hosts.web1.prot: unknown key 'prot' (did you mean 'port'?)",
        # web1 and web2 have schema problems, yet their other keys are still cross-checked
        f"{FILE}:7: hosts.web1.site: unknown site 'dc9' (did you mean 'dc1'?)",
        f"{FILE}:8: hosts.web2.port: must be 1-65535",
        f"{FILE}:8: hosts.web2.jump: unknown host 'web3' (did you mean 'web1'?)",  # never itself
        f"{FILE}:10: waivers[0].expires: expected a date (YYYY-MM-DD), got 'soon'",
    ]


def test_inventory_error_message_lists_every_problem(lab):
    path = lab("version: 1\nhosts:\n  a: {prot: 1}\n  b: {prot: 2}\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    message = str(info.value)
    assert message.startswith("inventory is invalid (2 problems):")
    assert f"{FILE}:3: hosts.a.prot" in message and f"{FILE}:4: hosts.b.prot" in message
    assert isinstance(info.value, ConfigError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", f"{FILE}:1: file is empty: an inventory starts with `version: 1`"),
        ("- web1\n- web2\n", f"{FILE}:1: file is a list, not a mapping: an inventory starts with `version: 1`"),
        ("hosts: {}\n", f"{FILE}:1: missing `version: 1` (the inventory format version) at the top"),
        ("version: 2\n", f"{FILE}:1: version: unsupported version 2: this itops reads version 1"),
    ],
)
def test_empty_non_mapping_and_versionless_files(lab, text, expected):
    assert problems(lab(text)) == [expected]


def test_missing_file_is_an_inventory_error(tmp_path):
    with pytest.raises(InventoryError, match="cannot read file"):
        load_inventory(tmp_path / "nope.yaml")


def test_section_entry_may_not_set_name_or_line(lab):
    path = lab("version: 1\nsites:\n  dc1:\n    name: other\n")
    assert problems(path) == [f"{FILE}:4: sites.dc1.name: unknown key 'name'"]


def test_invalid_names_are_reported(lab):
    path = lab("version: 1\nhosts:\n  'web 1': {}\n  'group:x': {}\n")
    assert problems(path) == [
        f"{FILE}:3: hosts.web 1: invalid name 'web 1': use letters, digits, '.', '_' and '-'",
        f"{FILE}:4: hosts.group:x: invalid name 'group:x': use letters, digits, '.', '_' and '-'",
    ]


# --- backups and waivers ---------------------------------------------------------------------


def test_backup_problems(lab):
    path = lab(
        """\
        version: 1
        hosts:
          db1: {}
        backups:
          a: {kind: fiel, rpo: 1h}
          b: {kind: file, rpo: 1h, host: db2, path: /b/*.gz}
          c: {kind: s3, bucket: x, rpo: 1h, cloud: aws-prod}
          d: {kind: aws_backup, cloud: aws, rpo: 1d}
          e: {rpo: 1h}
          f: {kind: file, host: db1, path: /b/x.gz, rpo: 1h, retention: 3}
          g: {kind: file, host: db1, rpo: 1h}
        """
    )
    from itops import plugins

    # the built-in kinds, then any a plugin in this venv adds (the test plugin's dated_file)
    kinds = ", ".join(plugins.backup_kinds())
    assert kinds.startswith("file, s3, restic, postgres_dump, ebs_snapshot, rds_snapshot, aws_backup")
    assert problems(path) == [
        f"{FILE}:5: backups.a.kind: unknown kind 'fiel' (did you mean 'file'?); kinds: {kinds}",
        f"{FILE}:6: backups.b.host: unknown host 'db2' (did you mean 'db1'?)",
        f"{FILE}:7: backups.c.cloud: unknown cloud 'aws-prod'; no clouds are defined",
        f"{FILE}:8: backups.d: missing required key 'vault'",
        f"{FILE}:9: backups.e: missing required key 'kind' (one of: {kinds})",
        f"{FILE}:10: backups.f.retention: unknown key 'retention'"
        " (allowed keys: description, host, integrity, keep, kind, manifest, max_shrink_pct, min_copies,"
        " min_size, path, restore_test, rpo)",
        f"{FILE}:11: backups.g: missing required key 'path'",
    ]


@pytest.mark.parametrize(
    ("path", "into", "bad"),
    [
        ("/var/backups/db/*.sql.gz", "/var/backups/db", True),
        ("/var/backups/db/*.sql.gz", "/var/backups/db/restore", True),
        ("/var/backups/db/*.sql.gz", "/var/backups/db/../db/x", True),
        ("/var/backups/db/*.sql.gz", "/var/tmp/restore-check", False),
        ("/var/backups/db/*.sql.gz", "/var/backups/dbx", False),
        ("/srv/backups/", "/srv/backups/check", True),
        ("/srv/backups/latest.tar", "/srv/backups", True),
        ("/srv/backups/latest.tar", "/", True),
    ],
)
def test_restore_into_the_backup_source_is_an_error(lab, path, into, bad):
    inv = lab(
        f"""\
        version: 1
        hosts:
          db1: {{}}
        backups:
          db:
            kind: file
            host: db1
            path: "{path}"
            rpo: 26h
            restore_test:
              into: "{into}"
        """
    )
    if bad:
        [problem] = problems(inv)
        assert problem.startswith(f"{FILE}:11: backups.db.restore_test.into: ")
    else:
        load(inv)


def test_backup_fields_are_typed_and_restore_test_keeps_extra_keys(lab):
    inv = load(
        lab(
            """\
            version: 1
            hosts:
              db1: {}
            clouds:
              aws-prod: {profile: prod, regions: eu-west-1}
            backups:
              db:
                kind: file
                host: db1
                path: /var/backups/db/*.sql.gz
                rpo: 1h30m
                min_size: 10MB
                restore_test: {into: /var/tmp/r, rto: 30m, server: {image: postgres:16}, verify: [{sql: select 1}]}
              assets: {kind: s3, bucket: b, cloud: aws-prod, rpo: 2d, min_size: 1GiB}
            """
        )
    )
    db, assets = inv.backups["db"], inv.backups["assets"]
    assert isinstance(db, FileBackup) and isinstance(assets, S3Backup)
    assert (db.name, db.line, db.rpo, db.min_size) == ("db", 7, 5400.0, 10_000_000)
    assert db.restore_test is not None and db.restore_test.rto == 1800.0
    assert db.restore_test.model_extra == {"server": {"image": "postgres:16"}}
    assert db.restore_test.verify == ({"sql": "select 1"},)
    assert assets.min_size == 1024**3 and assets.cloud == "aws-prod"
    assert inv.clouds["aws-prod"].regions == ("eu-west-1",)


def test_waiver_problems_and_fields(lab):
    path = lab(
        """\
        version: 1
        waivers:
          - check: ssh.password_auth_disabled
            target: legacy-*
            justification: vendor box
            approver: jane
            ticket: 123
            expires: 2027-01-31
          - check: ssh.root_login_disabled
            target: "*"
            justification: ""
            expires: 2027-02-30
        """
    )
    assert problems(path) == [
        f"{FILE}:9: waivers[1]: missing required key 'approver'",
        f"{FILE}:11: waivers[1].justification: must not be empty",
        f"{FILE}:12: waivers[1].expires: expected a date (YYYY-MM-DD), got '2027-02-30'",
    ]
    Path(path).write_text(Path(path).read_text().split("  - check: ssh.root")[0])
    [waiver] = load(path).waivers
    assert (waiver.ticket, waiver.expires, waiver.line) == ("123", date(2027, 1, 31), 3)
    assert waiver.matches("ssh.password_auth_disabled", "legacy-db") and not waiver.matches("ssh.x", "legacy-db")
    assert not waiver.expired(date(2027, 1, 31)) and waiver.expired(date(2027, 2, 1))


# --- resolution: ssh settings, membership, vars ----------------------------------------------


def test_ssh_settings_merge_defaults_and_host_overrides(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    inv = load(
        lab(
            """\
            version: 1
            defaults:
              ssh: {user: audit, identity_file: ~/.ssh/id_ed25519, known_hosts: [keys/known_hosts],
                    connect_timeout: 5s, command_timeout: 2m, password_file: pw.txt}
            hosts:
              web1: {}
              db1: {port: 2222, user: dba, known_hosts: ~/kh, banner_timeout: 30, sudo: true, password_env: DB_PW}
            """
        )
    )
    web1, db1 = inv.hosts["web1"].ssh, inv.hosts["db1"].ssh
    here = tmp_path / "inventory"
    assert web1.user == "audit" and web1.port == 22 and web1.sudo is False
    assert web1.identity_file == str(tmp_path / "home/.ssh/id_ed25519")
    assert web1.known_hosts == (str(here / "keys/known_hosts"),)
    assert (web1.connect_timeout, web1.banner_timeout, web1.auth_timeout, web1.command_timeout) == (5, 5, 5, 120)
    assert (web1.password_env, web1.password_file) == (None, str(here / "pw.txt"))
    assert (db1.user, db1.port, db1.sudo, db1.banner_timeout, db1.auth_timeout) == ("dba", 2222, True, 30, 5)
    assert db1.known_hosts == (str(tmp_path / "home/kh"),)
    assert (db1.password_env, db1.password_file) == ("DB_PW", None)


def test_builtin_ssh_defaults_and_address_defaults_to_name(lab):
    inv = load(lab("version: 1\nhosts:\n  web1.example.com:\n"))
    host = inv.hosts["web1.example.com"]
    assert host.address == "web1.example.com" and host.line == 3
    assert (host.ssh.user, host.ssh.port, host.ssh.connect_timeout, host.ssh.command_timeout) == ("root", 22, 10, 60)
    assert host.ssh.known_hosts[0].endswith("/.ssh/known_hosts") and host.ssh.identity_file is None
    assert inv.concurrency == 32


def test_membership_merges_both_directions_and_includes_ancestors(lab):
    inv = load(
        lab(
            """\
            version: 1
            groups:
              all: {children: [linux], checks: ["base.*"]}
              linux: {children: [web, db], checks: ["linux.*", "ssh.*"]}
              web: {hosts: [web1]}
              db: {}
              other: {}
            hosts:
              web1: {}
              db1: {groups: [db]}
              lone: {}
            """
        )
    )
    assert inv.hosts["web1"].groups == ("all", "linux", "web")
    assert inv.hosts["db1"].groups == ("all", "db", "linux")
    assert inv.hosts["web1"].checks == ("base.*", "linux.*", "ssh.*")
    assert inv.hosts["lone"].groups == () and inv.hosts["lone"].checks == ()
    assert inv.groups["linux"].hosts == ("web1", "db1")
    assert inv.groups["other"].hosts == ()


def test_var_merge_precedence(lab):
    inv = load(
        lab(
            """\
            version: 1
            defaults:
              vars: {a: defaults, b: defaults, c: defaults, d: defaults, e: defaults, f: defaults}
            sites:
              dc1: {vars: {b: site, c: site, d: site, e: site, f: site}}
            groups:
              parent: {children: [zchild, achild], vars: {c: parent, d: parent, e: parent, f: parent}}
              zchild: {vars: {d: zchild, e: zchild, f: zchild}}
              achild: {vars: {d: achild, e: achild}}
            hosts:
              web1: {site: dc1, groups: [zchild, achild], vars: {f: host}}
            """
        )
    )
    assert dict(inv.hosts["web1"].vars) == {
        "a": "defaults",
        "b": "site",
        "c": "parent",  # ancestor group after site
        "d": "zchild",  # same depth: alphabetical, so zchild applies after achild
        "e": "zchild",
        "f": "host",
    }


def test_deeper_group_wins_even_when_alphabetically_first(lab):
    inv = load(
        lab(
            """\
            version: 1
            groups:
              zz: {children: [aa], vars: {x: zz}}
              aa: {hosts: [h], vars: {x: aa}}
            hosts:
              h: {}
            """
        )
    )
    assert inv.hosts["h"].vars["x"] == "aa"


def test_shell_metacharacters_are_kept_verbatim(lab):
    weird = "$(rm -rf /); `id` && echo \"$HOME\" | tee >/tmp/x 'q' *"
    inv = load(
        lab(
            f"""\
            version: 1
            hosts:
              web1:
                address: "10.0.0.1; reboot"
                user: "ops$USER"
                vars:
                  cmd: '{weird.replace("'", "''")}'
                  glob: "*"
            """
        )
    )
    host = inv.hosts["web1"]
    assert host.address == "10.0.0.1; reboot" and host.ssh.user == "ops$USER"
    assert host.vars["cmd"] == weird and host.vars["glob"] == "*"


def test_checks_dirs_resolve_against_the_inventory_folder(lab, tmp_path):
    (tmp_path / "inventory" / "mychecks").mkdir()
    inv = load(lab("version: 1\nchecks_dirs: [mychecks]\n"))
    assert inv.checks_dirs == (tmp_path / "inventory" / "mychecks",)
    path = lab("version: 1\nchecks_dirs: [mychecks, missing]\n")
    assert problems(path) == [f"{FILE}:2: checks_dirs[1]: folder not found: {tmp_path / 'inventory' / 'missing'}"]


def test_null_sections_and_entries_are_empty(lab):
    inv = load(lab("version: 1\ndefaults:\nsites:\ngroups:\n  web:\nhosts:\n  web1:\nwaivers:\n"))
    assert list(inv.hosts) == ["web1"] and inv.groups["web"].hosts == () and inv.waivers == ()


# --- select ----------------------------------------------------------------------------------

FLEET = """\
version: 1
sites: {dc1: {}, dc2: {}}
groups:
  linux: {children: [web, db]}
  web: {hosts: [web1, web2]}
  db: {hosts: [db1]}
hosts:
  web1: {site: dc1, tags: [pci]}
  db1: {site: dc2}
  web2: {site: dc2, tags: [pci, dmz]}
  bastion: {site: dc1, tags: [dmz]}
"""


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (None, ["web1", "db1", "web2", "bastion"]),
        ([], ["web1", "db1", "web2", "bastion"]),
        (["web*"], ["web1", "web2"]),
        (["web2,db1"], ["db1", "web2"]),  # file order, not argument order
        (["group:web"], ["web1", "web2"]),
        (["group:linux"], ["web1", "db1", "web2"]),  # via child groups
        (["site:dc2"], ["db1", "web2"]),
        (["tag:pci"], ["web1", "web2"]),
        (["tag:dmz", "site:dc2"], ["db1", "web2", "bastion"]),  # union
        (["!web1"], ["db1", "web2", "bastion"]),  # only exclusions: from all hosts
        (["group:linux,!site:dc2"], ["web1"]),
        (["tag:pci", "!tag:dmz"], ["web1"]),
        (["web1, ,"], ["web1"]),
    ],
)
def test_select_forms(lab, limits, expected):
    inv = load(lab(FLEET))
    assert [h.name for h in inv.select(limits)] == expected


@pytest.mark.parametrize("term", ["wbe*", "group:nope", "site:dc3", "tag:gdpr", "!nope"])
def test_select_term_matching_nothing_is_a_usage_error(lab, term):
    inv = load(lab(FLEET))
    with pytest.raises(UsageError, match=re.escape(f"--limit '{term}' matches no host")):
        inv.select(["web1", term])


def test_select_bad_form_is_a_usage_error(lab):
    inv = load(lab(FLEET))
    with pytest.raises(UsageError, match="bad --limit term 'role:web'"):
        inv.select(["role:web"])
    with pytest.raises(UsageError, match="matches no host") as info:
        inv.select(["group:wbe"])
    assert "did you mean 'web'" in info.value.hint


# --- the generic YAML helpers (reused by schedules and playbooks) ----------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("26h", 93600.0),
        ("2d", 172800.0),
        ("1h30m", 5400.0),
        ("1d 2h", 93600.0),
        ("0.5h", 1800.0),
    ],
)
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "10x", "h", "1h30", "-5m", -1, True, None, [1]])
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (512, 512),
        ("512", 512),
        ("10B", 10),
        ("10KB", 10_000),
        ("10MB", 10_000_000),
        ("1.5 GB", 1_500_000_000),
        ("2TB", 2 * 10**12),
        ("1KiB", 1024),
        ("1MiB", 1024**2),
        ("2GiB", 2 * 1024**3),
        ("10mb", 10_000_000),
    ],
)
def test_parse_size(value, size):
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["10XB", "MB", "10 M", "-1KB", True, None])
def test_parse_size_rejects(value):
    with pytest.raises(ValueError):
        parse_size(value)


def test_load_yaml_with_lines_records_keys_and_items(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("jobs:\n  nightly:\n    steps:\n      - run: a\n      - run: b\n")
    data, lines = load_yaml_with_lines(path)
    assert data == {"jobs": {"nightly": {"steps": [{"run": "a"}, {"run": "b"}]}}}
    assert lines.get(("jobs", "nightly")) == 2
    assert lines.get(("jobs", "nightly", "steps", 1)) == 5
    assert lines.get(("jobs", "nightly", "steps", 1, "run")) == 5
    assert lines.nearest(("jobs", "nightly", "missing", "deeper")) == 2


def test_load_yaml_with_lines_raises_the_given_error(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("a: 1\na: 2\n")
    with pytest.raises(ConfigError, match="schedule is invalid") as info:
        load_yaml_with_lines(path, lambda p: ConfigError(p, what="schedule"))
    assert info.value.problems == [
        ConfigProblem(str(path), 2, "a", "duplicate key 'a': first at line 1, again at line 2")
    ]


def test_validate_or_raise_is_generic(tmp_path):
    class Step(StrictModel):
        run: str
        timeout: float = 1.0

    class Playbook(StrictModel):
        steps: list[Step]

    path = tmp_path / "p.yaml"
    path.write_text("steps:\n  - run: a\n  - rnu: b\n    timeout: x\n")
    data, lines = load_yaml_with_lines(path)
    with pytest.raises(ConfigError) as info:
        validate_or_raise(Playbook, data, file="p.yaml", lines=lines, error=lambda p: ConfigError(p, "playbook"))
    assert [str(p) for p in info.value.problems] == [
        "p.yaml:3: steps[1]: missing required key 'run'",
        "p.yaml:3: steps[1].rnu: unknown key 'rnu' (did you mean 'run'?)",
        "p.yaml:4: steps[1].timeout: expected a number, got 'x'",
    ]
    ok = validate_or_raise(Playbook, {"steps": [{"run": "a"}]}, file="p.yaml", lines=lines)
    assert isinstance(ok, BaseModel) and ok.steps[0].run == "a"


def test_yaml_anchors_and_merge_keys_work(lab):
    inv = load(
        lab(
            """\
            version: 1
            hosts:
              web1: &base {user: ops, port: 2222}
              web2:
                <<: *base
                port: 22
            """
        )
    )
    assert (inv.hosts["web2"].ssh.user, inv.hosts["web2"].ssh.port) == ("ops", 22)


def test_cloud_timeouts_default_to_the_ssh_defaults_and_default_vars_are_kept(lab):
    inv = load(
        lab(
            """\
            version: 1
            defaults:
              ssh: {connect_timeout: 7, command_timeout: 1m}
              vars: {max_key_age_days: 90}
            clouds:
              aws-prod: {profile: prod}
              aws-dev: {profile: dev, connect_timeout: 3, read_timeout: 30s}
            """
        )
    )
    prod, dev = inv.clouds["aws-prod"], inv.clouds["aws-dev"]
    assert (prod.name, prod.line, prod.connect_timeout, prod.read_timeout) == ("aws-prod", 6, 7.0, 60.0)
    assert (dev.connect_timeout, dev.read_timeout) == (3.0, 30.0)
    assert dict(inv.default_vars) == {"max_key_age_days": 90}


def test_cloud_problems(lab):
    path = lab(
        """\
        version: 1
        clouds:
          aws-prod:
            provider: gcp
            role_arn: arn:aws:iam::123:role/x
            regions: [eu-west-1]
            token: abc
        """
    )
    assert problems(path) == [
        f"{FILE}:4: clouds.aws-prod.provider: must be one of 'aws', got 'gcp'",
        f"{FILE}:5: clouds.aws-prod.role_arn: must be an IAM role ARN like arn:aws:iam::123456789012:role/NAME,"
        " got 'arn:aws:iam::123:role/x'",
        f"{FILE}:7: clouds.aws-prod.token: secrets are never written inline: use password_env: NAME (an "
        "environment variable) or password_file: PATH, or an SSH key / agent",
    ]


def test_hosts_with_the_same_ssh_settings_share_one_object(tmp_path: Path) -> None:
    """A fleet's hosts mostly have the same settings: held once, not once per host (memory at scale)."""
    path = tmp_path / "inv.yaml"
    path.write_text(
        textwrap.dedent(
            """
            version: 1
            defaults: {ssh: {user: audit, port: 2222}}
            hosts:
              a: {address: 10.0.0.1}
              b: {address: 10.0.0.2}
              c: {address: 10.0.0.3, port: 22}
            """
        )
    )
    hosts = load_inventory(path).hosts
    assert hosts["a"].ssh is hosts["b"].ssh and hosts["a"].ssh.port == 2222
    assert hosts["c"].ssh is not hosts["a"].ssh and (hosts["c"].ssh.port, hosts["c"].ssh.user) == (22, "audit")
