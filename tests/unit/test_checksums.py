"""s3api.checksums: known vectors, botocore's own implementations, request parsing, verification."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import pytest
from botocore import httpchecksum
from multidict import CIMultiDict

from s3api import checksums as c
from s3api.errors import S3Error, S3ErrorCode

CHECK = b"123456789"  # the standard CRC check input

# Published check values ("check" in the CRC catalogue) and hash test vectors.
KNOWN = {
    "CRC32": 0xCBF43926.to_bytes(4, "big"),
    "CRC32C": 0xE3069283.to_bytes(4, "big"),
    "CRC64NVME": 0xAE8B14860A799888.to_bytes(8, "big"),
    "SHA1": hashlib.sha1(CHECK).digest(),
    "SHA256": hashlib.sha256(CHECK).digest(),
    "SHA512": hashlib.sha512(CHECK).digest(),
    "MD5": hashlib.md5(CHECK).digest(),
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("algorithm", sorted(KNOWN))
def test_known_vectors(algorithm):
    assert c.compute(algorithm, CHECK) == b64(KNOWN[algorithm])


def test_empty_input_vectors():
    assert c.compute("CRC32", b"") == "AAAAAA=="
    assert c.compute("CRC32C", b"") == "AAAAAA=="
    assert c.compute("CRC64NVME", b"") == "AAAAAAAAAAA="
    assert c.compute("SHA256", b"") == b64(hashlib.sha256(b"").digest())


# botocore implements every algorithm but MD5; MD5 is covered by the known vectors.
_BOTOCORE_ALGORITHMS = [a for a in c.ALGORITHMS if a.lower() in httpchecksum._CHECKSUM_CLS]


def test_botocore_covers_the_sdk_algorithms():
    assert {"CRC32", "CRC32C", "SHA1", "SHA256"} <= set(_BOTOCORE_ALGORITHMS)


@pytest.mark.parametrize("algorithm", _BOTOCORE_ALGORITHMS)
@pytest.mark.parametrize("size", [0, 1, 7, 4096, 100_003])
def test_matches_botocore(algorithm, size):
    """botocore's own checksum classes (CRT-backed where it uses the CRT) agree."""
    cls = httpchecksum._CHECKSUM_CLS[algorithm.lower()]
    data = os.urandom(size)
    assert c.compute(algorithm, data) == cls().handle(data)


@pytest.mark.parametrize("algorithm", c.ALGORITHMS)
def test_incremental_equals_one_shot(algorithm):
    data = os.urandom(300_001)
    hasher = c.new_hasher(algorithm)
    for start in range(0, len(data), 65_537):
        hasher.update(data[start : start + 65_537])
    assert c.encode(hasher.digest()) == c.compute(algorithm, data)


def test_names():
    assert c.header_name("CRC64NVME") == "x-amz-checksum-crc64nvme"
    assert c.element_name("SHA256") == "ChecksumSHA256"
    assert c.parse_algorithm("crc32c") == "CRC32C"
    with pytest.raises(S3Error) as info:
        c.parse_algorithm("ADLER32")
    assert info.value.code is S3ErrorCode.InvalidRequest


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_combine_full_object(algorithm):
    parts = [os.urandom(n) for n in (5 * 1024 * 1024, 17, 0, 1000)]
    combined = c.combine_full_object(algorithm, [(c.compute(algorithm, p), len(p)) for p in parts])
    assert combined == c.compute(algorithm, b"".join(parts))
    assert c.checksum_type(combined) == c.FULL_OBJECT


def test_combine_refuses_hashes():
    assert not c.supports_full_object_multipart("SHA256")
    with pytest.raises(ValueError):
        c.combine_full_object("SHA256", [("AAAA", 1)])


def test_composite():
    parts = [b"a" * 10, b"b" * 20]
    values = [c.compute("SHA256", p) for p in parts]
    expected = b64(hashlib.sha256(b"".join(base64.b64decode(v) for v in values)).digest()) + "-2"
    assert c.composite("SHA256", values) == expected
    assert c.checksum_type(expected) == c.COMPOSITE
    crc = c.composite("CRC32", [c.compute("CRC32", p) for p in parts])
    assert crc.endswith("-2") and c.checksum_type(crc) == c.COMPOSITE


def test_decode_value():
    value = c.compute("CRC32", CHECK)
    assert c.decode_value("CRC32", value) == KNOWN["CRC32"]
    assert c.decode_value("CRC32", "not base64!") is None
    assert c.decode_value("CRC64NVME", value) is None  # wrong length
    assert c.decode_value("CRC32", value.rstrip("=")) is None  # not canonical


# -- request parsing ------------------------------------------------------------


def parse(**headers):
    return c.parse_request(CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()}))


def error_of(fn, *args, **kwargs) -> S3Error:
    with pytest.raises(S3Error) as info:
        fn(*args, **kwargs)
    return info.value


def test_parse_nothing():
    assert parse() is None


def test_parse_header_value():
    value = c.compute("CRC32", CHECK)
    got = parse(x_amz_checksum_crc32=value, x_amz_sdk_checksum_algorithm="CRC32")
    assert got == c.ChecksumRequest("CRC32", value)


def test_parse_trailer():
    got = parse(x_amz_trailer="x-amz-checksum-crc64nvme", x_amz_sdk_checksum_algorithm="crc64nvme")
    assert got == c.ChecksumRequest("CRC64NVME", trailer=True)


def test_parse_errors():
    crc = c.compute("CRC32", CHECK)
    sha = c.compute("SHA256", CHECK)
    two = error_of(parse, x_amz_checksum_crc32=crc, x_amz_checksum_sha256=sha)
    assert two.code is S3ErrorCode.InvalidRequest
    assert two.message.startswith("Expecting a single x-amz-checksum- header")
    bad = error_of(parse, x_amz_checksum_crc32="abc")
    assert bad.code is S3ErrorCode.BadDigest  # as RGW (AWS: InvalidRequest)
    assert bad.message == "Value for x-amz-checksum-crc32 header is invalid."
    lonely = error_of(parse, x_amz_sdk_checksum_algorithm="CRC32")
    assert lonely.message.startswith("x-amz-sdk-checksum-algorithm specified, but no")
    unknown = error_of(parse, x_amz_sdk_checksum_algorithm="FOO", x_amz_checksum_crc32=crc)
    assert unknown.message.startswith("Checksum algorithm provided is unsupported")
    contradict = error_of(parse, x_amz_sdk_checksum_algorithm="SHA256", x_amz_checksum_crc32=crc)
    assert contradict.message == "Value for x-amz-sdk-checksum-algorithm header is invalid."


# -- verification -----------------------------------------------------------------


def feed(verifier: c.ChecksumVerifier, data: bytes) -> None:
    for start in range(0, len(data), 1000):
        verifier.update(data[start : start + 1000])


def test_verifier_header_match_and_mismatch():
    data = os.urandom(5000)
    good = c.ChecksumVerifier(c.ChecksumRequest("CRC32C", c.compute("CRC32C", data)))
    feed(good, data)
    assert good.finish() == {"CRC32C": c.compute("CRC32C", data)}
    bad = c.ChecksumVerifier(c.ChecksumRequest("CRC32C", c.compute("CRC32C", b"other")))
    feed(bad, data)
    err = error_of(bad.finish)
    assert err.code is S3ErrorCode.BadDigest
    assert err.message == "The CRC32C you specified did not match the calculated checksum."
    assert bad.results == {}


def test_verifier_trailer():
    data = os.urandom(5000)
    value = c.compute("SHA1", data)
    verifier = c.ChecksumVerifier(c.ChecksumRequest("SHA1", trailer=True))
    feed(verifier, data)
    assert verifier.finish({"x-amz-checksum-sha1": value}) == {"SHA1": value}
    missing = c.ChecksumVerifier(c.ChecksumRequest("SHA1", trailer=True))
    assert error_of(missing.finish, {}).code is S3ErrorCode.InvalidRequest
    wrong = c.ChecksumVerifier(c.ChecksumRequest("SHA1", trailer=True))
    feed(wrong, data)
    other = c.compute("SHA1", b"x")
    assert error_of(wrong.finish, {"x-amz-checksum-sha1": other}).code is S3ErrorCode.BadDigest


def test_verifier_default_and_none():
    data = b"hello"
    default = c.ChecksumVerifier(None, default=c.DEFAULT_ALGORITHM)
    feed(default, data)
    assert default.finish() == {"CRC64NVME": c.compute("CRC64NVME", data)}
    idle = c.ChecksumVerifier(None)
    assert not idle.active and idle.finish() == {}


def test_crc32_is_zlib():
    data = os.urandom(1000)
    assert c.compute("CRC32", data) == b64(zlib.crc32(data).to_bytes(4, "big"))
