"""Users and access keys, stored on the backend so every gateway and the admin CLI share them.

``iam.users`` maps uid -> user record (display name, email, access key ids);
``iam.keys`` maps access key id -> {uid, secret}. SigV4 needs the secret
itself (it is an HMAC key), so it is stored as-is in the backend, like RGW
does; it is never logged. A key is created in ``iam.keys`` before the user
record names it, so a crash never leaves a user pointing at a missing key.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import string
from dataclasses import asdict, dataclass, field

from engine import layout
from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import AccessKeyExists, NoSuchUser, UserExists
from storage import ObjectExists, ObjectNotFound, Pool, WriteOp

ADMIN_UID = "admin"
_KEY_ALPHABET = string.ascii_uppercase + string.digits
# A looked-up secret is reused for this long; deleted keys stop working within it.
KEY_CACHE_SECONDS = 5.0


@dataclass(slots=True)
class User:
    uid: str
    display_name: str
    email: str = ""
    access_keys: list[str] = field(default_factory=list)
    created: float = 0.0

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> User:
        return cls(**json.loads(raw))


@dataclass(frozen=True, slots=True)
class AccessKey:
    access_key: str
    secret: str
    uid: str


def generate_access_key() -> str:
    return "AK" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(18))


def generate_secret() -> str:
    return secrets.token_urlsafe(30)[:40]


class IdentityStore:
    def __init__(self, meta: Pool, clock: Clock = SYSTEM_CLOCK) -> None:
        self.meta = meta
        self.clock = clock
        self._key_cache: dict[str, tuple[float, AccessKey | None]] = {}
        self._name_cache: dict[str, tuple[float, str]] = {}

    async def create_user(
        self,
        uid: str,
        display_name: str,
        email: str = "",
        access_key: str | None = None,
        secret: str | None = None,
    ) -> tuple[User, AccessKey]:
        if not await self._claim(f"iam.user.{uid}"):
            raise UserExists(f"user {uid!r} already exists")
        user = User(uid, display_name, email, [], self.clock.time())
        try:
            key = await self._add_key_record(uid, access_key, secret)
        except BaseException:
            await self._unclaim(f"iam.user.{uid}")
            raise
        user.access_keys.append(key.access_key)
        await self.meta.omap_set(layout.USERS_OBJECT, {uid: user.encode()})
        return user, key

    async def get_user(self, uid: str) -> User:
        user = await self._get_user(uid)
        if user is None:
            raise NoSuchUser(f"no user {uid!r}")
        return user

    async def list_users(self) -> list[User]:
        out: list[User] = []
        after = ""
        while True:
            try:
                page = await self.meta.omap_list(layout.USERS_OBJECT, start_after=after)
            except ObjectNotFound:
                return out
            if not page:
                return out
            out.extend(User.decode(v) for _, v in page)
            after = page[-1][0]

    async def delete_user(self, uid: str) -> None:
        user = await self.get_user(uid)
        await self.meta.omap_rm(layout.USERS_OBJECT, [uid])
        await self.meta.omap_rm(layout.KEYS_OBJECT, user.access_keys)
        for key_id in user.access_keys:
            await self._unclaim(f"iam.key.{key_id}")
        await self._unclaim(f"iam.user.{uid}")
        self._key_cache.clear()

    async def add_key(
        self, uid: str, access_key: str | None = None, secret: str | None = None
    ) -> AccessKey:
        user = await self.get_user(uid)
        key = await self._add_key_record(uid, access_key, secret)
        user.access_keys.append(key.access_key)
        await self.meta.omap_set(layout.USERS_OBJECT, {uid: user.encode()})
        return key

    async def remove_key(self, uid: str, access_key: str) -> None:
        user = await self.get_user(uid)
        if access_key not in user.access_keys:
            raise NoSuchUser(f"user {uid!r} has no key {access_key!r}")
        user.access_keys.remove(access_key)
        await self.meta.omap_set(layout.USERS_OBJECT, {uid: user.encode()})
        await self.meta.omap_rm(layout.KEYS_OBJECT, [access_key])
        await self._unclaim(f"iam.key.{access_key}")
        self._key_cache.pop(access_key, None)

    async def keys_of(self, uid: str) -> list[AccessKey]:
        user = await self.get_user(uid)
        found = await self.meta.omap_get(layout.KEYS_OBJECT, user.access_keys)
        return [_decode_key(k, v) for k, v in found.items()]

    async def lookup_key(self, access_key: str) -> AccessKey | None:
        """The key's record, from a short-lived cache (the hot path of every request)."""
        now = self.clock.monotonic()
        hit = self._key_cache.get(access_key)
        if hit is not None and now - hit[0] < KEY_CACHE_SECONDS:
            return hit[1]
        try:
            found = await self.meta.omap_get(layout.KEYS_OBJECT, [access_key])
        except ObjectNotFound:
            found = {}
        key = _decode_key(access_key, found[access_key]) if access_key in found else None
        if len(self._key_cache) > 10_000:
            self._key_cache.clear()
        self._key_cache[access_key] = (now, key)
        return key

    async def display_name(self, uid: str) -> str:
        """The user's display name (the uid for an unknown user), from a short-lived cache."""
        now = self.clock.monotonic()
        hit = self._name_cache.get(uid)
        if hit is not None and now - hit[0] < KEY_CACHE_SECONDS:
            return hit[1]
        user = await self._get_user(uid)
        name = user.display_name if user is not None and user.display_name else uid
        if len(self._name_cache) > 10_000:
            self._name_cache.clear()
        self._name_cache[uid] = (now, name)
        return name

    async def ensure_admin(self) -> AccessKey | None:
        """Create the admin user on first start; return its key only when just created."""
        if await self._get_user(ADMIN_UID) is not None:
            return None
        try:
            _, key = await self.create_user(ADMIN_UID, "Administrator")
        except UserExists:  # another process won the race
            return None
        return key

    async def _claim(self, oid: str) -> bool:
        try:
            await self.meta.operate(oid, WriteOp().create(exclusive=True).write_full(b""))
        except ObjectExists:
            return False
        return True

    async def _unclaim(self, oid: str) -> None:
        with contextlib.suppress(ObjectNotFound):
            await self.meta.remove(oid)

    async def _get_user(self, uid: str) -> User | None:
        try:
            found = await self.meta.omap_get(layout.USERS_OBJECT, [uid])
        except ObjectNotFound:
            return None
        return User.decode(found[uid]) if uid in found else None

    async def _add_key_record(self, uid: str, access_key: str | None, secret: str | None):
        key = AccessKey(access_key or generate_access_key(), secret or generate_secret(), uid)
        value = json.dumps({"uid": uid, "secret": key.secret}).encode()
        # Claim the key id with an exclusive create so two admins cannot both take it.
        if not await self._claim(f"iam.key.{key.access_key}"):
            raise AccessKeyExists(f"access key {key.access_key!r} already exists")
        await self.meta.omap_set(layout.KEYS_OBJECT, {key.access_key: value})
        return key


def _decode_key(access_key: str, raw: bytes) -> AccessKey:
    doc = json.loads(raw)
    return AccessKey(access_key, doc["secret"], doc["uid"])
