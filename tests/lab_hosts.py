"""The lab fleet the integration tests run against: what each host is, in one place.

``lab_fleet`` (tests/conftest.py) builds exactly these hosts, and tests assert against the
expectations here instead of repeating literals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from itops.lab import HARDENED, WEAK, RootProfile


@dataclass(frozen=True)
class LabHostPlan:
    """One host of the test fleet: its chroot profile (None: no chroot) and what a check should see."""

    profile: RootProfile | None
    groups: tuple[str, ...]
    tags: tuple[str, ...] = ()
    sshd_config: Mapping[str, str] = field(default_factory=dict)  # keyword -> value in /etc/ssh/sshd_config
    shadow_mode: str = ""  # `stat -c '%a %U %G' /etc/shadow`
    uid0_accounts: tuple[str, ...] = ()
    empty_password_accounts: tuple[str, ...] = ()


LAB_HOSTS: dict[str, LabHostPlan] = {
    "good1": LabHostPlan(
        profile=HARDENED,
        groups=("linux", "hardened"),
        tags=("pci",),
        sshd_config=dict(HARDENED.sshd_options),
        shadow_mode="640 root shadow",
        uid0_accounts=("root",),
    ),
    "bad1": LabHostPlan(
        profile=WEAK,
        groups=("linux", "weak"),
        sshd_config=dict(WEAK.sshd_options),
        shadow_mode="644 root shadow",
        uid0_accounts=("root", "toor"),
        empty_password_accounts=("guest",),
    ),
    # no chroot: commands see this machine's own files
    "plain1": LabHostPlan(profile=None, groups=("linux",)),
}
