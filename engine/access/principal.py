"""Who calls the engine: a user, an anonymous caller, or one of the gateway's own services.

Every engine entry point that reads or writes takes a ``Principal`` as its
first argument; none of them learns the caller from ambient state. Front
ends make one per request: the S3 front end from the verified signature (or
``anonymous()``), an NFS front end from the client's mapped user, the admin
CLI and background runners (tiering mover, replication shipper, backup
runner) as a ``service`` with a name of its own, so audit records and later
policies can tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class PrincipalKind(Enum):
    USER = "user"
    ANONYMOUS = "anonymous"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    name: str | None  # a user's uid, a service's name; None when anonymous
    via: str = "s3"  # the front end or tool that carried the call (s3, nfs, cli, ...)

    @classmethod
    def user(cls, uid: str, via: str = "s3") -> Principal:
        if not uid:
            raise ValueError("a user principal needs a uid")
        return cls(PrincipalKind.USER, uid, via)

    @classmethod
    def anonymous(cls, via: str = "s3") -> Principal:
        return cls(PrincipalKind.ANONYMOUS, None, via)

    @classmethod
    def service(cls, name: str) -> Principal:
        """One of the gateway's own runners or admin tools, acting for the deployment."""
        if not name:
            raise ValueError("a service principal needs a name")
        return cls(PrincipalKind.SERVICE, name, "service")

    @property
    def uid(self) -> str | None:
        """The user this principal is, for ownership and ACL grants (None otherwise)."""
        return self.name if self.kind is PrincipalKind.USER else None

    @property
    def is_service(self) -> bool:
        return self.kind is PrincipalKind.SERVICE

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.name or '-'}"


def require_principal(principal: object) -> Principal:
    """The principal of an engine call; anything else (None, a bare uid) is refused."""
    if not isinstance(principal, Principal):
        raise TypeError(f"engine calls take a Principal, not {type(principal).__name__}")
    return principal
