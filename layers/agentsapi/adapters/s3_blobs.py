"""S3 adapter of the BlobStore port. Objects are private; downloads go through signed URLs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ..http.headers import content_disposition


class S3Blobs:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get(self, key: str, max_age_s: float | None = None) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        if max_age_s is not None:
            age = (datetime.now(UTC) - response["LastModified"]).total_seconds()
            if age > max_age_s:  # expired; S3 lifecycle rules delete it for good
                return None
        return response["Body"].read()

    def copy(self, source: str, key: str, max_age_s: float | None = None) -> bool:
        """Copy within the bucket (S3 moves the bytes); False if the source is missing or expired."""
        try:
            if max_age_s is not None:
                head = self.client.head_object(Bucket=self.bucket, Key=source)
                if (datetime.now(UTC) - head["LastModified"]).total_seconds() > max_age_s:
                    return False
            self.client.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": source})
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True

    def size(self, key: str, max_age_s: float | None = None) -> int | None:
        """The object's size; None if missing or older than ``max_age_s``."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        if max_age_s is not None and (datetime.now(UTC) - head["LastModified"]).total_seconds() > max_age_s:
            return None
        return int(head["ContentLength"])

    def stream(self, key: str) -> Iterator[bytes] | None:
        """The object's bytes in 1 MiB chunks (never whole in memory), or None if missing."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return body.iter_chunks(1 << 20)

    def move(self, source: str, key: str) -> bool:
        """S3 has no rename: a server-side copy (no bytes through the function), then a delete."""
        if not self.copy(source, key):
            return False
        self.delete(source)
        return True

    def keys(self, prefix: str) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        return [item["Key"] for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                for item in page.get("Contents", [])]

    def presigned_post(self, key: str, expiry_s: int, max_bytes: int, min_bytes: int = 0) -> dict[str, Any]:
        """A presigned POST for exactly ``key``, whose body S3 refuses outside [min_bytes, max_bytes]."""
        post = self.client.generate_presigned_post(
            Bucket=self.bucket, Key=key, ExpiresIn=expiry_s,
            Conditions=[["content-length-range", int(min_bytes), int(max_bytes)]])
        return {"url": post["url"], "fields": dict(post["fields"])}

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    # Keys per listing page: S3's most, which is also the most one delete_objects takes.
    LISTING_PAGE = 1000

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; the bytes they held."""
        paginator = self.client.get_paginator("list_objects_v2")
        removed = 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix,
                                       PaginationConfig={"PageSize": self.LISTING_PAGE}):
            items = page.get("Contents", [])
            if items:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": i["Key"]} for i in items],
                                                                       "Quiet": True})
                removed += sum(int(i.get("Size", 0)) for i in items)
        return removed

    def total_size(self, prefix: str) -> int:
        """The bytes stored under ``prefix`` (a listing: no object is read)."""
        paginator = self.client.get_paginator("list_objects_v2")
        return sum(int(item.get("Size", 0)) for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                   for item in page.get("Contents", []))

    def signed_url(self, key: str, expiry_s: int, filename: str) -> str:
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key,
                    "ResponseContentDisposition": content_disposition(filename)},
            ExpiresIn=expiry_s,
        )
