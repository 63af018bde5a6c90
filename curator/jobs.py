"""Export jobs run by an RQ worker (``python manage.py rqworker default``), here or on another machine."""

from __future__ import annotations

import logging
import time

import django_rq
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from annotator import exporting
from curator.models import ExportChunk, ExportJob

log = logging.getLogger(__name__)
CHUNK_BYTES = 8 * 1024 * 1024
STALE_AFTER_S = 120  # a running job without a heartbeat for this long has lost its worker


class QueueUnavailable(Exception):
    """The job queue (Redis) could not take the job; nothing was started."""

    http_status = 503
    code = "queue_unavailable"


def _progress_key(job_id: int) -> str:
    return f"export-job:{job_id}:progress"


def options_of(job: ExportJob) -> exporting.ExportOptions:
    return exporting.ExportOptions(**job.options)


def start_export(*, user, options: exporting.ExportOptions) -> ExportJob:
    """Create the job and queue it; raises QueueUnavailable, leaving no job behind, if Redis is down.

    The row is committed before the job is queued (a worker must find it), in its own durable
    transaction rather than in ``on_commit``: a failure to queue then reaches the caller, which
    answers 503, instead of escaping after the response with the row left ``queued`` for ever.
    """
    with transaction.atomic(durable=True):
        job = ExportJob.objects.create(created_by=user, options=options.__dict__)
    try:
        enqueue(job.pk)
    except RedisError as e:
        log.warning("export job %s not queued, Redis is unreachable: %s", job.pk, type(e).__name__)
        job.delete()
        raise QueueUnavailable(
            "The export queue (Redis) is unreachable, so no background export can start now. "
            "Use Download now, or try again when an administrator has restarted Redis."
        ) from e
    return job


def enqueue(job_id: int) -> None:
    # "auto": queue now, so that a Redis failure is raised here (django_rq's default would defer
    # the call to the end of an enclosing transaction, where no one can answer for it).
    queue = django_rq.get_queue("default", commit_mode="auto")
    queue.enqueue(run_export, job_id, job_timeout=settings.EXPORT_JOB_TIMEOUT_S)


def run_export(job_id: int) -> None:
    claimed = ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.QUEUED).update(
        status=ExportJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    job = ExportJob.objects.get(pk=job_id)
    log.info("export job %s started", job_id)
    try:
        _write(job)
    except Exception as e:  # noqa: BLE001 - the job must say why it failed
        log.exception("export job %s failed", job_id)
        ExportJob.objects.filter(pk=job_id).update(
            status=ExportJob.Status.FAILED, error=f"{type(e).__name__}: {e}", finished_at=timezone.now()
        )
    finally:
        try:
            cache.delete(_progress_key(job_id))
        except RedisError:  # the progress entry expires by itself within the hour
            pass


def _write(job: ExportJob) -> None:
    options = options_of(job)
    total = options.queryset().count()

    def progress(done: int, _total: int) -> None:
        cache.set(_progress_key(job.pk), {"done": done, "total": total, "at": time.time()}, 3600)

    progress(0, total)
    with transaction.atomic():
        seq = 0
        size = 0
        buffer = bytearray()
        for piece in exporting.iter_zip(options, progress=progress):
            buffer += piece
            if len(buffer) >= CHUNK_BYTES:
                ExportChunk.objects.create(job=job, seq=seq, data=bytes(buffer))
                seq += 1
                size += len(buffer)
                buffer.clear()
        ExportChunk.objects.create(job=job, seq=seq, data=bytes(buffer))
        size += len(buffer)
        job.status = ExportJob.Status.DONE
        job.total_images = job.images = total
        job.size = size
        job.finished_at = timezone.now()
        job.save()
    log.info("export job %s done: %s images, %s bytes", job.pk, total, size)


def state(job: ExportJob) -> dict:
    """What the page shows: status, percentage, and why a job failed (a lost worker included)."""
    info = {
        "id": job.pk,
        "status": job.status,
        "created_at": job.created_at,
        "size": job.size,
        "images": job.images,
        "error": job.error,
        "options": job.options,
        "percent": 0,
    }
    if job.status == ExportJob.Status.DONE:
        info["percent"] = 100
    elif job.status == ExportJob.Status.QUEUED:
        waited = (timezone.now() - job.created_at).total_seconds()
        if waited > settings.EXPORT_QUEUE_TIMEOUT_S:
            minutes = max(1, round(settings.EXPORT_QUEUE_TIMEOUT_S / 60))
            error = f"no export worker picked this job up within {minutes} minutes; is the worker running?"
            if _fail(job, ExportJob.Status.QUEUED, error):
                info.update(status=ExportJob.Status.FAILED, error=error)
    elif job.status == ExportJob.Status.RUNNING:
        try:
            beat = cache.get(_progress_key(job.pk))
        except RedisError:
            # Progress is unreadable while Redis is down; that says nothing about the worker.
            log.warning("progress of export job %s unreadable: Redis is unreachable", job.pk)
            return info
        last = beat["at"] if beat else (job.started_at.timestamp() if job.started_at else 0)
        if time.time() - last > STALE_AFTER_S:
            error = "the export worker stopped before finishing (it may have been restarted); start the export again"
            if _fail(job, ExportJob.Status.RUNNING, error):
                info.update(status=ExportJob.Status.FAILED, error=error)
        elif beat and beat["total"]:
            # 100 % means downloadable: until the final commit a job shows at most 99 %.
            info["percent"] = min(99, int(100 * beat["done"] / beat["total"]))
    return info


def _fail(job: ExportJob, expected: str, error: str) -> bool:
    """Mark the job failed unless a worker changed its status meanwhile (then the worker wins)."""
    return bool(
        ExportJob.objects.filter(pk=job.pk, status=expected).update(
            status=ExportJob.Status.FAILED, error=error, finished_at=timezone.now()
        )
    )


def iter_download(job: ExportJob):
    for (data,) in ExportChunk.objects.filter(job=job).order_by("seq").values_list("data").iterator(chunk_size=1):
        yield bytes(data)
