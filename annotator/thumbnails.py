"""Small previews of the images for the worklists, the review queue and the dataset page.

A thumbnail is the image scaled to fit THUMB_PX (aspect kept, Pillow's Lanczos filter), as PNG.
It is made once per picture and kept in the shared cache under the image's stored checksum (the
SHA-256 every import writes and a redaction renews with the pixels), so a redaction gives a new
thumbnail at once; the same checksum is the HTTP ETag, and a 304 or a cached thumbnail never
reads the picture. Without the cache (Redis down) it is simply made again: a list page never fails for it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

from django.core.cache import cache
from PIL import Image as PILImage
from redis.exceptions import RedisError

THUMB_PX = 160
CACHE_SECONDS = 7 * 24 * 3600

log = logging.getLogger(__name__)


def make_thumbnail(png: bytes, size: int = THUMB_PX) -> bytes:
    """The picture scaled down to fit size x size, as PNG (never scaled up)."""
    with PILImage.open(io.BytesIO(png)) as im:
        im.load()
        small = im.convert("L" if im.mode in ("L", "I", "I;16", "1") else "RGB")
        small.thumbnail((size, size), PILImage.Resampling.LANCZOS)
        out = io.BytesIO()
        small.save(out, format="PNG")
        return out.getvalue()


def thumbnail(checksum: str, load_png: Callable[[], bytes]) -> bytes:
    """The thumbnail of the picture whose checksum is ``checksum``, from the cache when it was made
    before; ``load_png`` reads the picture only when it must be made."""
    key = f"thumb:v2:{checksum}"
    try:
        cached = cache.get(key)
    except RedisError:  # the cache is an optimisation: without Redis, make it again
        log.warning("thumbnail cache unavailable", exc_info=True)
        cached = None
    if cached is not None:
        return cached
    data = make_thumbnail(load_png())
    try:
        cache.set(key, data, CACHE_SECONDS)
    except RedisError:
        log.warning("thumbnail cache unavailable", exc_info=True)
    return data
