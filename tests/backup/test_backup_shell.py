"""The sh building blocks run for real on this machine: secrets stay out of argv, records parse, formats read well."""

from __future__ import annotations

from itops.backup.facts import format_age, format_duration, format_limit, format_size
from itops.backup.shell import records, relative_member, source_dir, strip_tool_prefix, with_secrets
from itops.transport.batch import build_script
from itops.transport.local import LocalConnection

SECRET = "s3cr3t 'with' $(quotes) and spaces"


def test_secrets_travel_in_the_environment_never_in_a_command_line():
    probe = 'tr "\\0" " " < /proc/$$/cmdline; echo; printf %s "$ITOPS_SECRET_1"'
    batch = with_secrets(build_script([probe], [10]), {"ITOPS_SECRET_1": SECRET})
    assert SECRET not in batch.commands[0]
    out = LocalConnection().run_batch(batch, idle_timeout=10, total_timeout=20).results[0]
    argv, _, env_value = out.text.partition("\n")
    assert "ITOPS_SECRET_1" in argv and SECRET not in argv
    assert env_value == SECRET


def test_records_and_paths():
    text = "noise\n@itops\tfile\t/x/a b.gz\t17\t42\n@itops\tstep\tgzip -t\t1\tgzip: /x/a b.gz: unexpected end of file\n"
    recs = records(text)
    assert [r.kind for r in recs] == ["file", "step"]
    assert recs[0].fields == ("/x/a b.gz", "17", "42")
    assert strip_tool_prefix(recs[1].get(2), "/x/a b.gz") == "unexpected end of file"
    assert source_dir("/var/backups/db/*.sql.gz") == "/var/backups/db"
    assert source_dir("/srv/*/daily/x.tar") == "/srv"
    assert source_dir("/srv/db.dump") == "/srv"
    assert relative_member("/etc/app.conf") == "etc/app.conf" == relative_member("./etc/app.conf")
    assert relative_member("../../etc/passwd") == "etc/passwd"  # never escapes the scratch folder


def test_human_formats():
    assert format_age((3 * 24 + 4) * 3600 + 100) == "3d 4h"
    assert format_age(26 * 3600) == "1d 2h"
    assert format_age(59) == "59s" and format_age(125) == "2m 5s"
    assert format_limit(26 * 3600) == "26h" and format_limit(2 * 86400) == "2d" and format_limit(0.001) == "1ms"
    assert format_limit(90) == "90s" and format_limit(5400) == "90m"
    assert format_size(1_234_567) == "1.2 MB" and format_size(999) == "999 B"
    assert format_duration(0.0123) == "12 ms" and format_duration(3.44) == "3.4s" and format_duration(95) == "1m 35s"
