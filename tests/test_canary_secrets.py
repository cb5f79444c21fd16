"""Issue 12 acceptance: planted secrets reach no file, report, terminal or notification of a run.

A real Debian lab host (sshd in a chroot, ``ACCOUNT_DRIFT`` plus planted files) holds secrets in
the shapes config files keep them (env, INI, YAML, SQL, Redis, HTTP headers, a mysql command line
in sudoers, a URL with a password, a private key); a user check pack reads them and makes a probe
print one on stderr; the inventory carries one in host vars and one as an SSH ``password_env``.
Then ``itops audit`` runs with every check, ``itops report`` renders every format, and the run is
sent by e-mail (real SMTP server) and webhooks (real HTTP server). Every byte written or sent is
searched for every secret.

The same run checks that host-controlled control characters (a sudoers file NAMED and one
CONTAINING ``ESC[2J`` and ``CR``) reach the operator's terminal only as visible escapes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from itops_lab import HostRoots, LabHostSpec, RootKind, start_fleet
from itops_lab.profiles import ACCOUNT_DRIFT, PlantedFile
from itops_lab.roots import default_cache_dir, read_recipe_marker

pytestmark = pytest.mark.integration

TOKEN = secrets.token_hex(4)
#: shape -> a secret value unique to this test session
SECRETS = {
    shape: f"Cnry{shape.title().replace('_', '')}{TOKEN}"
    for shape in (
        "env",
        "env_token",
        "ini",
        "yaml",
        "sql",
        "redis",
        "bearer",
        "stderr",
        "mysql",
        "url",
        "pem",
        "profile",
        "var",
        "var_token",
        "ssh_pw",
    )
}
PEM_BODY = f"MIIEow{SECRETS['pem']}AAAA"
SSH_PW_ENV = "ITOPS_CANARY_SSH_PASSWORD"
ESC_NAME = "/etc/sudoers.d/93-esc\x1b[2J\rname"
REPORT_FORMATS = ("html", "md", "json", "csv", "junit", "sarif", "ocsf")  # prom: backup runs only


def _files() -> dict[str, PlantedFile]:
    s = SECRETS
    return {
        "/etc/app/app.env": PlantedFile(f"DB_HOST=db1\nDB_PASSWORD={s['env']}\nAPI_TOKEN={s['env_token']}\n"),
        "/etc/app/proxy.ini": PlantedFile(f"[proxy]\nhost = proxy1\nproxy_password = {s['ini']}\n"),
        "/etc/app/config.yml": PlantedFile(f'db:\n  user: app\n  password: "{s["yaml"]}"\n'),
        "/etc/app/init.sql": PlantedFile(f"CREATE USER 'app'@'%' IDENTIFIED BY '{s['sql']}';\n"),
        "/etc/app/redis.conf": PlantedFile(f"bind 127.0.0.1\nrequirepass {s['redis']}\n"),
        "/etc/app/headers.txt": PlantedFile(f"Accept: */*\nAuthorization: Bearer {s['bearer']}\n"),
        "/etc/app/err.txt": PlantedFile(f"fatal: login with --password={s['stderr']} refused\n"),
        "/etc/app/backup.conf": PlantedFile(f"target=s3://backup:{s['url']}@minio.local/bucket\n"),
        "/etc/app/key.pem": PlantedFile(
            f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\n", mode=0o600
        ),
        "/etc/profile.d/app.sh": PlantedFile(f"export API_TOKEN={s['profile']}; umask 022\n"),
        # read by the built-in sudo checks: NOPASSWD rules whose text is the finding
        "/etc/sudoers.d/91-app": PlantedFile(
            f"app ALL=(root) NOPASSWD: /usr/bin/mysql -uroot -p{s['mysql']} appdb\n", mode=0o440
        ),
        "/etc/sudoers.d/92-esc": PlantedFile("bob ALL=(ALL) NOPASSWD: /bin/echo \x1b[2J\rFAKE-CLEAN\n", mode=0o440),
        ESC_NAME: PlantedFile("carol ALL=(ALL) NOPASSWD: ALL\n", mode=0o440),
    }


CANARY = ACCOUNT_DRIFT.derive("canary", description="account drift plus secrets in config files", files=_files())

_META = {
    "severity": "high",
    "rationale": "A canary check of the secret-handling acceptance test.",
    "remediation": "Remove the secret from the file.",
    "frameworks": {"nist-800-53": ["IA-5"], "iso-27001": ["A.5.17"]},
}
USER_CHECKS = [
    {
        "id": "canary.env_password_set",
        "type": "config",
        "path": "/etc/app/app.env",
        "syntax": "equals",
        "key": "DB_PASSWORD",
        "expected": "unset",
    },
    {
        "id": "canary.ini_proxy_password_set",
        "type": "config",
        "path": "/etc/app/proxy.ini",
        "syntax": "ini",
        "section": "proxy",
        "key": "proxy_password",
        "expected": "unset",
    },
    {
        "id": "canary.redis_requirepass_set",
        "type": "config",
        "path": "/etc/app/redis.conf",
        "syntax": "space",
        "key": "requirepass",
        "expected": "unset",
    },
    {
        "id": "canary.backup_target_set",
        "type": "config",
        "path": "/etc/app/backup.conf",
        "syntax": "equals",
        "key": "target",
        "expected": "s3://elsewhere",
    },
    {"id": "canary.env_no_token", "type": "command", "command": "cat /etc/app/app.env", "not_matches": "API_TOKEN=.*"},
    {
        "id": "canary.yaml_no_password",
        "type": "command",
        "command": "cat /etc/app/config.yml",
        "not_matches": "password: .*",
    },
    {
        "id": "canary.sql_no_identified",
        "type": "command",
        "command": "cat /etc/app/init.sql",
        "not_matches": "IDENTIFIED BY .*",
    },
    {
        "id": "canary.headers_no_authorization",
        "type": "command",
        "command": "cat /etc/app/headers.txt",
        "not_matches": "Authorization: .*",
    },
    {
        "id": "canary.key_not_present",
        "type": "command",
        "command": "cat /etc/app/key.pem",
        "not_matches": "(?s)-----BEGIN.*",
    },
    {"id": "canary.stderr_secret", "type": "command", "command": "cat /etc/app/err.txt >&2; exit 3"},
]


@dataclass
class Outputs:
    """Everything the run wrote or sent: name -> bytes."""

    blobs: dict[str, bytes]
    audit_stdout: str
    run_id: str


def _require_debian_lab() -> None:
    if os.geteuid() != 0:
        pytest.skip("the sshd lab needs root (ChrootDirectory, mknod, namespaces)")
    if not os.access("/usr/sbin/sshd", os.X_OK):
        pytest.skip("openssh-server is not installed (scripts/install-system-deps.sh)")
    cached = read_recipe_marker(default_cache_dir() / "debian-bookworm") is not None
    if not cached and shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed and no Debian root is cached (scripts/install-system-deps.sh)")


def _itops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", "from itops.cli.main import main; main()", *args],
        capture_output=True,
        timeout=300,
        env=env,
    )


def _notifications(store: Path, run_id: str, stderr: str, report: Path, tmp: Path) -> dict[str, bytes]:
    """Send the stored run by e-mail and webhooks to real local servers; what they received."""
    from notify.servers import start_hook, start_smtp

    from itops.scheduler.config import EmailSpec, NotifierSpec, NotifyRule, WebhookSpec
    from itops.scheduler.notify import JobEvent, deliver
    from itops.store import Store

    st = Store(store)
    run = st.get_run(run_id)
    event = JobEvent(
        job="canary",
        command="audit",
        where="inventory.yaml",
        state=run.state,
        exit_code=run.exit_code,
        started=run.started,
        finished=run.finished or run.started,
        run=run,
        results=st.results(run_id),
        report_path=report,
        stderr=stderr,
        error=f"stderr tail: {stderr[-500:]}",
    )
    controller, sink = start_smtp()
    hook = start_hook()
    try:
        email = EmailSpec.model_validate(
            {
                "host": "127.0.0.1",
                "port": sink.port,
                "starttls": False,
                "from": "itops@example.com",
                "to": ["ops@example.com"],
            }
        )
        notifiers = {
            "mail": NotifierSpec(name="mail", email=email, retries=1, backoff=0.01),
            "slack": NotifierSpec(name="slack", webhook=WebhookSpec(url=hook.url, format="slack"), retries=1),
            "json": NotifierSpec(name="json", webhook=WebhookSpec(url=hook.url, format="json"), retries=1),
        }
        rules = [NotifyRule(to=name, when="always") for name in notifiers]
        records = deliver(event, rules, notifiers)
        assert all(r.ok for r in records), [r.error for r in records]
        mails, posts = sink.wait_for(1), hook.wait_for(2)
    finally:
        controller.stop()
        assert hook.server is not None
        hook.server.shutdown()
        hook.server.server_close()
    out = {f"email {i}": m.as_bytes() for i, m in enumerate(mails)}
    for i, m in enumerate(mails):  # the parts decoded too (a body may be base64 or quoted-printable)
        for j, part in enumerate(p for p in m.walk() if not p.is_multipart()):
            out[f"email {i} part {j}"] = part.get_payload(decode=True) or b""
    out.update({f"webhook {i}": json.dumps(p, ensure_ascii=False).encode() for i, p in enumerate(posts)})
    out["delivery records"] = json.dumps([r.to_dict() for r in records]).encode()
    return out


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    _require_debian_lab()
    tmp = tmp_path_factory.mktemp("canary")
    store, reports, checks_dir = tmp / "store", tmp / "reports", tmp / "checks"
    reports.mkdir()
    checks_dir.mkdir()
    pack = {"checks": [{"title": f"canary check {c['id']}", **_META, **c} for c in USER_CHECKS]}
    (checks_dir / "canary.yaml").write_text(yaml.safe_dump(pack, sort_keys=False))
    env = {**os.environ, "NO_COLOR": "1", SSH_PW_ENV: SECRETS["ssh_pw"]}
    blobs: dict[str, bytes] = {}
    with HostRoots() as roots:
        spec = LabHostSpec("canary", groups=("canary",), root=roots.create("canary", RootKind.DEBIAN, CANARY))
        with start_fleet(tmp / "fleet", [spec], startup_timeout=30) as fleet:
            host = fleet.inventory()["hosts"]["canary"]
            # a second entry for the same sshd as a user without a key: the password from password_env is tried
            extra = {
                "hosts": {
                    "canary": {"password_env": SSH_PW_ENV},
                    "canary-pw": {
                        **{k: v for k, v in host.items() if k in ("address", "port", "groups")},
                        "user": "nobody",
                        "identity_file": str(tmp / "no-such-key"),
                        "password_env": SSH_PW_ENV,
                    },
                }
            }
            # secrets inline in inventory vars: the inventory is refused, and the refusal does not quote them
            with_vars = fleet.write_inventory(
                tmp / "with-vars.yaml",
                extra={
                    "hosts": {"canary": {"vars": {"db_password": SECRETS["var"], "api_token": SECRETS["var_token"]}}}
                },
            )
            refused = _itops("audit", "-i", str(with_vars), "--store", str(store), env=env)
            assert refused.returncode == 4 and b"vars.db_password" in refused.stderr, refused.stderr
            blobs["audit of the inventory with secret vars"] = refused.stdout + refused.stderr
            inventory = fleet.write_inventory(extra=extra)
            proc = _itops(
                "audit",
                "-i",
                str(inventory),
                "--all",
                "--store",
                str(store),
                "--checks-dir",
                str(checks_dir),
                "--report",
                f"html:{reports / 'audit.html'}",
                env=env,
            )
            json_proc = _itops(
                "audit",
                "-i",
                str(inventory),
                "--format",
                "json",
                "--store",
                str(store),
                "--checks-dir",
                str(checks_dir),
                env=env,
            )
    assert proc.returncode in (1, 3), proc.stderr.decode()
    assert json_proc.returncode in (1, 3), json_proc.stderr.decode()
    run_id = json.loads(json_proc.stdout)["run"]["id"]
    first_run = next(r for r in os.listdir(store / "runs") if r != run_id)
    blobs |= {
        "audit stdout": proc.stdout,
        "audit stderr": proc.stderr,
        "audit --format json stdout": json_proc.stdout,
        "audit --format json stderr": json_proc.stderr,
    }
    for rid in (first_run, run_id):
        for fmt in REPORT_FORMATS:
            out = reports / f"{rid}.{fmt}"
            rep = _itops("report", rid, "--format", fmt, "-o", str(out), "--store", str(store), env=env)
            assert rep.returncode == 0, rep.stderr.decode()
            blobs[f"itops report {rid} {fmt} output"] = rep.stdout + rep.stderr
    listed = _itops("runs", "list", "--store", str(store), env=env)
    blobs["runs list"] = listed.stdout + listed.stderr
    diff = _itops("diff", first_run, run_id, "--store", str(store), env=env)
    blobs["diff"] = diff.stdout + diff.stderr
    for path in [*store.rglob("*"), *reports.rglob("*")]:
        if path.is_file():
            blobs[str(path)] = path.read_bytes()
    blobs |= _notifications(store, first_run, proc.stderr.decode(), reports / "audit.html", tmp)
    return Outputs(blobs, proc.stdout.decode(), first_run)


def _encodings(secret: str) -> list[bytes]:
    """The secret as bytes, and as JSON, HTML and XML renderings could spell it."""
    import html

    return [f.encode() for f in {secret, html.escape(secret), json.dumps(secret)[1:-1]}]


def test_the_audit_found_what_was_planted(canary_run: Outputs) -> None:
    """The secrets were really read: the checks reading them ran and failed (so they had something to leak)."""
    doc = next(json.loads(b) for name, b in canary_run.blobs.items() if name == "audit --format json stdout")
    mine = [r for r in doc["results"] if r["target"] == "canary"]
    failed = {r["check_id"] for r in mine if r["status"] == "FAIL"}
    wanted = {c["id"] for c in USER_CHECKS if c["id"] != "canary.stderr_secret"} | {"accounts.sudoers_no_nopasswd"}
    assert wanted <= failed, wanted - failed
    (stderr_check,) = [r for r in mine if r["check_id"] == "canary.stderr_secret"]
    assert "exited 3" in stderr_check["message"] and "--password=" in stderr_check["message"]
    # the host whose only way in is the password from password_env was tried with it
    tried = [r for r in doc["results"] if r["target"] == "canary-pw"]
    assert tried and all("password" in r["message"] for r in tried if r["status"] == "UNREACHABLE")


@pytest.mark.parametrize("shape", sorted(SECRETS))
def test_no_secret_in_any_byte_written_or_sent(canary_run: Outputs, shape: str) -> None:
    secret = SECRETS[shape]
    assert len(canary_run.blobs) > 20
    for name, data in canary_run.blobs.items():
        for form in _encodings(secret):
            assert form not in data, f"{shape} secret in {name!r}"


def test_private_key_body_is_nowhere(canary_run: Outputs) -> None:
    for name, data in canary_run.blobs.items():
        assert PEM_BODY.encode() not in data, name


def test_terminal_output_shows_control_characters_as_escapes(canary_run: Outputs) -> None:
    out = canary_run.audit_stdout
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    # the sudoers rule CONTAINING the escapes, and the file NAMED with them, both as visible text
    assert "/bin/echo \\x1b[2J\\x0dFAKE-CLEAN" in out
    assert "93-esc\\x1b[2J\\x0dname" in out
