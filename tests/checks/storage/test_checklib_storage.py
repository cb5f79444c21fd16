"""itops/checklib/storage.py: file dumps, df, /proc/mounts and mode listings (commands also run for real)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from itops.checklib import storage
from itops.checklib.storage import parse_df, parse_file_dump, parse_mode_listing, parse_mounts


def sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True)


def test_file_dump_round_trip(tmp_path):
    (tmp_path / "a.conf").write_text("key value\n")
    (tmp_path / "b.conf").write_text("no trailing newline")
    (tmp_path / "sub.conf").mkdir()  # directories are skipped, not reported unreadable
    weird = tmp_path / "it's; here"
    weird.write_text("x=1\n")
    command = storage.file_dump_command(paths=[str(weird), str(tmp_path / "missing")], globs=[f"{tmp_path}/*.conf"])
    assert str(weird) in shlex.split(command)
    out = sh(command)
    assert out.returncode == 0
    dump = parse_file_dump(out.stdout)
    assert dump.files[str(weird)].strip() == "x=1"
    assert dump.files[str(tmp_path / "a.conf")].strip() == "key value"
    assert dump.files[str(tmp_path / "b.conf")].strip() == "no trailing newline"
    assert str(tmp_path / "missing") not in dump.files
    assert dump.unreadable == ()
    assert [p for p, _ in dump.matching("*.conf")] == [str(tmp_path / "a.conf"), str(tmp_path / "b.conf")]


def test_file_dump_reports_unreadable():
    # root reads every file, so as root the probe runs as `nobody` (setpriv), like an unprivileged audit
    folder = Path(tempfile.mkdtemp(prefix="itops-unreadable-"))
    try:
        folder.chmod(0o755)
        secret = folder / "secret"
        secret.write_text("x")
        secret.chmod(0)
        command = storage.file_dump_command(paths=[str(secret)])
        if os.geteuid() == 0:
            out = subprocess.run(
                ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", command],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        else:
            out = sh(command)
        dump = parse_file_dump(out.stdout)
        assert dump.unreadable == (str(secret),)
    finally:
        shutil.rmtree(folder)


def test_file_dump_names_a_glob_directory_it_cannot_list():
    # without unlistable_dirs an unlistable drop-in directory looks empty; with it, it is named unreadable
    folder = Path(tempfile.mkdtemp(prefix="itops-unlistable-"))
    try:
        folder.chmod(0o755)
        (folder / "conf.d").mkdir(mode=0o700)
        (folder / "conf.d" / "a.conf").write_text("x\n")
        run_as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        (folder / "conf.d").chmod(0o700 if run_as_nobody else 0o300)
        for flag, expected in ((False, ()), (True, (str(folder / "conf.d"),))):
            command = storage.file_dump_command(globs=[f"{folder}/conf.d/*.conf"], unlistable_dirs=flag)
            out = subprocess.run(
                [*run_as_nobody, "sh", "-c", command], capture_output=True, text=True, timeout=30, check=False
            )
            assert parse_file_dump(out.stdout) == storage.FileDump({}, expected)
        (folder / "conf.d").chmod(0o755)
        command = storage.file_dump_command(globs=[f"{folder}/conf.d/*.conf"], unlistable_dirs=True)
        assert list(parse_file_dump(sh(command).stdout).files) == [str(folder / "conf.d" / "a.conf")]
        with pytest.raises(ValueError):
            storage.file_dump_command(globs=["/etc/*/x.conf"], unlistable_dirs=True)
    finally:
        shutil.rmtree(folder)


def test_file_dump_rejects_unsafe_globs():
    with pytest.raises(ValueError):
        storage.file_dump_command(globs=["/etc/*.conf; rm -rf /"])
    with pytest.raises(ValueError):
        storage.file_dump_command()


def test_parse_df_variants_and_garbage():
    rows = parse_df("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100 50 50 50% /\n")
    assert rows[0].use_pct == 50 and rows[0].fstype == "" and rows[0].mount == "/"
    rows = parse_df("Filesystem Type Inodes IUsed IFree IUse% Mounted on\n/dev/x btrfs 0 0 0 - /home\n")
    assert rows[0].use_pct is None and rows[0].fstype == "btrfs"
    for bad in ("", "nonsense\n", "Filesystem Type\n/dev/x ext4 1\n"):
        with pytest.raises(ValueError):
            parse_df(bad)


def test_df_runs_on_this_machine():
    for command in ("df -PT", "df -PTi"):
        out = sh(command)
        if out.returncode not in (0, 1):
            pytest.skip(f"{command} unsupported here: {out.stderr}")
        assert parse_df(out.stdout)


def test_parse_mounts_unescapes_and_needs_root():
    mounts = parse_mounts("/dev/sda1 / ext4 rw 0 0\n/dev/sdb /srv/my\\040data xfs rw,nodev 0 0\n")
    assert storage.find_mount(mounts, "/srv/my data").has("nodev")
    assert storage.find_mount(mounts, "/tmp") is None
    with pytest.raises(ValueError):
        parse_mounts("tmpfs /tmp tmpfs rw 0 0\n")
    with pytest.raises(ValueError):
        parse_mounts("garbage\n")
    with open("/proc/mounts") as fh:
        assert parse_mounts(fh.read())


def test_parse_mode_listing():
    entries, bad = parse_mode_listing("644 /var/log/syslog\n2 /var/log/odd name\nstat: oops\n")
    assert [(e.path, e.world_readable, e.world_writable) for e in entries] == [
        ("/var/log/syslog", True, False),
        ("/var/log/odd name", False, True),
    ]
    assert bad == ["stat: oops"]
