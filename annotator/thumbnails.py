"""Small previews of the images for the worklists, the review queue and the dataset page.

A thumbnail is the image scaled to fit THUMB_PX (aspect kept, Pillow's Lanczos filter), as PNG.
It is made once per picture and kept in the shared cache under the SHA-1 of the image's PNG, so
a redaction (which rewrites the pixels) gives a new thumbnail at once; the same digest is the
HTTP ETag. Without the cache (Redis down) it is simply made again: a list page never fails for it.
"""

from __future__ import annotations

import hashlib
import io
import logging

from django.core.cache import cache
from PIL import Image as PILImage
from redis.exceptions import RedisError

THUMB_PX = 160
CACHE_SECONDS = 7 * 24 * 3600

log = logging.getLogger(__name__)


def digest(png: bytes) -> str:
    return hashlib.sha1(png, usedforsecurity=False).hexdigest()


def make_thumbnail(png: bytes, size: int = THUMB_PX) -> bytes:
    """The picture scaled down to fit size x size, as PNG (never scaled up)."""
    with PILImage.open(io.BytesIO(png)) as im:
        im.load()
        small = im.convert("L" if im.mode in ("L", "I", "I;16", "1") else "RGB")
        small.thumbnail((size, size), PILImage.Resampling.LANCZOS)
        out = io.BytesIO()
        small.save(out, format="PNG")
        return out.getvalue()


def thumbnail(png: bytes, tag: str | None = None) -> bytes:
    """The thumbnail of ``png`` (digest ``tag``), from the cache when it was made before."""
    key = f"thumb:v1:{tag or digest(png)}"
    try:
        cached = cache.get(key)
    except RedisError:  # the cache is an optimisation: without Redis, make it again
        log.warning("thumbnail cache unavailable", exc_info=True)
        cached = None
    if cached is not None:
        return cached
    data = make_thumbnail(png)
    try:
        cache.set(key, data, CACHE_SECONDS)
    except RedisError:
        log.warning("thumbnail cache unavailable", exc_info=True)
    return data
