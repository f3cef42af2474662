"""Shared helpers for the multipart tests (boto3 calls with the parts bookkeeping)."""

from __future__ import annotations

import hashlib

MiB = 1024 * 1024
PART = 5 * MiB


def error_of(excinfo) -> tuple[str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def mp_etag(*parts: bytes) -> str:
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def start(s3, bucket: str, key: str = "obj", **kw) -> str:
    return s3.create_multipart_upload(Bucket=bucket, Key=key, **kw)["UploadId"]


def put_part(s3, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> dict:
    etag = s3.upload_part(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
    )["ETag"]
    return {"PartNumber": number, "ETag": etag}


def complete(s3, bucket: str, key: str, upload_id: str, parts: list[dict]) -> dict:
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )


def upload_ids(s3, bucket: str, **kw) -> list[str]:
    listed = s3.list_multipart_uploads(Bucket=bucket, **kw)
    return [u["UploadId"] for u in listed.get("Uploads", [])]
