"""Named test users and small images, in one place (alice draws, bob reviews, carol curates)."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import PIL.Image
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from annotator import workflow
from annotator.models import Image, ImageData, Patient
from annotator.permissions import ANNOTATOR, CURATOR, REVIEWER

PASSWORD = "correct-horse-battery"


def make_user(username: str, *roles: str, superuser: bool = False):
    user = get_user_model().objects.create_user(
        username=username, password=PASSWORD, is_superuser=superuser, is_staff=superuser
    )
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def alice():
    return make_user("alice", ANNOTATOR)


def bob():
    return make_user("bob", REVIEWER)


def carol():
    return make_user("carol", CURATOR)


def png_bytes(width: int = 96, height: int = 64, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((height, width)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    PIL.Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(buf, format="PNG")
    return buf.getvalue()


def make_image(
    name: str = "AAAA_000.png",
    *,
    width: int = 96,
    height: int = 64,
    annotator=None,
    seed: int = 0,
    pixel_spacing_mm: float | None = None,
) -> Image:
    data = png_bytes(width, height, seed)
    patient, _ = Patient.objects.get_or_create(code=name[:4])
    image = Image.objects.create(
        patient=patient,
        name=name,
        number=int(name[5:8]),
        width=width,
        height=height,
        checksum=hashlib.sha256(data).hexdigest(),
        annotator=annotator,
        pixel_spacing_mm=pixel_spacing_mm,
    )
    ImageData.objects.create(image=image, png=data)
    return image


SQUARE = [[10, 10], [40, 10], [40, 40], [10, 40]]
TRIANGLE = [[50, 5], [90, 5], [70, 50]]


def content(*lesions: tuple[str, list], is_normal: bool = False, **flags) -> workflow.LayerContent:
    from annotator import geometry

    return workflow.LayerContent(
        lesions=[geometry.Lesion(label=label, points=[list(map(float, p)) for p in pts]) for label, pts in lesions],
        is_normal=is_normal,
        **flags,
    )


def submitted_image(annotator, name: str = "AAAA_000.png", **kw) -> Image:
    """An image drawn by ``annotator`` (one malignant square) and submitted."""
    image = make_image(name, annotator=annotator, **kw)
    layer = workflow.start(image_id=image.pk, user=annotator)
    layer = workflow.save_draft(
        layer_id=layer.pk, user=annotator, content=content(("malignant", SQUARE)), expected_version=layer.version
    )
    workflow.submit(layer_id=layer.pk, user=annotator)
    image.refresh_from_db()
    return image
