"""checks/storage/mounts_and_capacity.py on canned df and /proc/mounts output."""

from __future__ import annotations

import pytest
from helpers import make_facts, not_found, overall, run_check, timed_out

from itops.model import Status

DF = "df_blocks"
DFI = "df_inodes"
MOUNTS = "proc_mounts"

DF_OK = """Filesystem     Type     1024-blocks      Used Available Capacity Mounted on
/dev/sda1      ext4        41110528  12000000  27000000      31% /
tmpfs          tmpfs         815276      1200    814076       1% /run
/dev/sda2      ext4        10218772   8000000   1677100      83% /var
/dev/loop0     squashfs       65536     65536         0     100% /snap/core20/2105
/dev/sdb1      xfs        104806400  80000000  24806400      77% /srv/data dir
"""
DF_FULL = DF_OK.replace("83% /var", "97% /var").replace("77% /srv", "92% /srv")
DFI_OK = """Filesystem     Type      Inodes  IUsed   IFree IUse% Mounted on
/dev/sda1      ext4     2621440 300000 2321440   12% /
/dev/sdc1      btrfs          0      0       0     - /home
/dev/sda2      ext4      655360 600000   55360   92% /var/spool
"""
DFI_NO_TYPE = """Filesystem      Inodes  IUsed   IFree IUse% Mounted on
/dev/sda1      2621440 300000 2321440   12% /
"""


def df(text: str, rc: int = 0, stderr: str = "", probe: str = DF):
    return make_facts({probe: (rc, text, stderr)})


FS = "storage.filesystem_usage_below_threshold"
INODES = "storage.inode_usage_below_threshold"


def test_fs_usage_pass_ignores_squashfs():
    findings = run_check(FS, df(DF_OK))
    assert [f.status for f in findings] == [Status.PASS], findings
    assert "fullest /var at 83%" in findings[0].message


def test_fs_usage_fail_one_finding_per_mount():
    findings = run_check(FS, df(DF_FULL))
    assert [f.status for f in findings] == [Status.FAIL, Status.FAIL]
    assert {f.resource for f in findings} == {"/var", "/srv/data dir"}  # mount points with spaces survive
    assert "97%" in findings[0].message


def test_fs_usage_threshold_and_ignores_are_params():
    assert overall(run_check(FS, df(DF_OK), fs_usage_max_pct=80)) is Status.FAIL
    assert overall(run_check(FS, df(DF_FULL), fs_usage_ignore_mounts=["/var", "/srv/*"])) is Status.PASS
    assert overall(run_check(FS, df(DF_OK), fs_usage_ignore_types=[])) is Status.FAIL  # squashfs at 100%
    assert overall(run_check(FS, df(DF_OK), fs_usage_max_pct=0)) is Status.ERROR


def test_fs_usage_partial_df_still_judged():
    stderr = "df: /run/user/1000/doc: Operation not permitted"
    findings = run_check(FS, df(DF_OK, rc=1, stderr=stderr))
    assert overall(findings) is Status.PASS
    assert "could not read some mounts" in findings[0].message
    assert overall(run_check(FS, df(DF_FULL, rc=1, stderr=stderr))) is Status.FAIL


@pytest.mark.parametrize("check_id,probe", [(FS, DF), (INODES, DFI)])
def test_usage_garbage_and_broken_probe_is_error(check_id, probe):
    for text in (
        "",
        "df: invalid option -- 'T'\n",
        "Filesystem Type Size\n/dev/sda1 ext4\n",
        "Filesystem Type 1K-blocks Used Available Use% Mounted on\n/dev/sda1 ext4 1 1 1 abc% /\n",
    ):
        assert overall(run_check(check_id, df(text, probe=probe))) is Status.ERROR, text
    assert overall(run_check(check_id, df(DF_OK, rc=2, probe=probe))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({probe: timed_out()}))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({probe: not_found("df")}))) is Status.ERROR
    header_only = "Filesystem Type 1024-blocks Used Available Capacity Mounted on\n"
    assert overall(run_check(check_id, df(header_only, probe=probe))) is Status.ERROR


def test_inode_usage_pass_and_fail():
    findings = run_check(INODES, df(DFI_OK.replace("92%", "50%"), probe=DFI))
    assert [f.status for f in findings] == [Status.PASS]
    findings = run_check(INODES, df(DFI_OK, probe=DFI))
    assert [f.status for f in findings] == [Status.FAIL]
    assert findings[0].resource == "/var/spool"
    assert overall(run_check(INODES, df(DFI_OK, probe=DFI), inode_usage_max_pct=95)) is Status.PASS


def test_inode_usage_without_type_column():
    assert overall(run_check(INODES, df(DFI_NO_TYPE, probe=DFI))) is Status.PASS


# --- mount options ------------------------------------------------------------------------------------

MOUNTS_GOOD = r"""sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda1 / ext4 rw,relatime,errors=remount-ro 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev,noexec,inode64 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev,noexec,relatime,size=2097152k,inode64 0 0
/dev/mapper/vg-vartmp /var/tmp ext4 rw,nosuid,nodev,noexec,relatime 0 0
/dev/sdb1 /srv/data\040dir xfs rw,relatime 0 0
"""
MOUNTS_DEBIAN_DEFAULT = r"""/dev/sda1 / ext4 rw,relatime,errors=remount-ro 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev,inode64 0 0
tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=812k,mode=755,inode64 0 0
"""

MOUNT_CASES = [
    ("storage.tmp_mount_options_hardened", "/tmp", "tmp_mount_options_required"),
    ("storage.dev_shm_mount_options_hardened", "/dev/shm", "dev_shm_mount_options_required"),
    ("storage.var_tmp_mount_options_hardened", "/var/tmp", "var_tmp_mount_options_required"),
]
IDS = [c[0] for c in MOUNT_CASES]


def mounts(text: str, rc: int = 0):
    return make_facts({MOUNTS: (rc, text)})


@pytest.mark.parametrize(("check_id", "path", "param"), MOUNT_CASES, ids=IDS)
def test_mount_pass(check_id, path, param):
    findings = run_check(check_id, mounts(MOUNTS_GOOD))
    assert [f.status for f in findings] == [Status.PASS], findings


@pytest.mark.parametrize(("check_id", "path", "param"), MOUNT_CASES, ids=IDS)
def test_mount_fail_missing_option(check_id, path, param):
    text = MOUNTS_GOOD.replace(f"{path} ", f"{path} ", 1)
    line = next(ln for ln in text.splitlines() if ln.split()[1] == path)
    weakened = text.replace(line, line.replace("noexec,", ""))
    findings = run_check(check_id, mounts(weakened))
    assert overall(findings) is Status.FAIL
    assert "without noexec" in findings[0].message


@pytest.mark.parametrize(("check_id", "path", "param"), MOUNT_CASES, ids=IDS)
def test_mount_fail_when_not_separate(check_id, path, param):
    text = "\n".join(ln for ln in MOUNTS_GOOD.splitlines() if ln.split()[1] != path) + "\n"
    findings = run_check(check_id, mounts(text))
    assert overall(findings) is Status.FAIL
    assert "not a separate mount" in findings[0].message


@pytest.mark.parametrize(("check_id", "path", "param"), MOUNT_CASES, ids=IDS)
def test_mount_required_options_param(check_id, path, param):
    line = next(ln for ln in MOUNTS_GOOD.splitlines() if ln.split()[1] == path)
    weakened = MOUNTS_GOOD.replace(line, line.replace("noexec,", ""))
    assert overall(run_check(check_id, mounts(weakened), **{param: ["nodev", "nosuid"]})) is Status.PASS


@pytest.mark.parametrize(("check_id", "path", "param"), MOUNT_CASES, ids=IDS)
def test_mount_garbage_and_broken_probe_is_error(check_id, path, param):
    assert overall(run_check(check_id, mounts(""))) is Status.ERROR  # no root mount: not a mount table
    assert overall(run_check(check_id, mounts("cat: /proc/mounts: No such file\n"))) is Status.ERROR
    assert overall(run_check(check_id, mounts(MOUNTS_GOOD, rc=1))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({MOUNTS: timed_out()}))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({MOUNTS: not_found("cat")}))) is Status.ERROR


def test_debian_default_dev_shm_lacks_noexec_and_tmp_not_separate():
    findings = run_check("storage.dev_shm_mount_options_hardened", mounts(MOUNTS_DEBIAN_DEFAULT))
    assert overall(findings) is Status.FAIL and "noexec" in findings[0].message
    findings = run_check("storage.tmp_mount_options_hardened", mounts(MOUNTS_DEBIAN_DEFAULT))
    assert overall(findings) is Status.FAIL and "CIS requires" in findings[0].message


def test_last_mount_on_a_path_wins():
    text = MOUNTS_GOOD + "/dev/sdc1 /tmp ext4 rw,relatime 0 0\n"  # mounted over the tmpfs
    assert overall(run_check("storage.tmp_mount_options_hardened", mounts(text))) is Status.FAIL


# --------------------------------------------------------------------------- capacity forecast

FORECAST = "storage.capacity_forecast_ok"
DAY = 86400.0


def _df_row(mount: str, used_kb: int, avail_kb: int) -> str:
    pct = round(100 * used_kb / (used_kb + avail_kb))
    return f"/dev/sdx       ext4     {used_kb + avail_kb:>10} {used_kb:>9} {avail_kb:>9}      {pct}% {mount}\n"


DF_HEAD = "Filesystem     Type     1024-blocks      Used Available Capacity Mounted on\n"
DFI_SMALL = "Filesystem     Type      Inodes  IUsed   IFree IUse% Mounted on\n/dev/sdx ext4 1000 100 900 10% /\n"


def forecast_facts(history: dict[str, list[tuple[float, float]]], used_kb: int, now: float = 10 * DAY):
    facts = make_facts({DF: (0, DF_HEAD + _df_row("/", used_kb, 1000 - used_kb)), DFI: (0, DFI_SMALL)})
    return facts.__class__(**{**facts.__dict__, "history": history, "time": now})


def test_capacity_forecast_fails_when_the_trend_crosses_within_the_horizon():
    # +2 points a day for 5 days: 60 % -> 70 % now (day 10); 90 % is 10 days away
    history = {"fs.used_pct:/": [((5 + i) * DAY, 60.0 + 2 * i) for i in range(5)]}
    findings = run_check(FORECAST, forecast_facts(history, used_kb=700))
    assert overall(findings) is Status.FAIL
    (f,) = findings
    assert f.resource == "/" and "projected to reach 90% space used in 10 days" in f.message
    assert "Theil-Sen over 6 points" in f.message and f.observed == "10.0 days to 90%"
    # the same trend judged with a 7-day horizon passes, and says when the threshold comes
    passed = run_check(FORECAST, forecast_facts(history, used_kb=700), capacity_forecast_horizon_days=7)
    assert overall(passed) is Status.PASS and "soonest / in 10 days" in passed[0].message


def test_capacity_forecast_passes_on_a_flat_series():
    history = {"fs.used_pct:/": [(i * DAY, 50.0) for i in range(5, 10)]}
    findings = run_check(FORECAST, forecast_facts(history, used_kb=500))
    assert overall(findings) is Status.PASS and "stay under the thresholds for 30 days" in findings[0].message


def test_capacity_forecast_skips_without_enough_history():
    history = {"fs.used_pct:/": [(9 * DAY, 50.0), (9.5 * DAY, 50.0)]}
    findings = run_check(FORECAST, forecast_facts(history, used_kb=500))
    assert overall(findings) is Status.SKIPPED and findings[0].message.startswith("not enough history (3 of 5 runs)")
    assert overall(run_check(FORECAST, forecast_facts({}, used_kb=500))) is Status.SKIPPED


def test_capacity_forecast_errors_on_unreadable_df():
    facts = make_facts({DF: (0, "garbage\n"), DFI: (0, DFI_SMALL)})
    assert overall(run_check(FORECAST, facts)) is Status.ERROR
    assert overall(run_check(FORECAST, make_facts({DF: timed_out(DF), DFI: (0, DFI_SMALL)}))) is Status.ERROR


def test_usage_checks_record_every_file_system_as_metrics():
    (f,) = run_check(FS, df(DF_OK))
    assert f.metrics["fs.used_pct:/"] == round(100 * 12000000 / (12000000 + 27000000), 2)
    assert f.metrics["fs.size_kb:/srv/data dir"] == 104806400.0
    assert "fs.used_pct:/snap/core20/2105" not in f.metrics  # squashfs is ignored
    failing = run_check(FS, df(DF_FULL))
    assert failing[0].metrics and all(not later.metrics for later in failing[1:])
