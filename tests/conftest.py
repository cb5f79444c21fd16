"""Shared pytest fixtures. Keep each group of fixtures together under its heading."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from lab_hosts import LAB_HOSTS

from itops_lab import Fleet, HostRoots, LabHostSpec, RootKind, start_fleet

# --------------------------------------------------------------------------- sshd lab
# Real OpenSSH sshd processes on 127.0.0.1 (itops_lab). Needs root (ChrootDirectory, mknod).
# ITOPS_LAB_ROOT_KIND=busybox swaps the Debian chroots for minimal busybox ones (no debootstrap).


def _require_lab() -> None:
    if os.geteuid() != 0:
        pytest.skip("the sshd lab needs root (ChrootDirectory, mknod, namespaces)")
    if not os.access("/usr/sbin/sshd", os.X_OK):
        pytest.skip("openssh-server is not installed (scripts/install-system-deps.sh)")


@pytest.fixture(scope="session")
def lab_root_kind() -> RootKind:
    """Which kind of chroot the session's lab hosts get (debian unless ITOPS_LAB_ROOT_KIND says)."""
    return RootKind(os.environ.get("ITOPS_LAB_ROOT_KIND", RootKind.DEBIAN.value))


@pytest.fixture(scope="session")
def lab_roots() -> Iterator[HostRoots]:
    """Session-wide maker of host roots; every root is removed at the end of the session."""
    _require_lab()
    with HostRoots() as roots:
        yield roots


@pytest.fixture(scope="session")
def lab_fleet(
    tmp_path_factory: pytest.TempPathFactory, lab_roots: HostRoots, lab_root_kind: RootKind
) -> Iterator[Fleet]:
    """The hosts of tests/lab_hosts.py (good1, bad1, plain1) running, with inventory written."""
    specs = []
    for name, plan in LAB_HOSTS.items():
        root = lab_roots.create(name, lab_root_kind, plan.profile) if plan.profile else None
        specs.append(LabHostSpec(name=name, groups=plan.groups, tags=plan.tags, root=root))
    with start_fleet(tmp_path_factory.mktemp("lab"), specs, startup_timeout=30) as fleet:
        fleet.write_inventory()
        yield fleet


@pytest.fixture(scope="session")
def lab_inventory(lab_fleet: Fleet) -> Path:
    """Path of the inventory YAML for ``lab_fleet``."""
    assert lab_fleet.inventory_path is not None
    return lab_fleet.inventory_path


@pytest.fixture(scope="session")
def lab_known_hosts(lab_fleet: Fleet) -> Path:
    """known_hosts holding every ``lab_fleet`` host key as ``[127.0.0.1]:PORT``."""
    return lab_fleet.known_hosts_path


@pytest.fixture(scope="session")
def lab_client_key(lab_fleet: Fleet) -> Path:
    """The OpenSSH-format ed25519 private key every lab host accepts for root."""
    return lab_fleet.client_key_path


@pytest.fixture
def lab_host_roots() -> Iterator[HostRoots]:
    """Host roots for one test (``create(name, kind, profile)``), removed when the test ends."""
    _require_lab()
    with HostRoots() as roots:
        yield roots


@pytest.fixture
def fleet_factory(tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    """Start throwaway fleets for tests that break things; all are stopped when the test ends.

    ``fleet_factory(2)`` starts lab1 and lab2; ``fleet_factory([LabHostSpec(...), ...], **kw)``
    starts the given specs (keyword arguments go to ``start_fleet``). The inventory is written.
    """
    _require_lab()
    fleets: list[Fleet] = []
    counter = itertools.count(1)

    def make(hosts: int | Sequence[LabHostSpec] = 1, **kwargs: Any) -> Fleet:
        specs = [LabHostSpec(f"lab{i}") for i in range(1, hosts + 1)] if isinstance(hosts, int) else hosts
        fleet = start_fleet(tmp_path / f"fleet{next(counter)}", specs, **kwargs)
        fleets.append(fleet)
        fleet.write_inventory()
        return fleet

    yield make
    for fleet in fleets:
        fleet.stop()
