"""S3 additional checksums (pure): the ``x-amz-checksum-*`` family.

Values are the base64 of the big-endian digest, as AWS and its SDKs encode
them. The API, for objects and for multipart parts alike:

- ``new_hasher(algorithm)``: incremental ``update(bytes)`` / ``digest()``;
  ``compute(algorithm, data)`` for a whole buffer (base64).
- ``parse_request(headers)``: what a request announced (a value in a header,
  a value to come in the aws-chunked trailer, or only an algorithm);
  ``ChecksumVerifier`` checks the body against it (BadDigest on mismatch).
- ``composite(algorithm, part_values)``: a multipart object's COMPOSITE
  checksum (digest of the part digests, ``-N``);
  ``combine_full_object(algorithm, parts)``: its FULL_OBJECT CRC, combined
  from the parts' CRCs and lengths without re-reading data.
- ``checksum_type(value)``: COMPOSITE when the value carries ``-N``.

CRC32C, CRC64NVME and the XXHASH family come from awscrt (the library
botocore itself uses for them); CRC32 from zlib; the SHA/MD5 family from
hashlib.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from awscrt import checksums as crt

from s3api.errors import S3Error, S3ErrorCode

CRC32, CRC32C, CRC64NVME = "CRC32", "CRC32C", "CRC64NVME"
ALGORITHMS: tuple[str, ...] = (
    CRC32,
    CRC32C,
    CRC64NVME,
    "SHA1",
    "SHA256",
    "SHA512",
    "MD5",
    "XXHASH64",
    "XXHASH3",
    "XXHASH128",
)
# S3 stores this one for every new object that arrives without a checksum.
DEFAULT_ALGORITHM = CRC64NVME
FULL_OBJECT, COMPOSITE = "FULL_OBJECT", "COMPOSITE"
HEADER_PREFIX = "x-amz-checksum-"
SDK_ALGORITHM_HEADER = "x-amz-sdk-checksum-algorithm"
MODE_HEADER = "x-amz-checksum-mode"
TYPE_HEADER = "x-amz-checksum-type"

_COMPOSITE_SUFFIX = re.compile(r"-\d+$")


class Hasher(Protocol):
    def update(self, data: bytes) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    """A CRC kept as an int, fed through a ``fn(data, previous) -> int`` function."""

    def __init__(self, fn: Callable[[bytes, int], int], size: int) -> None:
        self._fn = fn
        self._size = size
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = self._fn(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._size, "big")


class _XXHash:
    def __init__(self, factory: Callable[[], crt.XXHash]) -> None:
        self._state = factory()

    def update(self, data: bytes) -> None:
        self._state.update(data)

    def digest(self) -> bytes:
        return self._state.finalize()


_FACTORIES: dict[str, Callable[[], Hasher]] = {
    CRC32: lambda: _Crc(zlib.crc32, 4),
    CRC32C: lambda: _Crc(crt.crc32c, 4),
    CRC64NVME: lambda: _Crc(crt.crc64nvme, 8),
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
    "MD5": hashlib.md5,
    "XXHASH64": lambda: _XXHash(crt.XXHash.new_xxhash64),
    "XXHASH3": lambda: _XXHash(crt.XXHash.new_xxhash3_64),
    "XXHASH128": lambda: _XXHash(crt.XXHash.new_xxhash3_128),
}
_DIGEST_SIZES = {
    CRC32: 4,
    CRC32C: 4,
    CRC64NVME: 8,
    "SHA1": 20,
    "SHA256": 32,
    "SHA512": 64,
    "MD5": 16,
    "XXHASH64": 8,
    "XXHASH3": 8,
    "XXHASH128": 16,
}
_COMBINERS: dict[str, Callable[[int, int, int], int]] = {
    CRC32: crt.combine_crc32,
    CRC32C: crt.combine_crc32c,
    CRC64NVME: crt.combine_crc64nvme,
}
# Algorithms cheap enough to run on the event loop for any piece size.
FAST_ALGORITHMS = frozenset({CRC32, CRC32C, CRC64NVME, "XXHASH64", "XXHASH3", "XXHASH128"})


def new_hasher(algorithm: str) -> Hasher:
    return _FACTORIES[algorithm]()


def encode(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def compute(algorithm: str, data: bytes) -> str:
    """The base64 checksum of ``data``."""
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return encode(hasher.digest())


def header_name(algorithm: str) -> str:
    """``x-amz-checksum-crc32`` for CRC32."""
    return HEADER_PREFIX + algorithm.lower()


def element_name(algorithm: str) -> str:
    """``ChecksumCRC32`` for CRC32: the XML element of the value."""
    return "Checksum" + algorithm


def supports_full_object_multipart(algorithm: str) -> bool:
    """Whether a multipart object can carry a FULL_OBJECT checksum of this algorithm."""
    return algorithm in _COMBINERS


def checksum_type(value: str) -> str:
    """FULL_OBJECT, or COMPOSITE for a multipart value that ends in ``-N``."""
    return COMPOSITE if _COMPOSITE_SUFFIX.search(value) else FULL_OBJECT


def decode_value(algorithm: str, value: str) -> bytes | None:
    """The digest a base64 value holds, or None if it is not a valid value for algorithm."""
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(digest) != _DIGEST_SIZES[algorithm] or encode(digest) != value:
        return None
    return digest


def parse_algorithm(value: str, header: str = "x-amz-checksum-algorithm") -> str:
    """An algorithm name from a header (any case); InvalidRequest if S3 has no such one."""
    algorithm = value.strip().upper()
    if algorithm not in _FACTORIES:
        raise S3Error(
            S3ErrorCode.InvalidRequest,
            "Checksum algorithm provided is unsupported. Please try again with any of the "
            f"valid types: [{', '.join(ALGORITHMS)}]",
            ArgumentName=header,
            ArgumentValue=value,
        )
    return algorithm


def composite(algorithm: str, part_values: Iterable[str]) -> str:
    """COMPOSITE checksum of a multipart object: digest of the part digests, then ``-N``."""
    hasher = new_hasher(algorithm)
    count = 0
    for value in part_values:
        hasher.update(base64.b64decode(value))
        count += 1
    return f"{encode(hasher.digest())}-{count}"


def combine_full_object(algorithm: str, parts: Iterable[tuple[str, int]]) -> str:
    """FULL_OBJECT CRC of concatenated parts from (part value, part length) pairs."""
    combine = _COMBINERS.get(algorithm)
    if combine is None:
        raise ValueError(f"{algorithm} cannot be combined into a full-object checksum")
    total = 0
    for value, length in parts:
        total = combine(total, int.from_bytes(base64.b64decode(value), "big"), length)
    return encode(total.to_bytes(_DIGEST_SIZES[algorithm], "big"))


def mismatch(algorithm: str) -> S3Error:
    return S3Error(
        S3ErrorCode.BadDigest,
        f"The {algorithm} you specified did not match the calculated checksum.",
    )


# -- what a request announced -------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChecksumRequest:
    """The checksum a request announced for its body.

    ``value`` is set when it came in a header; ``trailer`` when it follows the
    aws-chunked body; with neither, only ``algorithm`` is known (S3 then
    computes and stores that algorithm).
    """

    algorithm: str
    value: str | None = None
    trailer: bool = False


def _invalid(message: str) -> S3Error:
    return S3Error(S3ErrorCode.InvalidRequest, message)


def _header_values(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    found = []
    for algorithm in ALGORITHMS:
        value = headers.get(header_name(algorithm))
        if value is not None:
            found.append((algorithm, value.strip()))
    return found


def _trailer_algorithms(trailer_names: Iterable[str]) -> list[str]:
    found = []
    for name in trailer_names:
        name = name.strip().lower()
        if name.startswith(HEADER_PREFIX):
            algorithm = name[len(HEADER_PREFIX) :].upper()
            if algorithm not in _FACTORIES:
                raise _invalid("The value specified in the x-amz-trailer header is not supported")
            found.append(algorithm)
    return found


def parse_request(headers: Mapping[str, str]) -> ChecksumRequest | None:
    """The checksum announced by ``x-amz-checksum-*``, ``x-amz-trailer`` and
    ``x-amz-sdk-checksum-algorithm`` (InvalidRequest when they contradict)."""
    values = _header_values(headers)
    trailer = headers.get("x-amz-trailer")
    trailed = _trailer_algorithms(trailer.split(",")) if trailer else []
    sdk = headers.get(SDK_ALGORITHM_HEADER)
    sdk_algorithm = parse_algorithm(sdk, SDK_ALGORITHM_HEADER) if sdk else None
    if len(values) + len(trailed) > 1:
        raise _invalid(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )
    if values:
        algorithm, value = values[0]
        if decode_value(algorithm, value) is None:
            # Not a digest at all, so it cannot match: BadDigest, as Ceph RGW answers
            # (AWS says InvalidRequest; both are 400).
            raise S3Error(
                S3ErrorCode.BadDigest, f"Value for {header_name(algorithm)} header is invalid."
            )
        found = ChecksumRequest(algorithm, value)
    elif trailed:
        found = ChecksumRequest(trailed[0], trailer=True)
    elif sdk_algorithm is not None:
        raise _invalid(
            "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* "
            "or x-amz-trailer headers were found."
        )
    else:
        return None
    if sdk_algorithm is not None and sdk_algorithm != found.algorithm:
        raise _invalid(f"Value for {SDK_ALGORITHM_HEADER} header is invalid.")
    return found


class ChecksumVerifier:
    """Hashes a body as it streams; ``finish`` checks it against what was announced.

    With nothing announced, ``default`` (if any) is computed instead: the
    checksum S3 stores for objects sent without one. ``results`` maps the
    algorithm to its base64 value once ``finish`` has passed.
    """

    def __init__(self, announced: ChecksumRequest | None, default: str | None = None) -> None:
        self.announced = announced
        self.algorithm = announced.algorithm if announced is not None else default
        self._hasher = new_hasher(self.algorithm) if self.algorithm else None
        self.results: dict[str, str] = {}

    @property
    def active(self) -> bool:
        return self._hasher is not None

    @property
    def fast(self) -> bool:
        """Cheap enough to run inline on the event loop for any piece size."""
        return self.algorithm in FAST_ALGORITHMS

    def update(self, data: bytes) -> None:
        if self._hasher is not None:
            self._hasher.update(data)

    def finish(self, trailers: Mapping[str, str] | None = None) -> dict[str, str]:
        """Compare with the announced value (from its header or the trailers)."""
        if self._hasher is None or self.algorithm is None:
            return self.results
        computed = encode(self._hasher.digest())
        announced = self.announced
        if announced is not None:
            expected = announced.value
            if announced.trailer:
                name = header_name(announced.algorithm)
                expected = (trailers or {}).get(name)
                if expected is None or decode_value(announced.algorithm, expected) is None:
                    raise _invalid(f"Value for {name} trailing header is invalid.")
            if computed != expected:
                raise mismatch(announced.algorithm)
        self.results = {self.algorithm: computed}
        return self.results
