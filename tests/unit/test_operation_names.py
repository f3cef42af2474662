"""Operations are one enumeration: routing yields its members, handlers are keyed by them.

A misspelled member fails at import (AttributeError); a misspelled value is
a member no request can reach, which the reachability test below catches.
"""

from __future__ import annotations

import itertools

from engine import Operation, Permission
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers import HANDLERS
from s3api.routing import SUBRESOURCES, S3Target, route

METHODS = ("GET", "PUT", "DELETE", "HEAD", "POST", "OPTIONS")
HEADER_VARIANTS = ({}, {"x-amz-copy-source": "/b/k"})


def _reachable() -> set[Operation]:
    seen: set[Operation] = set()
    targets = (S3Target(None, None), S3Target("b", None), S3Target("b", "k"))
    queries = [{}, {"list-type": "2"}] + [{sub: ""} for sub in SUBRESOURCES]
    for method, target, query, headers in itertools.product(
        METHODS, targets, queries, HEADER_VARIANTS
    ):
        try:
            seen.add(route(method, target, query, headers).name)
        except S3Error as exc:
            assert exc.code in (S3ErrorCode.NotImplemented, S3ErrorCode.MethodNotAllowed)
    return seen


def test_every_operation_is_reachable_by_some_request():
    assert _reachable() == {op for op in Operation if op.from_requests}
    assert not Operation.TRANSITION_OBJECT.from_requests  # the tiering mover's, no route


def test_routing_yields_members_and_handlers_are_keyed_by_them():
    assert all(isinstance(name, Operation) for name in HANDLERS)
    assert Operation.UNKNOWN not in HANDLERS
    assert route("PUT", S3Target("b", "k"), {}, {"x-amz-copy-source": "/a/b"}).name is (
        Operation.COPY_OBJECT
    )


def test_a_method_and_sub_resource_naming_no_operation_is_unknown():
    """Answered NotImplemented by the dispatcher, after authentication, under its name."""
    endpoint = route("HEAD", S3Target("b", None), {"cors": ""}, {})
    assert endpoint.name is Operation.UNKNOWN and endpoint.label == "HeadBucketCors"
    assert Operation.UNKNOWN not in HANDLERS


def test_permissions_of_operations():
    assert Operation.GET_OBJECT.needs is Permission.OBJECT_READ
    assert Operation.LIST_OBJECTS_V2.needs is Permission.BUCKET_READ
    assert Operation.UPLOAD_PART_COPY.needs is Permission.BUCKET_WRITE
    assert Operation.PUT_BUCKET_POLICY.needs is Permission.OWNER
    assert Operation.OPTIONS_OBJECT.is_preflight and Operation.OPTIONS_OBJECT.needs.name == "ANYONE"
    assert {op for op in Operation if op.needs.on_object} == {
        Operation.GET_OBJECT, Operation.HEAD_OBJECT, Operation.GET_OBJECT_ACL,
        Operation.PUT_OBJECT_ACL,
    }
