"""Incremental, socket-free decoder for S3's ``aws-chunked`` request bodies.

Feed it the body bytes as they arrive (``feed``), get back the decoded data
pieces; call ``close()`` at the end of the body. It handles the three
streaming payload modes of ``x-amz-content-sha256``::

    STREAMING-AWS4-HMAC-SHA256-PAYLOAD          hex;chunk-signature=SIG CRLF data CRLF ...
                                                0;chunk-signature=SIG CRLF CRLF
    STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER  same chunks, then after the 0-chunk
                                                name:value CRLF ... x-amz-trailer-signature:SIG
                                                CRLF CRLF
    STREAMING-UNSIGNED-PAYLOAD-TRAILER          hex CRLF data CRLF ... 0 CRLF
                                                name:value CRLF ... CRLF

Each chunk signature chains from the previous one (the first from the request's
seed signature) over ``AWS4-HMAC-SHA256-PAYLOAD``; the trailer signature over
``AWS4-HMAC-SHA256-TRAILER`` and the SHA-256 of the ``name:value\\n`` lines.

Memory is bounded: a signed chunk is held until its signature is checked (so no
unverified byte is ever released) and may not exceed ``max_chunk_size``
(default 16 MiB; SDKs send 8 KiB to 8 MiB chunks). Unsigned chunks are passed
through as they arrive, whatever their size. Header and trailer lines are
capped at ``MAX_LINE`` bytes, trailers at ``MAX_TRAILER_BYTES``.

Errors are the ones AWS answers: broken framing or a short body ->
IncompleteBody; a bad chunk or trailer signature -> SignatureDoesNotMatch; a
non-final chunk under 8 KiB -> InvalidChunkSizeError; unparsable or undeclared
trailers -> MalformedTrailerError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from s3api import sigv4_canonical as canon
from s3api.errors import S3Error, S3ErrorCode
from s3api.sigv4 import PayloadMode

if TYPE_CHECKING:
    from s3api.sigv4 import AuthResult

DEFAULT_MAX_CHUNK_SIZE = 16 * 1024 * 1024
MIN_CHUNK_SIZE = 8192  # AWS: only the last data chunk may be smaller
MAX_LINE = 4096
MAX_TRAILER_BYTES = 16 * 1024
TRAILER_SIGNATURE = "x-amz-trailer-signature"

_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIGNATURE_EXT = re.compile(rb"chunk-signature=([0-9a-fA-F]{64})")
_TRAILER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

_HEADER, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


def _incomplete(message: str | None = None) -> S3Error:
    return S3Error(S3ErrorCode.IncompleteBody, message)


def _bad_signature() -> S3Error:
    return S3Error(S3ErrorCode.SignatureDoesNotMatch)


def _malformed_trailer() -> S3Error:
    return S3Error(S3ErrorCode.MalformedTrailerError)


class ChunkedDecoder:
    """State machine: ``feed(bytes) -> [data, ...]``, then ``close()``.

    ``finished`` tells whether the terminating chunk (and trailers) were seen;
    ``trailers`` holds the trailing headers (lowercase names, without the
    trailer signature); ``decoded_length`` counts the data bytes released.
    """

    def __init__(
        self,
        mode: PayloadMode,
        *,
        signing_key: bytes | None = None,
        amz_date: str = "",
        scope: str = "",
        seed_signature: str = "",
        decoded_length: int | None = None,
        declared_trailers: Iterable[str] | None = None,
        max_chunk_size: int = DEFAULT_MAX_CHUNK_SIZE,
        min_chunk_size: int = MIN_CHUNK_SIZE,
    ) -> None:
        if not mode.is_streaming:
            raise ValueError(f"{mode} is not an aws-chunked payload mode")
        self._signed = mode in (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER)
        self._with_trailer = mode is not PayloadMode.STREAMING_SIGNED
        if self._signed and signing_key is None:
            raise ValueError("signed aws-chunked payloads need the signing key")
        self._key = signing_key or b""
        self._amz_date = amz_date
        self._scope = scope
        self._previous = seed_signature.lower()
        self._expected_length = decoded_length
        self._declared = (
            None if declared_trailers is None else frozenset(n.lower() for n in declared_trailers)
        )
        self._max_chunk = max_chunk_size
        self._min_chunk = min_chunk_size

        self._state = _HEADER
        self._line = bytearray()
        self._chunk = bytearray()  # the signed chunk being received
        self._remaining = 0
        self._chunk_signature = ""
        self._chunk_count = 0
        self._last_size: int | None = None
        self._announced = 0
        self._released = 0
        self._trailer_bytes = 0
        self._trailer_signature: str | None = None
        self._blank_skipped = False
        self.trailers: dict[str, str] = {}

    @classmethod
    def for_auth(cls, auth: AuthResult, **options) -> ChunkedDecoder:
        """A decoder for a verified request (its mode, key, seed signature, headers)."""
        options.setdefault("decoded_length", auth.decoded_content_length)
        options.setdefault("declared_trailers", auth.trailer_names)
        return cls(
            auth.payload_mode,
            signing_key=auth.signing_key,
            amz_date=auth.amz_date,
            scope=auth.scope,
            seed_signature=auth.seed_signature,
            **options,
        )

    @property
    def finished(self) -> bool:
        return self._state == _DONE

    @property
    def decoded_length(self) -> int:
        return self._released

    @property
    def buffered(self) -> int:
        """Bytes held inside the decoder (a partial line or an unverified chunk)."""
        return len(self._line) + len(self._chunk)

    def feed(self, data: bytes) -> list[bytes]:
        """Consume body bytes; return the data pieces that are now complete and verified."""
        if not isinstance(data, bytes | bytearray):
            data = bytes(data)
        out: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                piece = data[pos : pos + take]
                pos += take
                self._remaining -= take
                if self._signed:
                    self._chunk += piece
                else:
                    out.append(bytes(piece))
                    self._released += take
                if not self._remaining:
                    self._state = _DATA_END
                continue
            if state == _DONE:
                raise _incomplete("Unexpected data after the end of the aws-chunked body")
            # Never look (or hold) further than one maximal line ahead.
            limit = min(end, pos + MAX_LINE + 1 - len(self._line))
            newline = data.find(b"\n", pos, limit)
            stop = limit if newline < 0 else newline + 1
            self._line += data[pos:stop]
            pos = stop
            if len(self._line) > MAX_LINE:
                if state == _TRAILER:
                    raise _malformed_trailer()
                raise _incomplete()
            if newline < 0:
                break
            if not self._line.endswith(b"\r\n"):
                raise _incomplete()
            line = bytes(self._line[:-2])
            self._line.clear()
            if state == _HEADER:
                self._on_chunk_header(line)
            elif state == _DATA_END:
                self._on_data_end(line, out)
            else:
                self._on_trailer_line(line)
        return out

    def close(self) -> None:
        """The body ended: raise IncompleteBody unless the stream was complete.

        A client that leaves out the final empty line after the last chunk (or
        after its trailers) is accepted, as long as nothing is cut in between.
        """
        if self._state == _TRAILER and not self._line:
            self._finish()
        if self._state != _DONE:
            raise _incomplete("The request body terminated unexpectedly")

    eof = close

    # -- chunk framing --------------------------------------------------------

    def _on_chunk_header(self, line: bytes) -> None:
        size_part, _, extension = line.partition(b";")
        if not _SIZE.fullmatch(size_part):
            raise _incomplete()
        size = int(size_part, 16)
        if self._signed:
            match = _SIGNATURE_EXT.fullmatch(extension)
            if match is None:
                raise _bad_signature()
            self._chunk_signature = match.group(1).decode("ascii").lower()
            if size > self._max_chunk:
                raise S3Error(
                    S3ErrorCode.InvalidChunkSizeError,
                    f"Chunks may not be larger than {self._max_chunk} bytes",
                    Chunk=str(self._chunk_count + 1),
                    BadChunkSize=str(size),
                )
        self._chunk_count += 1
        if size and self._last_size is not None and self._last_size < self._min_chunk:
            raise S3Error(
                S3ErrorCode.InvalidChunkSizeError,
                Chunk=str(self._chunk_count - 1),
                BadChunkSize=str(self._last_size),
            )
        self._last_size = size
        self._announced += size
        if self._expected_length is not None and self._announced > self._expected_length:
            raise _incomplete()
        if size:
            self._remaining = size
            self._state = _DATA
            return
        if self._signed:
            self._verify_chunk(b"")
        if self._expected_length is not None and self._announced != self._expected_length:
            raise _incomplete()
        self._state = _TRAILER

    def _on_data_end(self, line: bytes, out: list[bytes]) -> None:
        if line:
            raise _incomplete()
        if self._signed:
            chunk = bytes(self._chunk)
            self._chunk.clear()
            self._verify_chunk(chunk)
            out.append(chunk)
            self._released += len(chunk)
        self._state = _HEADER

    def _verify_chunk(self, chunk: bytes) -> None:
        to_sign = canon.chunk_string_to_sign(
            self._amz_date, self._scope, self._previous, canon.sha256_hex(chunk)
        )
        expected = canon.sign(self._key, to_sign)
        if not canon.signatures_equal(expected, self._chunk_signature):
            raise _bad_signature()
        self._previous = expected

    # -- trailers -------------------------------------------------------------

    def _on_trailer_line(self, line: bytes) -> None:
        if not line:
            if (
                self._with_trailer
                and not self.trailers
                and self._trailer_signature is None
                and self._declared
                and not self._blank_skipped
            ):
                # Some clients put an empty line between the 0-chunk and the trailers.
                self._blank_skipped = True
                return
            self._finish()
            return
        if not self._with_trailer:
            raise _incomplete()
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > MAX_TRAILER_BYTES or self._trailer_signature is not None:
            raise _malformed_trailer()
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed_trailer() from None
        name, sep, value = text.partition(":")
        name = name.strip().lower()
        value = value.strip()
        if not sep or not _TRAILER_NAME.fullmatch(name) or name in self.trailers:
            raise _malformed_trailer()
        if name == TRAILER_SIGNATURE:
            if not self._signed:
                raise _malformed_trailer()
            self._trailer_signature = value
            return
        if self._declared is not None and name not in self._declared:
            raise _malformed_trailer()
        self.trailers[name] = value

    def _finish(self) -> None:
        if self._declared is not None and not self._declared <= self.trailers.keys():
            raise _malformed_trailer()
        if self._signed and self._with_trailer:
            if self._trailer_signature is None:
                raise _bad_signature()
            canonical = "".join(
                f"{name}:{value}\n" for name, value in sorted(self.trailers.items())
            )
            to_sign = canon.trailer_string_to_sign(
                self._amz_date,
                self._scope,
                self._previous,
                canon.sha256_hex(canonical.encode("utf-8")),
            )
            expected = canon.sign(self._key, to_sign)
            if not canon.signatures_equal(expected, self._trailer_signature):
                raise _bad_signature()
        self._state = _DONE
