"""Additional checksums of multipart uploads (``x-amz-checksum-*``), AWS's rules.

- CreateMultipartUpload may name an algorithm and a type: COMPOSITE (the
  default; a digest of the part digests, ``-N``) or FULL_OBJECT (CRCs only,
  combined from the parts' CRCs; the only type for CRC64NVME).
- Every part is hashed as it streams: with the algorithm its request
  announced (verified, BadDigest on mismatch), else the upload's, else
  CRC64NVME; a part announcing another algorithm than the upload's is refused.
- CompleteMultipartUpload checks any part checksums it names against the
  stored ones (InvalidPart) and gives the object its checksum: the upload's
  algorithm and type, or, when none was asked for, a FULL_OBJECT CRC of the
  algorithm every part carries: CRC64NVME (what S3 stores by default) or the
  CRC an SDK sent with each part (boto3 sends CRC32 unasked).
"""

from __future__ import annotations

from collections.abc import Mapping

from engine import (
    MAX_PART_SIZE,
    EntityTooLarge,
    ObjectChecksums,
    ObjectReader,
    PartBody,
    PartOpener,
    PartRecord,
    UploadInfo,
    UploadMeta,
)
from s3api import checksums
from s3api.body import hashed, open_body
from s3api.checksums import COMPOSITE, CRC64NVME, FULL_OBJECT, ChecksumVerifier
from s3api.context import RequestContext
from s3api.errors import S3Error, S3ErrorCode
from s3api.handlers.multipart_xml import CompletedPart


def _invalid(message: str) -> S3Error:
    return S3Error(S3ErrorCode.InvalidRequest, message)


def upload_checksum(headers: Mapping[str, str]) -> tuple[str, str]:
    """(algorithm, type) a CreateMultipartUpload asked for; ("", "") for none."""
    raw_algorithm = headers.get("x-amz-checksum-algorithm")
    raw_type = headers.get(checksums.TYPE_HEADER)
    if raw_algorithm is None:
        if raw_type is not None:
            raise _invalid(
                "The x-amz-checksum-type header can only be used with the "
                "x-amz-checksum-algorithm header."
            )
        return "", ""
    algorithm = checksums.parse_algorithm(raw_algorithm)
    default = FULL_OBJECT if algorithm == CRC64NVME else COMPOSITE
    kind = (raw_type or default).strip().upper()
    if kind not in (FULL_OBJECT, COMPOSITE):
        raise _invalid(f"Value for {checksums.TYPE_HEADER} header is invalid.")
    if kind == FULL_OBJECT and not checksums.supports_full_object_multipart(algorithm):
        raise _invalid(
            f"The FULL_OBJECT checksum type cannot be used with the {algorithm.lower()} "
            "checksum algorithm."
        )
    if kind == COMPOSITE and algorithm == CRC64NVME:
        raise _invalid(
            "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm."
        )
    return algorithm, kind


def part_algorithm(info: UploadInfo) -> str:
    return info.checksum_algorithm or checksums.DEFAULT_ALGORITHM


def part_opener(ctx: RequestContext, md5: bytes | None) -> PartOpener:
    """Opens an UploadPart body once the engine has found the upload."""

    def open_part(info: UploadInfo) -> PartBody:
        announced = checksums.parse_request(ctx.request.headers)
        expected = info.checksum_algorithm
        if expected and announced is not None and announced.algorithm != expected:
            raise _invalid(
                "Checksum Type mismatch occurred, expected checksum Type: "
                f"{expected.lower()}, actual checksum Type: {announced.algorithm.lower()}"
            )
        body = open_body(ctx, default_checksum=part_algorithm(info))
        if body.size is not None and body.size > MAX_PART_SIZE:
            raise EntityTooLarge("Your proposed upload exceeds the maximum allowed size")
        return PartBody(body.stream, body.size, md5, lambda: body.checksums)

    return open_part


def copy_opener(reader: ObjectReader) -> PartOpener:
    """Opens an UploadPartCopy source as a part body, hashed like an uploaded one."""

    def open_part(info: UploadInfo) -> PartBody:
        verifier = ChecksumVerifier(None, default=part_algorithm(info))
        stream = hashed(reader.body(), verifier)
        return PartBody(stream, reader.length, None, lambda: verifier.results)

    return open_part


def part_checksum_headers(part: PartRecord) -> dict[str, str]:
    return {checksums.header_name(alg): value for alg, value in part.checksums.items()}


def object_checksums(
    requested: list[CompletedPart], headers: Mapping[str, str]
) -> ObjectChecksums:
    """The completed object's checksum, after checking the ones the request named."""
    named = {p.number: p.checksums for p in requested}

    def compute(meta: UploadMeta, chosen: list[PartRecord]) -> dict[str, str]:
        for part in chosen:
            for algorithm, value in named.get(part.number, {}).items():
                if part.checksums.get(algorithm) != value:
                    raise S3Error(S3ErrorCode.InvalidPart, PartNumber=str(part.number))
        result = _combine(meta.info, chosen)
        for algorithm, value in result.items():
            announced = headers.get(checksums.header_name(algorithm))
            if announced is not None and announced.strip() != value:
                raise checksums.mismatch(algorithm)
        return result

    return compute


def _combine(info: UploadInfo, chosen: list[PartRecord]) -> dict[str, str]:
    algorithm, kind = info.checksum_algorithm, info.checksum_type or FULL_OBJECT
    if not algorithm:
        shared = set.intersection(*(set(p.checksums) for p in chosen))
        crcs = [a for a in shared if checksums.supports_full_object_multipart(a)]
        if not crcs:
            return {}
        algorithm = CRC64NVME if CRC64NVME in crcs else sorted(crcs)[0]
    values = [p.checksums.get(algorithm) for p in chosen]
    if any(v is None for v in values):
        return {}  # some part carries another algorithm: no object checksum
    if kind == FULL_OBJECT:
        pairs = [(v, p.size) for v, p in zip(values, chosen, strict=True) if v is not None]
        return {algorithm: checksums.combine_full_object(algorithm, pairs)}
    return {algorithm: checksums.composite(algorithm, [v for v in values if v is not None])}
