"""Built-in AWS collections (:mod:`itops.transport.aws_collections`)."""

from __future__ import annotations

from itops.hookspecs import hookimpl
from itops.transport import aws_collections
from itops.transport.aws import CollectionSpec, specs_in


@hookimpl
def itops_aws_collections() -> list[CollectionSpec]:
    return specs_in(aws_collections)
