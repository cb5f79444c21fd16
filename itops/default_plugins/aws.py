"""Built-in AWS collections (:mod:`itops.transport.aws_collections`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from itops.hookspecs import hookimpl

if TYPE_CHECKING:
    from itops.transport.aws import CollectionSpec


@hookimpl
def itops_aws_collections() -> list[CollectionSpec]:
    # imported when the table is first needed: the AWS transport brings boto3, which `itops checks list`
    # and every other command that does not talk to AWS must not load (start-up time)
    from itops.transport import aws_collections
    from itops.transport.aws import specs_in

    return specs_in(aws_collections)
