"""AWS transport: one boto3 session per cloud account, API collections made once and shared.

An account (an inventory ``clouds:`` entry) gets one boto3 Session: a named profile,
or a role assumed from it (role_arn, external_id, session_name), with credentials
from boto3's own chain. Every client honours ``endpoint_url`` (moto, private
endpoints) and one botocore Config: adaptive retries, connect and read timeouts.

:func:`open_account` runs the preflight (``sts:GetCallerIdentity``) and finds the
regions (the listed ones, or every enabled region). :func:`collect` then makes each
needed collection (``s3.buckets``, ``ec2.security_groups`` ...) once per account and
region, regions in parallel under a concurrency bound, and returns
:class:`~itops.facts.CollectionResult` objects the checks share.

Errors are data here: AccessDenied-like codes become "not assessable: missing
permission s3:GetBucketPolicy" on the collection (or on one part of one resource),
so the checks that needed it end in ERROR, never PASS; "not configured" codes
(NoSuchBucketPolicy ...) are passed in by the collector as ``absent`` and yield None.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound
from botocore.parsers import ResponseParserError
from botocore.session import get_session

from itops import plugins
from itops.errors import TransportError
from itops.facts import CloudResource, CollectionResult
from itops.inventory_schema import Cloud

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Error codes meaning "the caller lacks the permission": the check is not assessable.
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        "UnauthorizedAccess",
        "Forbidden",
        "AllAccessDisabled",
    }
)
#: IAM action prefix of a boto3 service name, where they differ.
_IAM_PREFIX = {"s3control": "s3", "configservice": "config"}
#: IAM actions whose name differs from the API operation's.
_IAM_ACTION = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "GetObjectLockConfiguration"): "s3:GetBucketObjectLockConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
}
#: Region of the global services (IAM, S3 listing, STS) per partition.
HOME_REGION = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}
DEFAULT_MAX_ATTEMPTS = 5
GLOBAL = "global"
#: Failures of a call other than an error response: connection, timeout, and an answer that is
#: not the service's format (an HTML error page from a proxy or an endpoint not serving the region).
API_ERRORS = (BotoCoreError, ResponseParserError)


class AccountUnreachable(TransportError):
    """The account could not be used at all: no credentials, role not assumable, endpoint silent."""


class ApiFailure(TransportError):
    """One API call failed; ``str()`` is the one-line reason a check's ERROR shows."""


class PermissionMissing(ApiFailure):
    """The caller lacks ``action``: everything that needed the call is not assessable."""

    def __init__(self, action: str) -> None:
        super().__init__(f"not assessable: missing permission {action}")
        self.action = action


def iam_action(service: str, operation: str) -> str:
    """The IAM action of an API operation: ``iam_action("s3", "ListBuckets") == "s3:ListAllMyBuckets"``."""
    return _IAM_ACTION.get((service, operation), f"{_IAM_PREFIX.get(service, service)}:{operation}")


#: Longest API error text kept in a finding's message.
MAX_REASON = 160
_TAGS = re.compile(r"<[^>]*>")
_TITLE = re.compile(r"<title>([^<]*)</title>", re.IGNORECASE)


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """An API's error text fit for a one-line message: HTML error pages (a proxy, an endpoint that
    does not serve the region) lose their markup, whitespace collapses, long text is cut."""
    title = _TITLE.search(text)
    if title:  # an HTML page where an AWS answer was expected: its title says it all
        return f"the endpoint answered with an HTML page, not the AWS API: {' '.join(title.group(1).split())}"
    flat = " ".join(_TAGS.sub(" ", text.replace("\\n", " ")).split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def classify(exc: Exception, action: str) -> ApiFailure:
    """Turn a botocore exception into the failure a check reports."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in DENIED_CODES or (status == 403 and code not in ("SignatureDoesNotMatch", "ExpiredToken")):
            return PermissionMissing(action)
        reason = one_line(str(err.get("Message", "")))
        return ApiFailure(f"could not assess: {action} failed: {code or status}: {reason}".rstrip(": "))
    return ApiFailure(f"could not assess: {action} failed: {type(exc).__name__}: {one_line(str(exc))}")


# --- account: session, config, preflight, regions -------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Who the preflight says we are in an account."""

    account_id: str
    arn: str
    partition: str

    @property
    def home_region(self) -> str:
        return HOME_REGION.get(self.partition, "us-east-1")


def client_config(cloud: Cloud, *, preflight: bool = False) -> Config:
    """botocore Config for every client of ``cloud``: adaptive retries and both timeouts.

    The preflight uses the connect timeout for reads too and two attempts, so an
    endpoint that accepts connections but never answers is UNREACHABLE quickly.
    """
    connect = float(cloud.connect_timeout or 10.0)
    read = connect if preflight else float(cloud.read_timeout or 60.0)
    attempts = 2 if preflight else int(cloud.max_attempts or DEFAULT_MAX_ATTEMPTS)
    return Config(
        connect_timeout=connect,
        read_timeout=read,
        retries={"mode": "adaptive", "max_attempts": attempts},
        user_agent_extra="itops",
    )


def _assumed_session(base: boto3.Session, cloud: Cloud, region: str) -> boto3.Session:
    """A session whose credentials come from assuming ``cloud.role_arn`` and refresh before expiry."""
    sts = base.client("sts", region_name=region, endpoint_url=cloud.endpoint_url, config=client_config(cloud))
    kwargs: dict[str, Any] = {"RoleArn": cloud.role_arn, "RoleSessionName": cloud.session_name or "itops-audit"}
    if cloud.external_id:
        kwargs["ExternalId"] = cloud.external_id

    def fetch() -> dict[str, str]:
        creds = sts.assume_role(**kwargs)["Credentials"]
        expiry = creds["Expiration"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": expiry.isoformat() if isinstance(expiry, datetime) else str(expiry),
        }

    refreshable = RefreshableCredentials.create_from_metadata(fetch(), fetch, "assume-role")
    core = get_session()
    core._credentials = refreshable  # type: ignore[attr-defined]  # botocore has no public setter for these
    return boto3.Session(botocore_session=core, region_name=region)


def make_session(cloud: Cloud) -> boto3.Session:
    """The account's session: its profile (or boto3's default chain), then the role if one is set."""
    region = cloud.regions[0] if cloud.regions else "us-east-1"
    base = boto3.Session(profile_name=cloud.profile, region_name=region)
    if cloud.role_arn:
        return _assumed_session(base, cloud, region)
    return base


def preflight(session: boto3.Session, cloud: Cloud) -> Identity:
    """``sts:GetCallerIdentity``: proves credentials and endpoint work; gives account id and partition."""
    region = session.region_name or "us-east-1"
    try:
        sts = session.client(
            "sts", region_name=region, endpoint_url=cloud.endpoint_url, config=client_config(cloud, preflight=True)
        )
        ident = sts.get_caller_identity()
    except (ClientError, BotoCoreError) as exc:
        raise AccountUnreachable(_preflight_reason(exc)) from exc
    arn = str(ident["Arn"])
    return Identity(account_id=str(ident["Account"]), arn=arn, partition=arn.split(":")[1] or "aws")


def _preflight_reason(exc: Exception) -> str:
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found (profile, environment or instance role)"
    if isinstance(exc, ProfileNotFound):
        return str(exc)
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"sts:{exc.operation_name} failed: {err.get('Code', '')}: {err.get('Message', '')}"
    return f"sts:GetCallerIdentity failed: {type(exc).__name__}: {exc}"


def open_account(cloud: Cloud) -> tuple[boto3.Session, Identity]:
    """Session plus preflight; raises :class:`AccountUnreachable` with the reason."""
    try:
        session = make_session(cloud)
    except (ClientError, BotoCoreError) as exc:
        raise AccountUnreachable(_preflight_reason(exc)) from exc
    return session, preflight(session, cloud)


def discover_regions(session: boto3.Session, cloud: Cloud) -> tuple[str, ...]:
    """The listed regions, or every region enabled for the account (``ec2:DescribeRegions``)."""
    if cloud.regions:
        return tuple(cloud.regions)
    ec2 = session.client("ec2", endpoint_url=cloud.endpoint_url, config=client_config(cloud))
    try:
        found = ec2.describe_regions(AllRegions=False)["Regions"]
    except (ClientError, BotoCoreError) as exc:
        raise AccountUnreachable(f"cannot list regions: {classify(exc, 'ec2:DescribeRegions')}") from exc
    return tuple(sorted(r["RegionName"] for r in found if r.get("OptInStatus") != "not-opted-in"))


class ClientPool:
    """One client per (service, region) for the account, created on first use (thread-safe)."""

    def __init__(self, session: boto3.Session, cloud: Cloud) -> None:
        self.session = session
        self.cloud = cloud
        self._config = client_config(cloud)
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str, region: str) -> Any:
        key = (service, region)
        with self._lock:  # sessions are not thread-safe; clients are
            if key not in self._clients:
                make: Any = self.session.client  # typed per literal service name; ours are variables
                client = make(service, region_name=region, endpoint_url=self.cloud.endpoint_url, config=self._config)
                if service == "s3control" and _is_ip_endpoint(self.cloud.endpoint_url):
                    client.meta.events.register("before-sign.s3-control.*", _strip_account_host_prefix)
                self._clients[key] = client
            return self._clients[key]


def _is_ip_endpoint(url: str | None) -> bool:
    host = urlsplit(url).hostname if url else None
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _strip_account_host_prefix(request: Any, **kwargs: Any) -> None:
    """s3control puts ``{AccountId}.`` before the endpoint host; an IP endpoint (moto) cannot take it."""
    parts = urlsplit(request.url)
    host = parts.hostname or ""
    first, _, rest = host.partition(".")
    if first.isdigit() and len(first) == 12 and rest:
        request.url = parts._replace(netloc=parts.netloc.replace(host, rest, 1)).geturl()


# --- collections -------------------------------------------------------------------------


class CallContext:
    """What a collector uses to call AWS in one region; records every IAM action it calls."""

    def __init__(self, clients: ClientPool, identity: Identity, region: str, regions: tuple[str, ...]) -> None:
        self.clients = clients
        self.identity = identity
        self.region = identity.home_region if region == GLOBAL else region
        self.regions = regions  # every audited region (global collectors may loop over them)
        self.calls: set[str] = set()
        self._lock = threading.Lock()

    @property
    def account_id(self) -> str:
        return self.identity.account_id

    @property
    def partition(self) -> str:
        return self.identity.partition

    def arn(self, service: str, resource: str, region: str | None = None, account: bool = True) -> str:
        where = self.region if region is None else region
        return f"arn:{self.partition}:{service}:{where}:{self.account_id if account else ''}:{resource}"

    def _client(self, service: str, region: str | None) -> tuple[Any, str]:
        return self.clients.get(service, region or self.region), service

    def _action(self, client: Any, service: str, method: str) -> str:
        action = iam_action(service, client.meta.method_to_api_mapping[method])
        with self._lock:
            self.calls.add(action)
        return action

    def call(
        self, service: str, method: str, *, absent: Iterable[str] = (), region: str | None = None, **kwargs: Any
    ) -> dict[str, Any] | None:
        """One API call; None when it failed with an ``absent`` ("not configured") code."""
        client, service = self._client(service, region)
        action = self._action(client, service, method)
        try:
            response: dict[str, Any] = getattr(client, method)(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in set(absent):
                return None
            raise classify(exc, action) from exc
        except API_ERRORS as exc:
            raise classify(exc, action) from exc
        return response

    def pages(self, service: str, method: str, key: str, *, region: str | None = None, **kwargs: Any) -> list[Any]:
        """Every item under ``key`` across all pages of a paginated call."""
        client, service = self._client(service, region)
        action = self._action(client, service, method)
        items: list[Any] = []
        try:
            for page in client.get_paginator(method).paginate(**kwargs):
                items.extend(page.get(key, []))
        except (ClientError, *API_ERRORS) as exc:
            raise classify(exc, action) from exc
        return items

    @staticmethod
    def part(data: dict[str, Any], errors: dict[str, str], key: str, fetch: Callable[[], Any]) -> None:
        """Read one part of a resource: its value into ``data``, or why not into ``errors``."""
        try:
            data[key] = fetch()
        except ApiFailure as exc:
            errors[key] = str(exc)

    def map(self, fn: Callable[[T], CloudResource], items: Sequence[T], workers: int = 8) -> list[CloudResource]:
        """``fn`` over ``items`` (per-resource calls) with a few threads, order kept."""
        if len(items) < 2:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="itops-aws-item") as pool:
            return list(pool.map(fn, items))


Collector = Callable[[CallContext], list[CloudResource]]


@dataclass(frozen=True)
class CollectionSpec:
    """How to make a collection, and every IAM action that may take (for policy tests)."""

    name: str
    scope: Literal["global", "regional"]
    actions: tuple[str, ...]
    collect: Collector


_SPEC_ATTR = "itops_collection"


def collection(
    name: str, *, scope: Literal["global", "regional"], actions: Sequence[str]
) -> Callable[[Collector], Collector]:
    """Mark a collector as the collection ``name`` (nothing is registered: a plugin's
    ``itops_aws_collections`` hook returns :func:`specs_in` of its module)."""

    def wrap(fn: Collector) -> Collector:
        setattr(fn, _SPEC_ATTR, CollectionSpec(name, scope, tuple(actions), fn))
        return fn

    return wrap


def specs_in(module: ModuleType) -> list[CollectionSpec]:
    """The collections marked with :func:`collection` in ``module``, in definition order."""
    found = (getattr(value, _SPEC_ATTR, None) for value in vars(module).values())
    return [spec for spec in found if isinstance(spec, CollectionSpec)]


def collection_specs() -> Mapping[str, CollectionSpec]:
    """Every known collection: the ``itops_aws_collections`` answers of the plugins (built-ins first)."""
    return plugins.aws_collections()


@dataclass
class _Unit:
    spec: CollectionSpec
    region: str
    resources: list[CloudResource] = field(default_factory=list)
    calls: set[str] = field(default_factory=set)
    error: str = ""


def collect(
    clients: ClientPool,
    identity: Identity,
    regions: Sequence[str],
    names: Iterable[str],
    *,
    concurrency: int,
    stop: threading.Event | None = None,
) -> dict[str, CollectionResult]:
    """Make each named collection once (per region for regional ones), in parallel.

    Unknown names come back as a collection with an error, so the checks that asked
    for them end in ERROR instead of crashing the account.
    """
    specs = collection_specs()
    regions = tuple(regions)
    wanted = sorted(set(names))
    units = [
        _Unit(specs[n], r) for n in wanted if n in specs for r in ((GLOBAL,) if specs[n].scope == "global" else regions)
    ]

    def run(unit: _Unit) -> None:
        if stop is not None and stop.is_set():
            unit.error = "could not assess: run interrupted before this collection was made"
            return
        ctx = CallContext(clients, identity, unit.region, regions)
        try:
            unit.resources = unit.spec.collect(ctx)
        except ApiFailure as exc:
            unit.error = str(exc)
        except Exception as exc:  # a collector bug must not take down the account
            log.debug("collection %s in %s raised", unit.spec.name, unit.region, exc_info=True)
            unit.error = (
                f"could not assess: collecting {unit.spec.name} raised {type(exc).__name__}: {one_line(str(exc))}"
            )
        unit.calls = ctx.calls

    with ThreadPoolExecutor(
        max_workers=max(1, min(concurrency, len(units) or 1)), thread_name_prefix="itops-aws"
    ) as pool:
        list(pool.map(run, units))
    out: dict[str, CollectionResult] = {}
    for name in wanted:
        mine = [u for u in units if u.spec.name == name]
        if not mine:
            out[name] = CollectionResult(name, errors={GLOBAL: f"could not assess: unknown collection {name!r}"})
            continue
        out[name] = CollectionResult(
            name=name,
            resources=tuple(r for u in mine for r in u.resources),
            regions=tuple(u.region for u in mine),
            calls=tuple(sorted({c for u in mine for c in u.calls})),
            errors={u.region: u.error for u in mine if u.error},
        )
    return out
