"""MFA devices (TOTP, RFC 6238) and the check behind S3's MFA delete.

A user may have TOTP devices, each a serial and a secret seed, created by
the admin CLI the way ``radosgw-admin mfa create`` does for RGW. A request
proves possession with the ``x-amz-mfa: <serial> <code>`` header. A code is
accepted for the current 30-second step or the one before or after (clock
drift), and only once: the device remembers the last step it accepted, and
the write that advances it is guarded on the value read, so two requests
racing with one code cannot both pass.

``totp_code`` and ``match_step`` are pure; ``MfaDevices`` stores devices in
the meta pool (``iam.mfa``: omap ``<uid>/<serial>`` -> JSON).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import struct

from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import AccessDenied, NoSuchUser
from storage import GuardFailed, ObjectNotFound, Pool, WriteOp

MFA_OBJECT = "iam.mfa"
STEP_S = 30
DIGITS = 6
WINDOW = 1  # steps either side of now
_SERIAL = re.compile(r"^[A-Za-z0-9+=,.@:/_-]{1,256}$")


def totp_code(seed: bytes, step: int, digits: int = DIGITS) -> str:
    """The HOTP value (RFC 4226, HMAC-SHA1) of ``seed`` at counter ``step``."""
    mac = hmac.new(seed, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def match_step(seed: bytes, code: str, now: float, last_used: int) -> int | None:
    """The step ``code`` is valid for near ``now`` and newer than ``last_used`` (None: none)."""
    if not re.fullmatch(r"\d{6}", code):
        return None
    current = int(now // STEP_S)
    for step in range(current - WINDOW, current + WINDOW + 1):
        if step > last_used and hmac.compare_digest(totp_code(seed, step), code):
            return step
    return None


def parse_mfa_header(value: str) -> tuple[str, str]:
    """(serial, code) of an ``x-amz-mfa`` header; AccessDenied if it is not one."""
    parts = value.strip().split()
    if len(parts) != 2 or not _SERIAL.match(parts[0]):
        raise AccessDenied("The x-amz-mfa header is malformed: expected 'SERIAL CODE'")
    return parts[0], parts[1]


def decode_seed(text: str) -> bytes:
    try:
        seed = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise ValueError("an MFA seed is base32 (RFC 4648)") from None
    if len(seed) < 10:
        raise ValueError("an MFA seed has at least 80 bits")
    return seed


class MfaDevices:
    def __init__(self, meta: Pool, clock: Clock = SYSTEM_CLOCK) -> None:
        self.meta = meta
        self.clock = clock

    async def create(self, uid: str, serial: str, seed: str | None = None) -> str:
        """Register a device for ``uid``; its base32 seed (generated unless given)."""
        if not _SERIAL.match(serial):
            raise ValueError(f"an MFA serial is 1-256 of A-Z a-z 0-9 +=,.@:/_- : {serial!r}")
        seed = seed or base64.b32encode(secrets.token_bytes(20)).decode()
        decode_seed(seed)
        if serial in await self.serials(uid):  # re-creating would reset its used codes
            raise ValueError(f"user {uid!r} already has an MFA device {serial!r}")
        doc = json.dumps({"seed": seed, "last": 0, "created": self.clock.time()})
        op = WriteOp().omap_set({_key(uid, serial): doc.encode()})
        await self.meta.operate(MFA_OBJECT, op)
        return seed

    async def serials(self, uid: str) -> list[str]:
        try:
            page = await self.meta.omap_list(MFA_OBJECT, prefix=f"{uid}/", max_items=1000)
        except ObjectNotFound:
            return []
        return [k.split("/", 1)[1] for k, _ in page]

    async def remove(self, uid: str, serial: str) -> None:
        if serial not in await self.serials(uid):
            raise NoSuchUser(f"user {uid!r} has no MFA device {serial!r}")
        await self.meta.operate(MFA_OBJECT, WriteOp().omap_rm([_key(uid, serial)]))

    async def check(self, uid: str, header: str | None) -> None:
        """Accept ``header`` as proof from one of ``uid``'s devices, once; AccessDenied if not."""
        if not header:
            raise AccessDenied("Mfa Authentication must be used for this request")
        serial, code = parse_mfa_header(header)
        key = _key(uid, serial)
        for _ in range(4):  # a lost race with another request re-reads and tries again
            try:
                raw = (await self.meta.omap_get(MFA_OBJECT, [key])).get(key)
            except ObjectNotFound:
                raw = None
            if raw is None:
                raise AccessDenied("The MFA serial is not a device of the bucket owner")
            doc = json.loads(raw)
            step = match_step(decode_seed(doc["seed"]), code, self.clock.time(), doc["last"])
            if step is None:
                raise AccessDenied("The MFA code is invalid or was used already")
            new = json.dumps({**doc, "last": step}).encode()
            op = WriteOp().omap_cmp(key, raw).omap_set({key: new})
            try:
                await self.meta.operate(MFA_OBJECT, op)
            except GuardFailed:
                continue
            return
        raise AccessDenied("The MFA code is invalid or was used already")


def _key(uid: str, serial: str) -> str:
    return f"{uid}/{serial}"
