"""A lease on one run (``partial/<run-id>/lease.json``) so only one job computes it.

Why this is safe
----------------
* **Acquire** is ``PutObject`` with ``If-None-Match: *``: S3 creates the object
  for exactly one of any number of concurrent writers; the others get 412 (or
  409 when two conditional writes race) and back off.
* **Renew** (a heartbeat thread, every ``ttl/3``) and **take over** are
  ``PutObject`` with ``If-Match: <ETag last seen>``: a write succeeds only if
  nobody replaced the lease since, so of two successors that both saw the same
  expired lease only one wins, and a holder whose lease was taken over learns it
  on its next renewal (412) and stops.
* **Expiry** is judged on S3's clock, not the job's: the lease is expired when
  the ``Date`` of the response that returned it is more than ``ttl_s`` after its
  ``LastModified``. The holder, for its part, counts its lease valid only until
  ``ttl - margin`` after it *sent* its last successful write (monotonic clock):
  S3 stamped that write later, so the holder always gives up before anyone
  may take over. Before every write of a result the job checks
  :meth:`Lease.check`, which raises :class:`LeaseLost` once that time has passed
  or a renewal found the lease taken. (The residue is a pause of more than
  ``margin`` between that check and the write it guards; ``margin`` is a third
  of the ttl, 100 s by default.)
* **The holder dies** (SIGKILL, spot reclaim, host failure): its lease stops
  being renewed. The next attempt of the *same* Batch job (same
  ``AWS_BATCH_JOB_ID``; Batch never runs two attempts of a job at once) takes
  it over at once with ``If-Match``; a *different* job takes it over only after
  it expired. Either way the successor resumes from the dead holder's
  checkpoints.
* **Release** deletes the lease with ``If-Match`` on our ETag (never someone
  else's): after the run's outputs and done-marker are written, or, when the run
  stops for a retry (internal error, SIGTERM), at once with the checkpoints kept,
  so neither the retry nor a new job waits for the ttl. A lost answer to the
  delete is harmless: its retry finds 404/412, which :meth:`Lease.release` ignores.
* **A lost answer to the acquiring write** (S3 created the lease, the response
  never came, botocore retried and got 412): the lease names our ``job_id``, so
  :meth:`Lease.acquire` takes it over at once as "an earlier attempt of this job".
  A lost answer to the *take-over* write (``If-Match``) is recognised the same way:
  the 412 of botocore's retry is followed by a read, and a lease that names our
  ``owner`` (this process's uuid) is ours.
* **Somebody else holds a live lease**: :meth:`Lease.acquire` returns False and
  the predict job ends at once (``in_progress``, exit 5) instead of waiting: the
  holder's own job reports the run.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from batch_image import clock, s3io

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Our lease expired or was taken over: stop writing results."""


def _server_now(resp: dict[str, Any]) -> datetime | None:
    date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        return None


class Lease:
    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        ttl: float,
        job_id: str | None = None,
        attempt: int | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.s3, self.bucket, self.key = s3, bucket, key
        self.ttl = float(ttl)
        self.margin = self.ttl / 3
        self.job_id, self.attempt = job_id, attempt
        self.owner = uuid.uuid4().hex
        self.clock = clock
        self.etag: str | None = None
        self.valid_until = 0.0
        self.lost = False
        self.took_over: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- acquiring ---------------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "ttl_s": self.ttl,
            "renewed_at": clock.iso_stamp(),
        }

    def _write(self, *, if_match: str | None) -> bool:
        sent = self.clock()
        try:
            etag = s3io.put_json(
                self.s3,
                self.bucket,
                self.key,
                self._body(),
                if_none_match=if_match is None,
                if_match=if_match,
            )
        except Exception as exc:
            if s3io.is_precondition_failed(exc) or s3io.is_not_found(exc):
                return False
            raise
        with self._lock:
            self.etag = etag
            self.valid_until = sent + self.ttl - self.margin
        return True

    def holder(self) -> tuple[dict[str, Any], str, bool] | None:
        """The current lease: ``(body, etag, expired)``, or None when there is none."""
        found = s3io.get_json(self.s3, self.bucket, self.key)
        if found is None:
            return None
        body, resp = found
        body = body if isinstance(body, dict) else {}
        ttl = float(body.get("ttl_s", self.ttl) or 0)
        modified = resp.get("LastModified")
        now = _server_now(resp)
        if modified is None or now is None:  # no server clock: fall back to ours
            expired = False
        else:
            expired = (now - modified).total_seconds() > ttl
        return body, s3io.etag_of(resp), expired

    def acquire(self) -> bool:
        """Take the lease if free, expired, or left by an earlier attempt of this job."""
        for _ in range(3):
            if self._write(if_match=None):
                return self._started()
            current = self.holder()
            if current is None:
                continue  # released between our write and our read: try again
            body, etag, expired = current
            mine = bool(self.job_id) and body.get("job_id") == self.job_id
            if not (expired or mine):
                log.info(
                    "run is leased by job %s (attempt %s)", body.get("job_id"), body.get("attempt")
                )
                self.took_over = body
                return False
            sent = self.clock()
            if self._write(if_match=etag) or self._ours_after_lost_answer(sent):
                self.took_over = body
                log.info(
                    "took over the lease of %s job %s",
                    "an expired" if expired else "an earlier attempt of",
                    body.get("job_id"),
                )
                return self._started()
            return False  # another successor won the conditional write
        return False

    def _ours_after_lost_answer(self, sent: float) -> bool:
        """A conditional write refused (412) may be the retry of our own write whose answer
        was lost after S3 acted: the lease then names our ``owner`` (a uuid only this
        process knows). Valid from when the first write was sent, as after any write."""
        current = self.holder()
        if current is None or current[0].get("owner") != self.owner:
            return False
        with self._lock:
            self.etag = current[1]
            self.valid_until = sent + self.ttl - self.margin
        return True

    def _started(self) -> bool:
        self._thread = threading.Thread(target=self._heartbeat, name="lease", daemon=True)
        self._thread.start()
        return True

    # --- holding -----------------------------------------------------------------------

    def _heartbeat(self) -> None:
        interval = max(0.05, self.ttl / 3)
        while not self._stop.wait(interval):
            try:
                with self._lock:
                    etag = self.etag
                if not self._write(if_match=etag):
                    log.warning("lease %s was taken over: stopping", self.key)
                    self.lost = True
                    return
            except Exception:  # network trouble: keep trying until validity runs out
                log.warning("lease renewal failed; will retry", exc_info=True)

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless we may still write results."""
        if self.lost or self.clock() >= self.valid_until:
            self.lost = True
            raise LeaseLost(f"lease {self.key} lost")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def release(self) -> None:
        """Stop renewing and delete the lease if it is still ours."""
        self.stop()
        if self.etag is None or self.lost:
            return
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=f'"{self.etag}"')
        except Exception as exc:
            if not (s3io.is_precondition_failed(exc) or s3io.is_not_found(exc)):
                raise
