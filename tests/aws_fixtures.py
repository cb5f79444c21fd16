"""A moto server on 127.0.0.1 for the AWS tests, and helpers to build inventories for it.

The server is one ``ThreadedMotoServer`` per test process (started on first use on a
free port, stopped at exit); :func:`moto_reset` wipes its state (POST /moto-api/reset).
Import the fixtures into a test module or conftest::

    from aws_fixtures import aws_env, moto  # noqa: F401

(or list ``aws_fixtures`` in the root conftest's ``pytest_plugins``).
"""

from __future__ import annotations

import atexit
import logging
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from itops.inventory import Cloud, load_inventory

ACCOUNT_ID = "123456789012"  # moto's default account
OTHER_ACCOUNT_ID = "111111111111"  # reached by assuming a role into it
REGIONS = ("eu-west-1", "us-east-1")

logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

_lock = threading.Lock()
_server: Any = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def moto_endpoint() -> str:
    """URL of the process-wide moto server (started on first call)."""
    global _server
    with _lock:
        if _server is None:
            from moto.server import ThreadedMotoServer

            server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
            server.start()
            atexit.register(server.stop)
            _server = server
        host, port = _server.get_host_and_port()
    return f"http://{host}:{port}"


def _post(path: str, body: bytes = b"") -> None:
    req = urllib.request.Request(
        moto_endpoint() + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def moto_reset() -> None:
    """Forget every resource and turn IAM enforcement off again."""
    _post("/moto-api/reset-auth", b"inf")
    _post("/moto-api/reset")


def enforce_iam() -> None:
    """From now on moto checks every request against IAM (INITIAL_NO_AUTH_ACTION_COUNT=0)."""
    _post("/moto-api/reset-auth", b"0")


class Moto:
    """Clients of the moto server in the default account; ``client("s3")``."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.session = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGIONS[0]
        )

    def client(self, service: str, region: str = REGIONS[0], session: boto3.Session | None = None) -> Any:
        return (session or self.session).client(service, region_name=region, endpoint_url=self.endpoint)

    def assumed(self, account_id: str = OTHER_ACCOUNT_ID, role: str = "audit") -> boto3.Session:
        """A session in another moto account (moto maps assumed-role keys to the role's account)."""
        creds = self.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/{role}", RoleSessionName="setup"
        )["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=REGIONS[0],
        )


def cloud_entry(**kw: Any) -> dict[str, Any]:
    """An inventory ``clouds:`` entry pointing at moto (keyword arguments override)."""
    entry: dict[str, Any] = {
        "provider": "aws",
        "regions": list(REGIONS),
        "endpoint_url": moto_endpoint(),
        "connect_timeout": 3,
        "read_timeout": 10,
        "max_attempts": 2,
    }
    entry.update(kw)
    return entry


def write_inventory(path: Path, clouds: dict[str, dict[str, Any]], **top: Any) -> Path:
    doc: dict[str, Any] = {"version": 1, "clouds": clouds, **top}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def cloud_model(tmp_path: Path, name: str = "aws-test", **kw: Any) -> Cloud:
    """A validated :class:`Cloud` (through the real inventory loader)."""
    inv = load_inventory(write_inventory(tmp_path / f"inv-{name}.yaml", {name: cloud_entry(**kw)}))
    return inv.clouds[name]


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials for moto, isolated from the machine's ~/.aws."""
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGIONS[0])
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def moto(aws_env: None) -> Iterator[Moto]:
    """The shared moto server, wiped before and after the test."""
    endpoint = moto_endpoint()
    moto_reset()
    yield Moto(endpoint)
    moto_reset()
