"""aws-chunked decoding: AWS's published examples, botocore's encoder, and broken streams."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import zlib
from datetime import UTC, datetime

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3api.chunked import MAX_LINE, ChunkedDecoder
from s3api.errors import S3Error, S3ErrorCode
from s3api.sigv4 import HttpRequestView, PayloadMode, verify_request

AK = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NOW = datetime(2013, 5, 24, tzinfo=UTC)
AMZ_DATE = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
EMPTY = hashlib.sha256(b"").hexdigest()

# AWS documentation, "Signature Calculations for the Authorization Header: Transferring
# Payload in Multiple Chunks": 66560 bytes of 'a' in a 64 KiB and a 1 KiB chunk.
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
# ... and "Including Trailing Headers (Chunked Upload)": same chunks, CRC32C trailer.
TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
TRAILER_CHUNK_SIGNATURES = (
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
)
TRAILER_SIGNATURE = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
PAYLOAD = b"a" * 66560


def lookup(access_key: str) -> str | None:
    return SECRET if access_key == AK else None


def aws_example_request(trailer: bool):
    headers = {
        "Host": "s3.amazonaws.com",
        "x-amz-date": AMZ_DATE,
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
    }
    if trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32c"
        headers["x-amz-content-sha256"] = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
        signed = "content-encoding;host;x-amz-content-sha256;x-amz-date;"
        signed += "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer"
        seed = TRAILER_SEED
    else:
        headers["Content-Length"] = "66824"
        headers["x-amz-content-sha256"] = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
        signed = "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
        signed += "x-amz-decoded-content-length;x-amz-storage-class"
        seed = SEED
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={AK}/{SCOPE},SignedHeaders={signed},Signature={seed}"
    )
    view = HttpRequestView("PUT", "/examplebucket/chunkObject.txt", "", headers)
    return verify_request(view, lookup, NOW)


def aws_example_body(signatures=CHUNK_SIGNATURES, trailer: bytes = b"") -> bytes:
    return (
        f"10000;chunk-signature={signatures[0]}\r\n".encode()
        + b"a" * 65536
        + f"\r\n400;chunk-signature={signatures[1]}\r\n".encode()
        + b"a" * 1024
        + f"\r\n0;chunk-signature={signatures[2]}\r\n".encode()
        + trailer
        + b"\r\n"
    )


def decode(decoder: ChunkedDecoder, body: bytes, step: int | None = None) -> bytes:
    step = step or len(body) or 1
    out = bytearray()
    for start in range(0, len(body), step):
        for piece in decoder.feed(body[start : start + step]):
            out += piece
    decoder.close()
    assert decoder.finished
    assert decoder.decoded_length == len(out)
    return bytes(out)


def error_of(decoder: ChunkedDecoder, body: bytes, step: int | None = None) -> S3Error:
    with pytest.raises(S3Error) as info:
        decode(decoder, body, step)
    return info.value


# -- independent reference encoder (straight from the spec, not from s3api) --------------------


def _key() -> bytes:
    key = hmac.digest(b"AWS4" + SECRET.encode(), b"20130524", "sha256")
    for part in (b"us-east-1", b"s3", b"aws4_request"):
        key = hmac.digest(key, part, "sha256")
    return key


def _sign(text: str) -> str:
    return hmac.new(_key(), text.encode(), hashlib.sha256).hexdigest()


def encode(
    chunks: list[bytes],
    *,
    signed: bool,
    trailers: dict[str, str] | None = None,
    seed: str = "f" * 64,
) -> bytes:
    """aws-chunked body for ``chunks`` (a final empty chunk is added)."""
    out = bytearray()
    previous = seed
    for chunk in [*chunks, b""]:
        if signed:
            digest = hashlib.sha256(chunk).hexdigest()
            previous = _sign(
                f"AWS4-HMAC-SHA256-PAYLOAD\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{EMPTY}\n{digest}"
            )
            out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode()
        else:
            out += f"{len(chunk):x}\r\n".encode()
        if chunk:
            out += chunk + b"\r\n"
    if trailers is not None:
        canonical = "".join(f"{name}:{value}\n" for name, value in sorted(trailers.items()))
        out += canonical.replace("\n", "\r\n").encode()
        if signed:
            digest = hashlib.sha256(canonical.encode()).hexdigest()
            signature = _sign(
                f"AWS4-HMAC-SHA256-TRAILER\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{digest}"
            )
            out += f"x-amz-trailer-signature:{signature}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


def decoder(mode: PayloadMode, seed: str = "f" * 64, **options) -> ChunkedDecoder:
    return ChunkedDecoder(
        mode, signing_key=_key(), amz_date=AMZ_DATE, scope=SCOPE, seed_signature=seed, **options
    )


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# -- AWS's published examples --------------------------------------------------------------------


@pytest.mark.parametrize("step", [None, 1, 7, 100, 65536, 70000])
def test_aws_example_signed_chunks(step):
    auth = aws_example_request(trailer=False)
    assert auth.payload_mode is PayloadMode.STREAMING_SIGNED
    assert auth.seed_signature == SEED
    body = aws_example_body()
    assert len(body) == 66824  # the Content-Length of the documented request
    assert decode(ChunkedDecoder.for_auth(auth), body, step) == PAYLOAD


@pytest.mark.parametrize("step", [None, 1, 1000])
def test_aws_example_signed_chunks_with_trailer(step):
    auth = aws_example_request(trailer=True)
    assert auth.payload_mode is PayloadMode.STREAMING_SIGNED_TRAILER
    assert auth.trailer_names == ("x-amz-checksum-crc32c",)
    trailer = f"x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:{TRAILER_SIGNATURE}\r\n"
    body = aws_example_body(TRAILER_CHUNK_SIGNATURES, trailer.encode())
    chunked = ChunkedDecoder.for_auth(auth)
    assert decode(chunked, body, step) == PAYLOAD
    assert chunked.trailers == {"x-amz-checksum-crc32c": "sOO8/Q=="}


def test_aws_example_tolerated_variants():
    auth = aws_example_request(trailer=True)
    trailer = f"x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:{TRAILER_SIGNATURE}\r\n"
    # An empty line between the 0-chunk and the trailers, and no final empty line.
    body = aws_example_body(TRAILER_CHUNK_SIGNATURES, b"\r\n" + trailer.encode())[:-2]
    assert decode(ChunkedDecoder.for_auth(auth), body) == PAYLOAD
    # Non-trailer stream whose final empty line is missing.
    auth = aws_example_request(trailer=False)
    assert decode(ChunkedDecoder.for_auth(auth), aws_example_body()[:-2]) == PAYLOAD


def test_aws_example_tampering():
    auth = aws_example_request(trailer=False)
    body = bytearray(aws_example_body())
    body[1000] = ord("b")
    error = error_of(ChunkedDecoder.for_auth(auth), bytes(body))
    assert error.code is S3ErrorCode.SignatureDoesNotMatch
    swapped = (CHUNK_SIGNATURES[1], CHUNK_SIGNATURES[0], CHUNK_SIGNATURES[2])
    error = error_of(ChunkedDecoder.for_auth(auth), aws_example_body(swapped))
    assert error.code is S3ErrorCode.SignatureDoesNotMatch
    wrong_final = (*CHUNK_SIGNATURES[:2], "0" * 64)
    error = error_of(ChunkedDecoder.for_auth(auth), aws_example_body(wrong_final))
    assert error.code is S3ErrorCode.SignatureDoesNotMatch
    bad_trailer = ChunkedDecoder.for_auth(aws_example_request(trailer=True))
    trailer = f"x-amz-checksum-crc32c:AAAAAA==\r\nx-amz-trailer-signature:{TRAILER_SIGNATURE}\r\n"
    body = aws_example_body(TRAILER_CHUNK_SIGNATURES, trailer.encode())
    assert error_of(bad_trailer, body).code is S3ErrorCode.SignatureDoesNotMatch


def test_no_unverified_byte_is_released():
    auth = aws_example_request(trailer=False)
    body = bytearray(aws_example_body())
    body[66000] = ord("b")  # inside the second chunk
    chunked = ChunkedDecoder.for_auth(auth)
    released = chunked.feed(bytes(body[:66100]))
    assert b"".join(released) == b"a" * 65536
    with pytest.raises(S3Error):
        chunked.feed(bytes(body[66100:]))
    assert chunked.decoded_length == 65536


# -- botocore's own aws-chunked encoder (STREAMING-UNSIGNED-PAYLOAD-TRAILER) ----------------------


@pytest.mark.parametrize("size", [0, 1, 8192, 3 * 1024 * 1024 + 17])
def test_botocore_unsigned_trailer_body(size):
    data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    wrapper = AwsChunkedWrapper(
        io.BytesIO(data), checksum_cls=Crc32Checksum, checksum_name="x-amz-checksum-crc32"
    )
    body = wrapper.read()
    chunked = ChunkedDecoder(
        PayloadMode.STREAMING_UNSIGNED_TRAILER,
        decoded_length=size,
        declared_trailers=["x-amz-checksum-crc32"],
    )
    assert decode(chunked, body, 65536) == data
    assert chunked.trailers == {"x-amz-checksum-crc32": crc32_b64(data)}


def test_real_client_streaming_put_decodes():
    from tests.unit.sigv4_support import capture_client, server_view

    client, sent = capture_client("https://gateway.test")
    data = b"0123456789" * 5000
    client.put_object(Bucket="bucket", Key="k", Body=io.BytesIO(data))
    view, body = server_view(sent[-1])
    auth = verify_request(view, lookup, datetime.now(UTC))
    chunked = ChunkedDecoder.for_auth(auth)
    assert decode(chunked, body, 4096) == data
    assert chunked.trailers == {"x-amz-checksum-crc32": crc32_b64(data)}


# -- broken streams --------------------------------------------------------------------------------

SIGNED = PayloadMode.STREAMING_SIGNED
SIGNED_TRAILER = PayloadMode.STREAMING_SIGNED_TRAILER
UNSIGNED_TRAILER = PayloadMode.STREAMING_UNSIGNED_TRAILER
BIG = b"x" * 9000


@pytest.mark.parametrize(
    ("mode", "body", "code"),
    [
        # framing
        (UNSIGNED_TRAILER, b"zz\r\nab\r\n0\r\n\r\n", S3ErrorCode.IncompleteBody),
        (UNSIGNED_TRAILER, b"2\r\nabc\r\n0\r\n\r\n", S3ErrorCode.IncompleteBody),
        (UNSIGNED_TRAILER, b"2\nab\r\n0\r\n\r\n", S3ErrorCode.IncompleteBody),
        (UNSIGNED_TRAILER, b"2\r\nab0\r\n\r\n", S3ErrorCode.IncompleteBody),
        (UNSIGNED_TRAILER, b"2\r\nab\r\n0\r\n\r\nextra", S3ErrorCode.IncompleteBody),
        (UNSIGNED_TRAILER, b"2\r\nab\r\n", S3ErrorCode.IncompleteBody),
        (UNSIGNED_TRAILER, b"2\r\na", S3ErrorCode.IncompleteBody),
        (UNSIGNED_TRAILER, b"", S3ErrorCode.IncompleteBody),
        (UNSIGNED_TRAILER, b"1" * (MAX_LINE + 10), S3ErrorCode.IncompleteBody),
        (UNSIGNED_TRAILER, b"11111111111111111\r\n", S3ErrorCode.IncompleteBody),
        (SIGNED, encode([b"ab"], signed=True)[:-20], S3ErrorCode.IncompleteBody),
        (SIGNED, encode([b"ab"], signed=True, trailers={"x-a": "1"}), S3ErrorCode.IncompleteBody),
        # chunk sizes: only the last data chunk may be under 8 KiB
        (
            UNSIGNED_TRAILER,
            encode([b"a" * 100, BIG], signed=False),
            S3ErrorCode.InvalidChunkSizeError,
        ),
        (SIGNED, encode([b"a" * 8191, b"b"], signed=True), S3ErrorCode.InvalidChunkSizeError),
        # signatures
        (SIGNED, b"2\r\nab\r\n0\r\n\r\n", S3ErrorCode.SignatureDoesNotMatch),
        (SIGNED, b"2;chunk-signature=abc\r\nab\r\n", S3ErrorCode.SignatureDoesNotMatch),
        (SIGNED, encode([b"ab"], signed=True, seed="e" * 64), S3ErrorCode.SignatureDoesNotMatch),
        (
            SIGNED_TRAILER,
            encode([b"ab"], signed=True, trailers={}).replace(
                b"x-amz-trailer-signature", b"x-amz-other"
            ),
            S3ErrorCode.SignatureDoesNotMatch,
        ),
        (
            SIGNED_TRAILER,
            encode([b"ab"], signed=True)[:-2] + b"x-a:1\r\n\r\n",
            S3ErrorCode.SignatureDoesNotMatch,
        ),
        # trailers
        (UNSIGNED_TRAILER, b"0\r\nno-colon\r\n\r\n", S3ErrorCode.MalformedTrailerError),
        (UNSIGNED_TRAILER, b"0\r\nbad name:1\r\n\r\n", S3ErrorCode.MalformedTrailerError),
        (UNSIGNED_TRAILER, b"0\r\nx-a:1\r\nx-a:2\r\n\r\n", S3ErrorCode.MalformedTrailerError),
        (
            UNSIGNED_TRAILER,
            b"0\r\nx-amz-trailer-signature:" + b"0" * 64 + b"\r\n\r\n",
            S3ErrorCode.MalformedTrailerError,
        ),
        (
            UNSIGNED_TRAILER,
            b"0\r\nx-a:" + b"v" * 5000 + b"\r\n\r\n",
            S3ErrorCode.MalformedTrailerError,
        ),
    ],
)
def test_broken_streams(mode, body, code):
    for step in (None, 1):
        assert error_of(decoder(mode, min_chunk_size=8192), body, step).code is code


def test_declared_trailers_must_match():
    body = encode([b"ab"], signed=False, trailers={"x-amz-checksum-crc32": "AAAAAA=="})
    chunked = decoder(UNSIGNED_TRAILER, declared_trailers=["x-amz-checksum-sha256"])
    assert error_of(chunked, body).code is S3ErrorCode.MalformedTrailerError
    body = encode([b"ab"], signed=False, trailers={})
    chunked = decoder(UNSIGNED_TRAILER, declared_trailers=["x-amz-checksum-crc32"])
    assert error_of(chunked, body).code is S3ErrorCode.MalformedTrailerError


def test_signed_trailer_requires_its_signature():
    body = encode([b"ab"], signed=False, trailers={"x-a": "1"})  # no trailer signature
    signed_chunks = encode([b"ab"], signed=True)[:-2] + body[body.index(b"x-a") :]
    assert error_of(decoder(SIGNED_TRAILER), signed_chunks).code is (
        S3ErrorCode.SignatureDoesNotMatch
    )


def test_decoded_length_must_match():
    body = encode([BIG], signed=False)
    chunked = decoder(UNSIGNED_TRAILER, decoded_length=len(BIG) + 1)
    assert error_of(chunked, body).code is S3ErrorCode.IncompleteBody
    chunked = decoder(UNSIGNED_TRAILER, decoded_length=100)  # refused at the chunk header
    with pytest.raises(S3Error) as info:
        chunked.feed(body[:10])
    assert info.value.code is S3ErrorCode.IncompleteBody


def test_signed_chunk_over_the_bound_is_refused_before_buffering():
    chunked = decoder(SIGNED, max_chunk_size=1024)
    with pytest.raises(S3Error) as info:
        chunked.feed(b"401;chunk-signature=" + b"0" * 64 + b"\r\n")
    assert info.value.code is S3ErrorCode.InvalidChunkSizeError
    assert info.value.details["BadChunkSize"] == "1025"


def test_memory_is_bounded():
    chunk = 64 * 1024
    body = encode([b"s" * chunk] * 8, signed=True)
    chunked = decoder(SIGNED)
    peak = 0
    for start in range(0, len(body), 1000):
        chunked.feed(body[start : start + 1000])
        peak = max(peak, chunked.buffered)
    chunked.close()
    assert peak <= chunk
    # Unsigned chunks stream through whatever their size; nothing is held back.
    chunked = decoder(UNSIGNED_TRAILER)
    assert chunked.feed(b"2000000\r\n") == []  # 32 MiB, twice the signed-chunk bound
    for _ in range(512):
        assert chunked.feed(b"u" * 0x10000) == [b"u" * 0x10000]
        assert chunked.buffered == 0
    assert chunked.feed(b"\r\n0\r\n\r\n") == []
    chunked.close()
    assert chunked.decoded_length == 0x2000000


def test_constructor_checks():
    with pytest.raises(ValueError):
        ChunkedDecoder(PayloadMode.UNSIGNED)
    with pytest.raises(ValueError):
        ChunkedDecoder(PayloadMode.STREAMING_SIGNED)
    assert not decoder(SIGNED).finished


# -- property: any chunking, any split, every mode ----------------------------------------------


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=40000),
    sizes=st.lists(st.integers(1, 20000), min_size=1, max_size=8),
    step=st.integers(1, 5000),
    mode=st.sampled_from([SIGNED, SIGNED_TRAILER, UNSIGNED_TRAILER]),
    trailers=st.dictionaries(
        st.from_regex(r"x-amz-checksum-[a-z0-9]{1,8}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9+/=]{0,20}", fullmatch=True),
        max_size=2,
    ),
)
def test_property_round_trip(data, sizes, step, mode, trailers):
    chunks, offset, index = [], 0, 0
    while offset < len(data):
        size = sizes[index % len(sizes)]
        chunks.append(data[offset : offset + size])
        offset += size
        index += 1
    signed = mode is not UNSIGNED_TRAILER
    with_trailers = trailers if mode is not SIGNED else None
    body = encode(chunks, signed=signed, trailers=with_trailers)
    chunked = decoder(mode, min_chunk_size=0, decoded_length=len(data))
    assert decode(chunked, body, step) == data
    assert chunked.trailers == (with_trailers or {})
