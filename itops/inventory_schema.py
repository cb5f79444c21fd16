"""The inventory schema: what a user may write (pydantic models, unknown keys are errors).

Site, cloud, backup and waiver models are also what :class:`itops.inventory.Inventory` holds.
Split from itops/inventory.py, which resolves and cross-checks them.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from itops.yamlload import (
    EnvName,
    OptionalMapping,
    Port,
    PositiveDuration,
    Size,
    StrictModel,
    StrList,
)


def _probe_output_limit(value: int) -> int:
    if value < 4096:
        raise ValueError(f"must be at least 4KiB, got {value} bytes")
    return value


class SSHSpec(StrictModel):
    """Connection keys allowed in ``defaults.ssh`` and directly on a host."""

    user: str | None = None
    port: Port | None = None
    identity_file: str | None = None
    known_hosts: StrList | None = None
    connect_timeout: PositiveDuration | None = None
    banner_timeout: PositiveDuration | None = None
    auth_timeout: PositiveDuration | None = None
    command_timeout: PositiveDuration | None = None
    #: bytes one probe may send (stdout and stderr together) before it is dropped as not assessable
    max_probe_output: Annotated[Size, AfterValidator(_probe_output_limit)] | None = None
    sudo: bool | None = None
    password_env: EnvName | None = None
    password_file: str | None = None

    @model_validator(mode="after")
    def _one_password_source(self) -> SSHSpec:
        if self.password_env and self.password_file:
            raise ValueError("set password_env or password_file, not both")
        return self


class HostSpec(SSHSpec):
    address: str | None = None
    description: str | None = None
    site: str | None = None
    groups: StrList = ()
    tags: StrList = ()
    jump: str | None = None
    vars: OptionalMapping = {}


class DefaultsSSHSpec(SSHSpec):
    """``defaults.ssh``: the host keys plus which OpenSSH client config to honour."""

    #: an OpenSSH client config file read as ``ssh`` would (``~/.ssh/config`` when it exists, if unset);
    #: ``false`` reads none
    config: str | Literal[False] | None = None


class DefaultsSpec(StrictModel):
    ssh: Annotated[DefaultsSSHSpec, BeforeValidator(lambda v: {} if v is None else v)] = DefaultsSSHSpec()
    concurrency: int = Field(32, ge=1)
    vars: OptionalMapping = {}


class GroupSpec(StrictModel):
    description: str | None = None
    hosts: StrList = ()
    children: StrList = ()
    vars: OptionalMapping = {}
    checks: StrList = ()


def _role_arn(value: str) -> str:
    if not re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+", value):
        raise ValueError(f"must be an IAM role ARN like arn:aws:iam::123456789012:role/NAME, got {value!r}")
    return value


class _Entry(StrictModel):
    """An entry of a section; the loader fills ``name`` and ``line`` (users never write them)."""

    internal_fields = frozenset({"name", "line"})
    name: str = ""
    line: int = 0


class Site(_Entry):
    """A data center or region: metadata and vars shared by its hosts."""

    description: str | None = None
    owner: str | None = None
    tier: str | None = None
    vars: OptionalMapping = {}


class Cloud(_Entry):
    """A cloud account. Timeouts left unset are filled from ``defaults.ssh`` when loaded."""

    provider: Literal["aws"] = "aws"
    description: str | None = None
    profile: str | None = None
    role_arn: Annotated[str, AfterValidator(_role_arn)] | None = None
    external_id: str | None = None
    session_name: str | None = None
    regions: StrList = ()
    endpoint_url: str | None = None
    connect_timeout: PositiveDuration | None = None  # API connect timeout (default: defaults.ssh)
    read_timeout: PositiveDuration | None = None  # API read timeout (default: defaults.ssh command_timeout)
    max_attempts: int | None = Field(None, ge=1, le=20)  # botocore adaptive-retry attempts
    backup_buckets: StrList = ()  # S3 bucket names/globs holding backups (object lock checks)
    vars: OptionalMapping = {}  # check parameters for this account (over defaults.vars)


class RestoreTest(StrictModel):
    """Open (extra keys allowed, in ``model_extra``) so each kind's verifier can add keys."""

    model_config = ConfigDict(extra="allow")
    into: str | None = None
    rto: PositiveDuration | None = None
    expect_files: StrList = ()
    verify: tuple[Any, ...] = ()


class Backup(_Entry):
    """Keys every backup kind has; the subclass of each kind adds where the backup lives.

    The kinds (``kind`` -> model) are the plugins' ``itops_backup_kinds`` answers
    (:func:`itops.plugins.backup_kinds`; itops's own in :mod:`itops.default_plugins.backups`).
    """

    kind: str
    description: str | None = None
    rpo: PositiveDuration
    min_size: Size | None = None
    keep: int | None = Field(None, ge=0)
    min_copies: int | None = Field(None, ge=1)
    max_shrink_pct: float | None = Field(None, ge=0, le=100)
    integrity: str | None = None
    manifest: str | None = None
    restore_test: RestoreTest | None = None


class FileBackup(Backup):
    host: str | None = None  # None: on the machine itops runs on
    path: str  # a glob on the host


class S3Backup(Backup):
    bucket: str
    prefix: str = ""
    cloud: str | None = None


class ResticBackup(Backup):
    repository: str
    host: str | None = None
    password_env: EnvName | None = None
    password_file: str | None = None


class PostgresDumpBackup(Backup):
    path: str
    host: str | None = None


class AWSSnapshotBackup(Backup):
    cloud: str
    region: str | None = None
    resource_ids: StrList = ()  # volume ids / DB instance identifiers; empty = all


class AWSBackupVault(AWSSnapshotBackup):
    vault: str


class WaiverRule(_Entry):
    """A waiver as written in the inventory: ``check`` and ``target`` are fnmatch patterns."""

    check: str = Field(min_length=1)
    target: str = Field(min_length=1)
    justification: str = Field(min_length=1)
    approver: str = Field(min_length=1)
    expires: date
    ticket: str | None = None

    def matches(self, check_id: str, target: str) -> bool:
        """True when this waiver's patterns cover ``check_id`` on ``target``."""
        return fnmatch.fnmatchcase(check_id, self.check) and fnmatch.fnmatchcase(target, self.target)

    def expired(self, today: date) -> bool:
        """Waivers apply through their ``expires`` day and stop the day after."""
        return today > self.expires


# --- sources (itops/sources/): hosts and groups read from elsewhere at load time --------------------

EC2_ADDRESSES = ("private_ip_address", "public_ip_address", "private_dns_name", "public_dns_name")


def _ec2_name(value: str) -> str:
    if value in ("instance_id", *EC2_ADDRESSES) or (value.startswith("tag:") and len(value) > 4):
        return value
    raise ValueError(f"must be tag:KEY, instance_id or one of {', '.join(EC2_ADDRESSES)}, got {value!r}")


def _filter_values(value: object) -> object:
    return [value] if isinstance(value, str | int | float | bool) else value


class EC2SourceSpec(StrictModel):
    """Running EC2 instances of a cloud account as hosts (``ec2:DescribeInstances``)."""

    cloud: str = Field(min_length=1)
    regions: StrList = ()  # default: the cloud's regions
    filters: dict[str, Annotated[tuple[str, ...], BeforeValidator(_filter_values)]] = {}  # DescribeInstances filters
    address: Literal["private_ip_address", "public_ip_address", "private_dns_name", "public_dns_name"] = (
        "private_ip_address"
    )
    name: Annotated[str, AfterValidator(_ec2_name)] = "tag:Name"  # host name; instance id when the tag is missing
    groups_from_tags: StrList = ()  # tag keys: an instance with role=web joins group role_web
    user: str | None = None
    port: Port | None = None
    jump: str | None = None
    vars: OptionalMapping = {}


class SourceSpec(StrictModel):
    """One entry of ``sources:``: exactly one of ``ansible`` (a path) or ``aws_ec2``."""

    ansible: str | None = Field(None, min_length=1)
    aws_ec2: EC2SourceSpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        if (self.ansible is None) == (self.aws_ec2 is None):
            raise ValueError("set exactly one of ansible, aws_ec2")
        return self


class TopSpec(StrictModel):
    version: Any = None
    sources: Annotated[list[Any], BeforeValidator(lambda v: [] if v is None else v)] = []
    defaults: Any = None  # validated on its own so a bad default does not hide other problems
    sites: OptionalMapping = {}
    groups: OptionalMapping = {}
    hosts: OptionalMapping = {}
    clouds: OptionalMapping = {}
    backups: OptionalMapping = {}
    waivers: Annotated[list[Any], BeforeValidator(lambda v: [] if v is None else v)] = []
    checks_dirs: StrList = ()


# --- where a restore test may write ---------------------------------------------------------------


def restore_into_problem(into: str, source: str | None) -> str:
    """Why a restore test's absolute ``into`` folder is refused ("" when it is fine): never ``/``, never
    inside the folder the backup is read from (the restore would overwrite what it verifies)."""
    into = posixpath.normpath(into)
    if into == "/":
        return "must not be / (a restore test writes into this folder)"
    if source and source.startswith("/"):
        folder = _source_dir(source)
        if _inside(into, folder) or _inside(into, posixpath.normpath(source)):
            return f"{into!r} is inside the backup source folder {folder!r}: restore elsewhere"
    return ""


def _source_dir(path: str) -> str:
    """The folder a backup path (or glob) names: ``/var/backups/db/*.gz`` -> ``/var/backups/db``."""
    parts = posixpath.normpath(path).split("/")
    for i, part in enumerate(parts):
        if any(c in part for c in "*?["):
            return "/".join(parts[:i]) or "/"
    return posixpath.normpath(path) if path.endswith("/") else posixpath.dirname(posixpath.normpath(path))


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")
