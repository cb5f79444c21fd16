"""checks/software/legacy_clients_absent.yaml: CIS 2.2 client packages, on canned package listings."""

from __future__ import annotations

import pytest
from helpers import make_facts, not_found, overall, registry, run_check, timed_out

from itops.model import Status

CLIENTS = {
    "software.nis_client_absent": ["nis"],
    "software.rsh_client_absent": ["rsh-client", "rsh-redone-client"],
    "software.talk_client_absent": ["talk", "inetutils-talk"],
    "software.ftp_client_absent": ["ftp", "tnftp", "inetutils-ftp"],
}
BASE = "@@itops-pm dpkg\nbash install ok installed\nopenssh-client install ok installed\n"


def run(check_id, spec, **kw):
    return run_check(check_id, make_facts({"packages": spec}, **kw))


def test_shipped_as_one_declarative_file():
    checks = [registry().get(i) for i in CLIENTS]
    assert {c.source.replace("\\", "/").rsplit("/checks/", 1)[1] for c in checks} == {
        "software/legacy_clients_absent.yaml"
    }
    assert all("declarative" in c.meta.tags and c.meta.frameworks["cis-debian-12"] for c in checks)


@pytest.mark.parametrize("check_id", list(CLIENTS))
def test_pass_when_none_installed(check_id):
    # removed with config files left ("rc") counts as absent
    listing = BASE + "".join(f"{n} deinstall ok config-files\n" for n in CLIENTS[check_id])
    [f] = run(check_id, (0, listing))
    assert f.status is Status.PASS, f


@pytest.mark.parametrize(("check_id", "name"), [(c, n) for c, names in CLIENTS.items() for n in names])
def test_fail_when_any_name_installed(check_id, name):
    [f] = run(check_id, (0, BASE + f"{name} install ok installed\n"))
    assert f.status is Status.FAIL and name in f.message, f


@pytest.mark.parametrize("check_id", list(CLIENTS))
@pytest.mark.parametrize(
    "spec",
    [
        timed_out("packages"),
        not_found("dpkg-query"),
        (0, "@@itops-pm dpkg\n"),
        (2, "dpkg-query: error"),
        (0, "garbage\n"),
    ],
)
def test_unknown_package_list_is_error_never_pass(check_id, spec):
    assert overall(run(check_id, spec)) is Status.ERROR


@pytest.mark.parametrize("check_id", list(CLIENTS))
def test_debian_package_names_so_debian_family_only(check_id):
    # the planner SKIPs the check on other families (RHEL names them ypbind, rsh, talk, ftp)
    assert registry().get(check_id).meta.os_families == ("debian",)
