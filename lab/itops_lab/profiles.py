"""Lab host root profiles: what makes one host's file system differ from another's.

``HARDENED``/``WEAK`` for the demo; ``CLEAN`` (every root-dependent host check passes) and the
planted profiles derived from it for the audit acceptance test (tests/checks/test_planted_lab.py).
:func:`itops_lab.roots.apply_profile` writes a profile into a root.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class PlantedFile:
    """A file a profile writes into a root.

    Owner and group are names in the ROOT's passwd/group, or numbers (a number no account has is
    how an unowned file is planted). ``copy_of`` takes the bytes from another file of the root
    instead of ``content`` (e.g. a SUID copy of /bin/dash).
    """

    content: str | bytes = ""
    mode: int = 0o644
    owner: str | int = "root"
    group: str | int = "root"
    copy_of: str = ""


@dataclass(frozen=True)
class PlantedDir:
    """A directory a profile creates (or re-modes) in a root; owner/group as in :class:`PlantedFile`."""

    mode: int = 0o755
    owner: str | int = "root"
    group: str | int = "root"


@dataclass(frozen=True)
class RootProfile:
    """What makes one host root differ from another.

    :func:`apply_profile` applies the fields in this order: ``install_debs``, ``sshd_options``,
    extra accounts, ``line_edits``, ``appended``, ``strip_modes``, ``dirs``, ``files``,
    ``removed``, ``kernel_modules``, ``file_modes``; so a planted file or mode always wins over the
    blanket ``strip_modes``, and ``file_modes`` (applied last) over everything.
    """

    name: str
    sshd_options: Mapping[str, str] = field(default_factory=dict)
    # path -> (mode, owner name, group name); names resolve in the ROOT's passwd/group
    file_modes: Mapping[str, tuple[int, str, str]] = field(default_factory=dict)
    extra_passwd: tuple[str, ...] = ()
    extra_shadow: tuple[str, ...] = ()
    extra_group: tuple[str, ...] = ()
    description: str = ""
    # names from DEBIAN_PLANTABLE_DEBS, installed for real with dpkg (Debian roots only)
    install_debs: tuple[str, ...] = ()
    # path -> ((regex, replacement), ...): re.sub with MULTILINE; a pattern that matches nothing is
    # an error (the recipe's files changed under the profile)
    line_edits: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    appended: Mapping[str, str] = field(default_factory=dict)  # path -> text added at the end
    # directory -> permission bits cleared on every regular file below it (e.g. o+rwx of logs)
    strip_modes: Mapping[str, int] = field(default_factory=dict)
    dirs: Mapping[str, PlantedDir] = field(default_factory=dict)
    files: Mapping[str, PlantedFile] = field(default_factory=dict)
    removed: tuple[str, ...] = ()
    # modules the running kernel "ships": an (empty) .ko under /lib/modules/$(uname -r), indexed
    # with depmod, so modprobe in the root resolves them as on a real host (Debian roots only)
    kernel_modules: tuple[str, ...] = ()

    def derive(self, name: str, *, description: str = "", drop: Iterable[str] = (), **changes: object) -> RootProfile:
        """A new profile: this one with ``changes`` merged in.

        Tuples are extended; mappings are updated key by key, except that ``line_edits`` and
        ``appended`` of a path already present add to the inherited ones (edits run after them).
        ``drop`` names keys to leave out of the inherited mappings and tuples (an sshd keyword, a
        file path), so a planted profile can undo one hardening step of its parent.
        """
        dropped = set(drop)
        merged: dict[str, Any] = {"name": name, "description": description}
        for f in fields(self):
            if f.name in ("name", "description"):
                continue
            mine: Any = getattr(self, f.name)
            theirs: Any = changes.pop(f.name, None)
            if isinstance(mine, Mapping):
                value = {k: v for k, v in mine.items() if k not in dropped}
                for k, v in (theirs or {}).items():
                    value[k] = value[k] + v if f.name in ("line_edits", "appended") and k in value else v
                merged[f.name] = value
            else:
                merged[f.name] = tuple(x for x in mine if x not in dropped) + tuple(theirs or ())
        if changes:
            raise TypeError(f"unknown RootProfile fields: {', '.join(sorted(changes))}")
        return RootProfile(**merged)


HARDENED = RootProfile(
    name="hardened",
    sshd_options={
        "PermitRootLogin": "no",
        "PasswordAuthentication": "no",
        "PermitEmptyPasswords": "no",
        "MaxAuthTries": "4",
        "X11Forwarding": "no",
    },
    file_modes={"/etc/shadow": (0o640, "root", "shadow"), "/etc/passwd": (0o644, "root", "root")},
)
WEAK = RootProfile(
    name="weak",
    sshd_options={
        "PermitRootLogin": "yes",
        "PasswordAuthentication": "yes",
        "PermitEmptyPasswords": "yes",
        "MaxAuthTries": "10",
        "X11Forwarding": "yes",
    },
    file_modes={"/etc/shadow": (0o644, "root", "shadow"), "/etc/passwd": (0o644, "root", "root")},
    extra_passwd=(
        "toor:x:0:0:second root:/root:/bin/sh",
        "guest:x:1001:1001:guest:/home/guest:/bin/sh",
    ),
    extra_shadow=("toor:*:19700:0:99999:7:::", "guest::19700:0:99999:7:::"),
    extra_group=("guest:x:1001:",),
)

# --------------------------------------------------------------------------- audit lab profiles
# CLEAN is a Debian root hardened until every check that depends on the root's own files passes;
# each planted profile is CLEAN plus a documented set of deliberate misconfigurations.
# tests/lab_hosts.py pairs every profile with the check ids it must (and only it must) fail.

STRONG_SSH_CIPHERS = (
    "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr"
)
STRONG_SSH_MACS = "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512,hmac-sha2-256"
STRONG_SSH_KEX = (
    "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
    "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"
)
LEGAL_BANNER = "Authorised use only. Activity on this system is monitored and recorded.\n"
# a syntactically plausible yescrypt hash; the audit never sees it (the shadow probe says "set")
_FAKE_HASH = "$y$j9T$itopslab0000000000000$0000000000000000000000000000000000000000000"
# a public key as sshd reads it (nothing logs in with it: the lab's sshd has its own AuthorizedKeysFile)
_FAKE_PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGl0b3BzbGFiaXRvcHNsYWJpdG9wc2xhYml0b3BzbGFi alice@workstation\n"
# an MD5-crypt hash in the format crypt(3) accepts; the audit never sees it (the probe reports "$1")
_FAKE_MD5_HASH = "$1$itopslab$0000000000000000000000"
# a package "installed" without a .deb: a dpkg status entry, which is all dpkg-query reads (the version is
# bookworm's, so apt sees nothing to upgrade)
_FAKE_RSH_CLIENT_STATUS = (
    "\nPackage: rsh-client\nStatus: install ok installed\nPriority: optional\nSection: net\n"
    "Installed-Size: 150\nMaintainer: Alberto Gonzalez Iniesta <agi@inittab.org>\nArchitecture: amd64\n"
    "Source: netkit-rsh\nVersion: 0.17-24\nDepends: libc6 (>= 2.34)\n"
    "Description: client programs for remote shell connections\n rsh, rcp and rlogin (planted by the itops lab)\n"
)
_PWQUALITY_CONF = "# CIS 5.3.3.2.x\nminlen = 14\nenforcing = 1\n"
_CRON_DIRS = ("/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly", "/etc/cron.d")

# kernel modules CIS 1.1.1.x wants unloadable (checks/kernel/modules.py and the cramfs example check)
_DISABLED_MODULES = ("cramfs", "freevxfs", "hfs", "hfsplus", "jffs2", "squashfs", "udf", "usb-storage")

CLEAN = RootProfile(
    name="clean",
    description="CIS-style hardened Debian 12 server: every root-dependent host check passes",
    sshd_options={
        "PermitRootLogin": "no",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "PermitEmptyPasswords": "no",
        "HostbasedAuthentication": "no",
        "IgnoreRhosts": "yes",
        "PermitUserEnvironment": "no",
        "GSSAPIAuthentication": "no",
        "UsePAM": "yes",
        "MaxAuthTries": "4",
        "MaxSessions": "10",
        "MaxStartups": "10:30:60",
        "LoginGraceTime": "60",
        "ClientAliveInterval": "15",
        "ClientAliveCountMax": "3",
        "LogLevel": "VERBOSE",
        "Banner": "/etc/issue.net",
        "DisableForwarding": "yes",
        "X11Forwarding": "no",
        "Ciphers": STRONG_SSH_CIPHERS,
        "MACs": STRONG_SSH_MACS,
        "KexAlgorithms": STRONG_SSH_KEX,
        # who may log in over SSH (the lab's own sshd, with its own config, is what the audit logs in through)
        "AllowGroups": "sudo",
    },
    # one interactive administrator, as a real server has: password aged per policy, in group sudo
    extra_group=("alice:x:1000:",),
    extra_passwd=("alice:x:1000:1000:Alice Admin,,,:/home/alice:/bin/bash",),
    extra_shadow=(f"alice:{_FAKE_HASH}:19700:1:365:7:::",),
    line_edits={
        "/etc/login.defs": (
            (r"^PASS_MAX_DAYS\s+\S+", "PASS_MAX_DAYS\t365"),
            (r"^PASS_MIN_DAYS\s+\S+", "PASS_MIN_DAYS\t1"),
            (r"^PASS_WARN_AGE\s+\S+", "PASS_WARN_AGE\t7"),
            (r"^UMASK\s+\S+", "UMASK\t\t027"),
        ),
        "/etc/group": ((r"^sudo:x:27:$", "sudo:x:27:alice"),),
        # pam_pwquality in the password stack, as pam-auth-update writes it once libpam-pwquality is installed
        # (the module itself is not in the root: nothing in the lab changes a password)
        "/etc/pam.d/common-password": (
            (
                r"^(password\t\[success=1 default=ignore\]\tpam_unix\.so obscure) yescrypt$",
                "password\trequisite\t\t\tpam_pwquality.so retry=3\n\\1 use_authtok try_first_pass yescrypt",
            ),
        ),
    },
    strip_modes={"/var/log": 0o007},  # dpkg.log, alternatives.log, faillog ... are o+r as installed
    dirs={"/home/alice": PlantedDir(0o750, "alice", "alice"), "/home/alice/.ssh": PlantedDir(0o700, "alice", "alice")},
    files={
        "/home/alice/.ssh/authorized_keys": PlantedFile(_FAKE_PUBKEY, mode=0o600, owner="alice", group="alice"),
        "/etc/issue.net": PlantedFile(LEGAL_BANNER),
        "/etc/security/pwquality.conf": PlantedFile(_PWQUALITY_CONF),
        "/etc/security/limits.d/60-coredump.conf": PlantedFile("* hard core 0\n"),
        **{
            f"/etc/modprobe.d/{mod}.conf": PlantedFile(f"install {mod} /bin/false\nblacklist {mod}\n")
            for mod in _DISABLED_MODULES
        },
    },
    kernel_modules=_DISABLED_MODULES,  # a Debian kernel ships them; the modprobe.d policy above disables them
    file_modes={
        "/etc/ssh/sshd_config": (0o600, "root", "root"),
        "/etc/crontab": (0o600, "root", "root"),
        **{d: (0o700, "root", "root") for d in _CRON_DIRS},
    },
)

SSH_DRIFT = CLEAN.derive(
    "ssh-drift",
    description="sshd configuration drift: legacy algorithms, a cloud-init drop-in, a Match override",
    # Banner: back to the default (none); PermitUserEnvironment: now decided by the drop-in below;
    # AllowGroups: gone, so every account may log in
    drop=("Banner", "PermitUserEnvironment", "AllowGroups"),
    sshd_options={
        "Ciphers": STRONG_SSH_CIPHERS + ",aes128-cbc",
        "MACs": STRONG_SSH_MACS + ",hmac-sha1",
        "KexAlgorithms": STRONG_SSH_KEX + ",diffie-hellman-group14-sha1",
        "LogLevel": "QUIET",
        "MaxStartups": "100:30:200",
        "ClientAliveCountMax": "0",  # 0 turns the cut-off of unresponsive clients off
        "HostbasedAuthentication": "yes",
        "X11Forwarding": "yes",  # NOT a finding: DisableForwarding yes still turns X11 forwarding off
    },
    files={
        # PasswordAuthentication is NOT a finding: sshd_config sets it first and the first value wins
        "/etc/ssh/sshd_config.d/50-cloud-init.conf": PlantedFile(
            "PasswordAuthentication yes\nPermitUserEnvironment yes\n", mode=0o600
        ),
        "/etc/apt/sources.list.d/vendor.list": PlantedFile(
            "deb [trusted=yes] http://apt.vendor.example/debian bookworm main\n"
        ),
    },
    appended={"/etc/ssh/sshd_config": "\nMatch Address 192.0.2.0/24\n    PermitRootLogin yes\n"},
    file_modes={
        "/etc/ssh/sshd_config": (0o644, "root", "root"),
        "/etc/ssh/ssh_host_ed25519_key": (0o644, "root", "root"),
        "/etc/ssh/ssh_host_rsa_key.pub": (0o664, "root", "root"),
        "/etc/issue.net": (0o664, "root", "root"),
    },
)

ACCOUNT_DRIFT = CLEAN.derive(
    "account-drift",
    description="local account and privilege drift: extra UID 0, empty, unshadowed and MD5 passwords, sudo, "
    "a writable authorized_keys, a .rhosts, a short minimum password length",
    extra_group=("wheel:x:0:alice", "guest:x:1001:"),
    extra_passwd=(
        "toor:x:0:0:second root:/root:/bin/sh",
        "guest:x:1001:1001:guest:/home/guest:/bin/sh",
        "svc:x:998:998:service account:/var/lib/svc:/bin/bash",  # no group 998 either
        f"olduser:{_FAKE_HASH}:1002:1001:old account:/home/olduser:/usr/sbin/nologin",
    ),
    extra_shadow=("toor:*:19700:1:365:7:::", "guest::19700:1:365:7:::", "svc:!:19700:1:365:7:::"),
    line_edits={
        "/etc/login.defs": ((r"^PASS_MAX_DAYS\s+\S+", "PASS_MAX_DAYS\t99999"), (r"^UMASK\s+\S+", "UMASK\t\t022")),
        "/etc/group": ((r"^shadow:x:42:$", "shadow:x:42:alice"),),
        "/etc/shadow": (
            (r"^(alice:[^:]*:\d+:)1:", r"\g<1>0:"),
            (r"^alice:\$y\$[^:]*:", f"alice:{_FAKE_MD5_HASH}:"),  # an MD5-crypt hash, as after a legacy migration
        ),
        # the module argument overrides pwquality.conf's minlen = 14
        "/etc/pam.d/common-password": ((r"pam_pwquality\.so retry=3$", "pam_pwquality.so retry=3 minlen=8"),),
    },
    appended={"/root/.profile": 'PATH="$PATH:/opt/tools"\n'},
    dirs={
        "/home/alice": PlantedDir(0o755, "alice", "alice"),
        "/home/guest": PlantedDir(0o700, "guest", "guest"),
        "/home/guest/.ssh": PlantedDir(0o700, "guest", "guest"),
        "/opt/tools": PlantedDir(0o755, "alice", "alice"),
    },
    files={
        # group-writable (umask 002): anyone in group guest can add a key (not world-writable, which the
        # world-writable file scan would report as well)
        "/home/guest/.ssh/authorized_keys": PlantedFile(_FAKE_PUBKEY, mode=0o664, owner="guest", group="guest"),
        # trust every user of every host (rsh, or sshd with IgnoreRhosts no); mode 0600 as rsh wants it
        "/home/guest/.rhosts": PlantedFile("+ +\n", mode=0o600, owner="guest", group="guest"),
        "/etc/sudoers.d/90-alice": PlantedFile(
            "alice ALL=(ALL:ALL) NOPASSWD: ALL\nDefaults:alice !authenticate\n", mode=0o440
        ),
    },
    file_modes={"/etc/shadow": (0o644, "root", "shadow"), "/etc/gshadow-": (0o644, "root", "shadow")},
)

NEGLECTED = CLEAN.derive(
    "neglected",
    description="a neglected server: loose cron, log and sudoers permissions, stray files, legacy clients, MD5 "
    "password hashing, old release, a group-writable umask, a readable .netrc, a hosts.equiv trusting every host",
    drop=(
        "/etc/modprobe.d/cramfs.conf",
        "/etc/modprobe.d/udf.conf",
        "/etc/modprobe.d/usb-storage.conf",
        "/etc/security/limits.d/60-coredump.conf",
    ),
    install_debs=("telnet", "inetutils-telnet"),
    line_edits={"/etc/login.defs": ((r"^ENCRYPT_METHOD\s+\S+", "ENCRYPT_METHOD MD5"),)},
    appended={"/var/lib/dpkg/status": _FAKE_RSH_CLIENT_STATUS},
    dirs={"/srv/upload": PlantedDir(0o777)},
    files={
        "/etc/sudoers.d/50-operators": PlantedFile("alice ALL=(root) /usr/bin/systemctl restart cron\n", mode=0o644),
        "/var/log/auth.log": PlantedFile("", mode=0o644),
        "/etc/systemd/journald.conf": PlantedFile("[Journal]\nCompress=no\n"),
        "/etc/profile.d/umask.sh": PlantedFile("# shared project directories\numask 002\n"),
        "/etc/hosts.equiv": PlantedFile("+\n"),
        # credentials in clear text, readable by everyone (no file content ever leaves the host)
        "/home/alice/.netrc": PlantedFile(
            "machine backup.example login alice password itopslab\n", owner="alice", group="alice"
        ),
        "/usr/local/bin/.helper": PlantedFile(mode=0o4755, copy_of="/bin/dash"),
        "/usr/local/etc/app.conf": PlantedFile("listen=0.0.0.0\n", mode=0o666),
        "/opt/vendor/agent.bin": PlantedFile("#!/bin/sh\n", mode=0o755, owner=4242, group=4242),
        "/etc/os-release": PlantedFile(
            'PRETTY_NAME="Debian GNU/Linux 10 (buster)"\nNAME="Debian GNU/Linux"\nVERSION_ID="10"\n'
            'VERSION="10 (buster)"\nVERSION_CODENAME=buster\nID=debian\n'
        ),
    },
    removed=("/etc/cron.daily/logrotate",),
    file_modes={
        "/etc/crontab": (0o644, "root", "root"),
        "/etc/cron.d": (0o755, "root", "root"),
        "/etc/security/opasswd": (0o644, "root", "root"),
        "/etc/passwd-": (0o664, "root", "root"),
    },
)

PROFILES = {p.name: p for p in (HARDENED, WEAK, CLEAN, SSH_DRIFT, ACCOUNT_DRIFT, NEGLECTED)}
