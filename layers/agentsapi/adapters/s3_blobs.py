"""S3 adapter of the BlobStore port. Objects are private; downloads go through signed URLs."""

from __future__ import annotations

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

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete_prefix(self, prefix: str) -> None:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})

    def signed_url(self, key: str, expiry_s: int, filename: str) -> str:
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key,
                    "ResponseContentDisposition": content_disposition(filename)},
            ExpiresIn=expiry_s,
        )
