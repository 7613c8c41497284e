"""How a remote worker gets a job's audio: a path on a shared folder, or a presigned URL of an S3 object.

With ``media_transport = s3`` the app uploads each file once (the object is named after
the job and the file's hash), hands workers presigned GET URLs that expire after an hour
(workers never hold storage credentials), and removes the object when its job ends.
Credentials come from boto3's usual places (environment, ``~/.aws``), never from settings.
The clock is injectable: a test server may ignore expiry, so tests age the URLs instead.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable

from ..errors import TranscriberError
from ..jobs import Job
from .protocol import Media

log = logging.getLogger(__name__)

URL_LIFETIME_SECONDS = 3600
PREFIX = "media/"


class MediaError(TranscriberError):
    """The audio could not be made available to remote workers (the object store refused or is unreachable)."""


class SharedFolder:
    """Workers read the file where the app sees it, through their own ``--media-map``."""

    def media_for(self, job: Job) -> Media:
        return Media(path=job.source_path, size_bytes=job.size_bytes, content_hash=job.content_hash)

    def forget(self, keep: Callable[[int], bool]) -> None:
        """Nothing was copied anywhere."""


class ObjectStore:
    """Uploads each job's audio once to ``bucket`` and signs short-lived GET URLs for it."""

    def __init__(self, bucket: str, *, endpoint: str = "", clock: Callable[[], float] = time.time, client=None):
        if not bucket:
            raise MediaError("media_transport is s3 but s3_bucket is empty: transcriber config set s3_bucket NAME")
        self.bucket = bucket
        self.clock = clock
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint or None)
        self.client = client
        self._uploaded: set[str] = set()

    @staticmethod
    def key_of(job: Job) -> str:
        return f"{PREFIX}{job.id}-{job.content_hash[:16]}"

    def media_for(self, job: Job) -> Media:
        key = self.key_of(job)
        try:
            if key not in self._uploaded and not self._exists(key):
                with open(job.source_path, "rb") as source:
                    self.client.upload_fileobj(source, self.bucket, key)
                log.info("job %d: audio uploaded to s3://%s/%s", job.id, self.bucket, key)
            self._uploaded.add(key)
            url = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=URL_LIFETIME_SECONDS
            )
        except OSError as error:
            raise MediaError(f"{job.file_name} could not be read for upload: {error.strerror or error}") from error
        except Exception as error:  # botocore's errors: no credentials, no bucket, unreachable
            raise MediaError(f"The audio of job {job.id} could not be put in s3://{self.bucket}: {error}") from error
        return Media(url=url, expires_at=self.clock() + URL_LIFETIME_SECONDS, size_bytes=job.size_bytes,
                     content_hash=job.content_hash)

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except Exception:
            return False

    def uploaded_job_ids(self) -> Iterable[tuple[int, str]]:
        """(job id, key) of every object this app uploaded and has not removed yet."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=PREFIX):
            for item in page.get("Contents", []):
                name = item["Key"][len(PREFIX):]
                job_id, _, _ = name.partition("-")
                if job_id.isdigit():
                    yield int(job_id), item["Key"]

    def forget(self, keep: Callable[[int], bool]) -> None:
        """Remove the objects of every job for which ``keep(job_id)`` is false (it ended, or was removed)."""
        try:
            for job_id, key in list(self.uploaded_job_ids()):
                if not keep(job_id):
                    self.client.delete_object(Bucket=self.bucket, Key=key)
                    self._uploaded.discard(key)
                    log.info("job %d: uploaded audio removed", job_id)
        except Exception as error:  # tried again at the next sweep
            log.warning("uploaded audio not cleaned up: %s", error)


def transport_for(settings, *, clock: Callable[[], float] = time.time):
    """The media transport the settings choose."""
    if settings.media_transport == "s3":
        return ObjectStore(settings.s3_bucket, endpoint=settings.s3_endpoint, clock=clock)
    return SharedFolder()
