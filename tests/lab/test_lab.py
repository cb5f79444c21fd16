"""The lab itself: real sshd hosts answer over SSH, chroots differ, and the failure helpers fail."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
import pytest
import yaml
from lab_hosts import LAB_HOSTS

from itops_lab import (
    HARDENED,
    WEAK,
    Fleet,
    HostRoots,
    LabHostSpec,
    LabMount,
    RootKind,
    closed_port,
    plant,
    plant_mode,
    plant_owner,
    read_banner,
    silent_port,
)
from itops_lab import roots as lab_roots_module
from itops_lab.procs import descendants

pytestmark = pytest.mark.integration

TOOLS = "sh cat grep awk sed stat find timeout wc mktemp rm id getent ls sort head tr printf"


def connect(fleet: Fleet, name: str, **kwargs: object) -> paramiko.SSHClient:
    """Connect as itops will: known_hosts from the fleet, RejectPolicy, the lab client key."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts_path))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    options: dict[str, object] = dict(
        username="root",
        key_filename=str(fleet.client_key_path),
        look_for_keys=False,
        allow_agent=False,
        timeout=5,
        banner_timeout=5,
        auth_timeout=5,
    )
    options.update(kwargs)
    client.connect("127.0.0.1", port=fleet[name].port, **options)  # type: ignore[arg-type]
    return client


def run(fleet: Fleet, name: str, command: str) -> tuple[int, str, str]:
    client = connect(fleet, name)
    try:
        _, stdout, stderr = client.exec_command(command, timeout=20)
        out, err = stdout.read().decode(), stderr.read().decode()
        return stdout.channel.recv_exit_status(), out, err
    finally:
        client.close()


def sshd_keywords(text: str) -> dict[str, str]:
    """First value of each keyword in an sshd_config (what sshd itself uses)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split(None, 1)
        if len(words) == 2 and not words[0].startswith("#"):
            found.setdefault(words[0].lower(), words[1].strip())
    return found


# --------------------------------------------------------------------------- the session fleet


@pytest.mark.parametrize("name", sorted(LAB_HOSTS))
def test_every_lab_host_answers_over_ssh(lab_fleet: Fleet, name: str) -> None:
    rc, out, _ = run(lab_fleet, name, "echo ready; hostname; id -u")
    assert rc == 0
    assert out.split() == ["ready", name, "0"]


def test_chroot_gives_good_and_bad_hosts_different_sshd_config(lab_fleet: Fleet) -> None:
    configs = {name: run(lab_fleet, name, "cat /etc/ssh/sshd_config")[1] for name in ("good1", "bad1")}
    assert configs["good1"] != configs["bad1"]
    for name, text in configs.items():
        seen = sshd_keywords(text)
        for keyword, value in LAB_HOSTS[name].sshd_config.items():
            assert seen[keyword.lower()] == value, (name, keyword)


def test_host_without_chroot_sees_this_machine(lab_fleet: Fleet) -> None:
    assert lab_fleet["plain1"].root is None
    _, out, _ = run(lab_fleet, "plain1", "cat /etc/os-release")
    assert out == Path("/etc/os-release").read_text()
    # ...except root's home: the lab hides this machine's dotfiles (private_home)
    _, home, _ = run(lab_fleet, "plain1", "ls -A ~ | wc -l")
    assert home.strip() == "0"


@pytest.mark.parametrize("name", ["good1", "bad1"])
def test_planted_accounts_and_file_modes(lab_fleet: Fleet, name: str) -> None:
    plan = LAB_HOSTS[name]
    _, mode, _ = run(lab_fleet, name, "stat -c '%a %U %G' /etc/shadow")
    assert mode.strip() == plan.shadow_mode
    _, uid0, _ = run(lab_fleet, name, "awk -F: '$3 == 0 {print $1}' /etc/passwd")
    assert tuple(uid0.split()) == plan.uid0_accounts
    _, empty, _ = run(lab_fleet, name, "awk -F: '$2 == \"\" {print $1}' /etc/shadow")
    assert tuple(empty.split()) == plan.empty_password_accounts
    _, passwd, _ = run(lab_fleet, name, "stat -c '%a %U' /etc/passwd")
    assert passwd.strip() == "644 root"


@pytest.mark.parametrize("name", ["good1", "bad1"])
def test_chroot_has_tools_dev_null_and_tmp(lab_fleet: Fleet, name: str) -> None:
    script = (
        f"for t in {TOOLS}; do command -v $t >/dev/null || echo MISSING $t; done; "
        'echo x > /dev/null && stat -c %a /tmp && f=$(mktemp) && rm "$f" && getent passwd root | cut -d: -f1'
    )
    rc, out, err = run(lab_fleet, name, script)
    assert rc == 0, err
    assert out.split() == ["1777", "root"]


def test_debian_root_answers_sshd_T_with_planted_values(lab_fleet: Fleet, lab_root_kind: RootKind) -> None:
    if lab_root_kind is not RootKind.DEBIAN:
        pytest.skip("sshd -T needs the debootstrap root")
    for name in ("good1", "bad1"):
        rc, out, err = run(lab_fleet, name, "/usr/sbin/sshd -T")
        assert rc == 0, err
        effective = sshd_keywords(out)
        for keyword, value in LAB_HOSTS[name].sshd_config.items():
            assert effective[keyword.lower()] == value.lower(), (name, keyword)
    # procps and iproute2 see a mounted /proc inside the chroot
    rc, out, _ = run(lab_fleet, "good1", "ps -e | wc -l; ss -tln | head -1")
    assert rc == 0 and int(out.split()[0]) > 1


def test_inventory_describes_the_fleet(lab_fleet: Fleet, lab_inventory: Path) -> None:
    doc = yaml.safe_load(lab_inventory.read_text())
    assert doc["version"] == 1
    assert doc["defaults"]["ssh"]["identity_file"] == str(lab_fleet.client_key_path)
    assert doc["defaults"]["ssh"]["known_hosts"] == [str(lab_fleet.known_hosts_path)]
    assert doc["sites"] == {"lab": {"description": "local sshd lab"}}
    assert set(doc["hosts"]) == set(LAB_HOSTS)
    for name, plan in LAB_HOSTS.items():
        entry = doc["hosts"][name]
        assert entry["port"] == lab_fleet[name].port and entry["address"] == "127.0.0.1"
        assert entry["groups"] == list(plan.groups) and entry["tags"] == list(plan.tags)
        for group in plan.groups:
            assert name in doc["groups"][group]["hosts"]
    lines = lab_fleet.known_hosts_path.read_text().splitlines()
    assert {line.split()[0] for line in lines} == {f"[127.0.0.1]:{h.port}" for h in lab_fleet}


def test_write_inventory_merges_extra(lab_fleet: Fleet, tmp_path: Path) -> None:
    extra = {"defaults": {"concurrency": 4}, "hosts": {"good1": {"vars": {"max_auth_tries": 4}}}}
    doc = yaml.safe_load(lab_fleet.write_inventory(tmp_path / "inv.yaml", extra=extra).read_text())
    assert doc["defaults"]["concurrency"] == 4 and doc["defaults"]["ssh"]["user"] == "root"
    assert doc["hosts"]["good1"]["vars"] == {"max_auth_tries": 4}
    assert doc["hosts"]["good1"]["port"] == lab_fleet["good1"].port


def test_host_key_fingerprint_matches_what_the_server_presents(lab_fleet: Fleet) -> None:
    client = connect(lab_fleet, "good1")
    try:
        transport = client.get_transport()
        assert transport is not None
        assert transport.get_remote_server_key().fingerprint == lab_fleet["good1"].fingerprint
    finally:
        client.close()


# --------------------------------------------------------------------------- throwaway fleets


def test_rotated_host_key_is_rejected(fleet_factory) -> None:
    fleet = fleet_factory(1)
    connect(fleet, "lab1").close()
    old = fleet["lab1"].fingerprint
    fleet.rotate_host_key("lab1")
    assert fleet["lab1"].fingerprint != old
    with pytest.raises(paramiko.BadHostKeyException):
        connect(fleet, "lab1")


def test_host_left_out_of_known_hosts_is_rejected(fleet_factory) -> None:
    fleet = fleet_factory([LabHostSpec("known"), LabHostSpec("stranger", known=False)])
    connect(fleet, "known").close()
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        connect(fleet, "stranger")


def test_silent_port_accepts_but_sends_no_banner() -> None:
    with silent_port() as port:
        assert read_banner(port, timeout=0.5) == b""
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        started = time.monotonic()
        with pytest.raises(paramiko.SSHException, match="banner"):
            client.connect(
                "127.0.0.1",
                port=port,
                username="root",
                timeout=2,
                banner_timeout=1,
                look_for_keys=False,
                allow_agent=False,
            )
        assert time.monotonic() - started < 5
        client.close()


def test_closed_port_refuses_connections() -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port()), timeout=2)


def test_many_parallel_connections_are_not_dropped(fleet_factory) -> None:
    fleet = fleet_factory(1)

    def one(_: int) -> str:
        return run(fleet, "lab1", "echo ok")[1].strip()

    with ThreadPoolExecutor(max_workers=40) as pool:
        assert list(pool.map(one, range(40))) == ["ok"] * 40


def test_stop_leaves_no_sshd_processes_of_ours(fleet_factory) -> None:
    fleet = fleet_factory(2)
    client = connect(fleet, "lab1")
    client.exec_command("sleep 60")  # a live session: sshd children and a shell below the listener
    masters = fleet.pids
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not descendants(masters):
        time.sleep(0.05)
    children = descendants(masters)
    assert children, "the open session should have forked sshd children"
    fleet.stop()
    client.close()
    for pid in [*masters, *children]:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie_or_other(pid, children.get(pid))
    assert fleet.pids == []
    assert not _processes_mentioning(str(fleet.workdir))


def _is_zombie_or_other(pid: int, start_time: int | None) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[0] == "Z" or (start_time is not None and int(fields[19]) != start_time)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if text.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


def test_busybox_root_behind_sshd(fleet_factory, lab_host_roots: HostRoots) -> None:
    root = lab_host_roots.create("bb1", RootKind.BUSYBOX, WEAK)
    fleet = fleet_factory([LabHostSpec("bb1", root=root)])
    rc, out, err = run(
        fleet,
        "bb1",
        f"for t in {TOOLS}; do command -v $t >/dev/null || echo MISSING $t; done;"
        " . /etc/os-release; echo $ID; getent passwd toor | cut -d: -f3",
    )
    assert rc == 0, err
    assert out.split() == ["itops-lab-busybox", "0"]


def test_host_mounts_are_its_own(fleet_factory, lab_host_roots: HostRoots) -> None:
    """A host's LabMounts show in ITS /proc/mounts over SSH, and nowhere on this machine or other hosts."""
    mounts = (LabMount("/tmp", "tmpfs", "nodev,nosuid,noexec,size=8m"), LabMount("/dev/shm", "tmpfs", "nodev"))
    root = lab_host_roots.create("mnt1", RootKind.BUSYBOX)
    other = lab_host_roots.create("mnt2", RootKind.BUSYBOX)
    fleet = fleet_factory([LabHostSpec("mnt1", root=root, mounts=mounts), LabHostSpec("mnt2", root=other)])
    rc, out, err = run(fleet, "mnt1", "cat /proc/mounts")
    assert rc == 0, err
    seen = {fields[1]: (fields[2], set(fields[3].split(","))) for fields in map(str.split, out.splitlines())}
    assert seen["/tmp"][0] == "tmpfs" and {"nodev", "nosuid", "noexec", "size=8192k"} <= seen["/tmp"][1]
    assert seen["/dev/shm"][0] == "tmpfs" and "nodev" in seen["/dev/shm"][1] and "noexec" not in seen["/dev/shm"][1]
    rc, out, err = run(fleet, "mnt2", "cat /proc/mounts")
    assert rc == 0 and not {"/tmp", "/dev/shm"} & {line.split()[1] for line in out.splitlines()}, err
    assert lab_roots_module.mounts_under(root) == []  # private to the host's mount namespace


# --------------------------------------------------------------------------- roots and the cache


def test_planting_into_a_debian_copy_never_touches_the_cache(lab_host_roots: HostRoots) -> None:
    root = lab_host_roots.create("cow1", RootKind.DEBIAN)
    base = lab_host_roots.cache_dir / "debian-bookworm"
    shared = "/usr/share/doc/openssh-server/copyright"
    assert (root / shared.lstrip("/")).stat().st_nlink > 1  # usr is hard-linked to the cache
    assert (root / "etc/passwd").stat().st_nlink == 1  # etc is not
    before = (base / shared.lstrip("/")).read_bytes(), (base / shared.lstrip("/")).stat()
    plant_mode(root, shared, 0o600)
    plant_owner(root, shared, "root", "shadow")
    plant(root, shared, "planted\n")
    after = (base / shared.lstrip("/")).stat()
    assert (base / shared.lstrip("/")).read_bytes() == before[0]
    assert (after.st_mode, after.st_gid) == (before[1].st_mode, before[1].st_gid)
    assert (root / shared.lstrip("/")).read_text() == "planted\n"
    # a symlink in the root resolves inside the root, never onto this machine
    plant(root, "/etc/os-release", "ID=planted\n")
    assert "ID=planted" not in Path("/usr/lib/os-release").read_text()
    assert "ID=planted" not in (base / "usr/lib/os-release").read_text()


def test_debian_cache_has_host_keys_and_recipe_marker(lab_host_roots: HostRoots) -> None:
    base = lab_roots_module.ensure_debian_base(lab_host_roots.cache_dir)
    marker = lab_roots_module.read_recipe_marker(base)
    assert marker is not None and marker["debootstrap"][1] == "--variant=minbase"
    assert list((base / "etc/ssh").glob("ssh_host_*_key"))


def test_changed_recipe_rebuilds_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake debootstrap: the cache is rebuilt when the recipe changes and reused when it does not."""
    calls: list[Path] = []

    def fake_command(target: Path) -> list[str]:
        calls.append(target)
        return [
            "sh",
            "-c",
            'mkdir -p "$0/etc/ssh" "$0/var/cache/apt/archives" && echo built > "$0/stamp"',
            str(target),
            "--variant=minbase",
        ]

    monkeypatch.setattr(lab_roots_module, "debootstrap_command", fake_command)
    first = lab_roots_module.ensure_debian_base(tmp_path)
    assert (first / "stamp").read_text() == "built\n" and len(calls) == 1
    assert lab_roots_module.ensure_debian_base(tmp_path) == first and len(calls) == 1
    monkeypatch.setattr(lab_roots_module, "DEBIAN_RECIPE_VERSION", 99)
    assert lab_roots_module.ensure_debian_base(tmp_path) == first and len(calls) == 2
    assert lab_roots_module.read_recipe_marker(first)["version"] == 99  # type: ignore[index]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".build-", ".old-"))]


def test_chroot_path_under_tmp_is_refused(tmp_path: Path) -> None:
    with pytest.raises(lab_roots_module.LabError, match="chroot"):
        lab_roots_module.check_chroot_path(tmp_path)


def test_profiles_are_opposites() -> None:
    assert set(HARDENED.sshd_options) == set(WEAK.sshd_options)
    assert all(HARDENED.sshd_options[k] != WEAK.sshd_options[k] for k in HARDENED.sshd_options)


# --------------------------------------------------------------------------- the command line


def _lab_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "itops_lab", *args], capture_output=True, text=True, timeout=timeout)


def test_cli_up_detach_then_down(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    up = _lab_cli("up", "--dir", str(tmp_path), "--hosts", "2", "--roots", "--root-kind", "busybox", "--detach")
    assert up.returncode == 0, up.stderr
    inventory = Path(up.stdout.strip())
    assert yaml.safe_load(inventory.read_text())["hosts"].keys() == {"lab1", "lab2"}
    state = json.loads((tmp_path / "lab-state.json").read_text())
    pids = [h["pid"] for h in state["hosts"].values()]
    assert all(Path(f"/proc/{pid}").exists() for pid in pids)
    assert Path(state["roots_dir"]).is_dir()
    down = _lab_cli("down", "--dir", str(tmp_path))
    assert down.returncode == 0, down.stderr
    assert not _processes_mentioning(str(tmp_path))
    assert not Path(state["roots_dir"]).exists()
    assert not (tmp_path / "lab-state.json").exists()


def test_cli_up_in_foreground_stops_on_sigterm(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    proc = subprocess.Popen(
        [sys.executable, "-m", "itops_lab", "up", "--dir", str(tmp_path), "--hosts", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        inventory = Path(proc.stdout.readline().strip())  # printed once every host answers
        assert inventory.is_file()
        assert len(_processes_mentioning(str(tmp_path))) >= 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert not _processes_mentioning(str(tmp_path))
    assert not (tmp_path / "lab-state.json").exists()
