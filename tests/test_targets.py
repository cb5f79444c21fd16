"""--limit across hosts and clouds."""

from __future__ import annotations

import pytest

from itops.errors import UsageError
from itops.inventory import load_inventory
from itops.targets import select_targets, split_limits

INV = """\
version: 1
hosts:
  web1: {address: 10.0.0.1, groups: [web]}
  web2: {address: 10.0.0.2, groups: [web]}
  db1: {address: 10.0.0.3}
groups:
  web: {}
clouds:
  aws-prod: {provider: aws, profile: prod, regions: [eu-west-1]}
  aws-dev: {provider: aws, profile: dev, regions: [eu-west-1]}
"""


@pytest.fixture
def inv(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text(INV)
    return load_inventory(path)


def names(sel):
    return [h.name for h in sel.hosts], sel.clouds


def test_no_limit_selects_every_host_and_cloud(inv):
    assert names(select_targets(inv, [])) == (["web1", "web2", "db1"], ["aws-prod", "aws-dev"])


def test_host_terms_select_hosts_only(inv):
    assert names(select_targets(inv, ["group:web"])) == (["web1", "web2"], [])


def test_cloud_terms_select_clouds_only_and_combine_with_hosts(inv):
    assert names(select_targets(inv, ["cloud:aws-p*"])) == ([], ["aws-prod"])
    assert names(select_targets(inv, ["db1,cloud:*", "!cloud:aws-dev"])) == (["db1"], ["aws-prod"])


def test_cloud_term_matching_nothing_is_a_usage_error(inv):
    with pytest.raises(UsageError, match="cloud:gcp"):
        select_targets(inv, ["cloud:gcp"])


def test_split_limits():
    assert split_limits(["a,cloud:x", "!cloud:y", "tag:z"]) == (["a", "tag:z"], ["cloud:x", "!cloud:y"])
