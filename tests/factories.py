"""Named test users and small images, in one place.

alice annotates, bob reviews, carol curates, dave both annotates and reviews, erin is another
annotator (a stranger to alice's images) and root is the superuser (the admin role). Tests take
them as fixtures from ``tests/conftest.py``; the functions here are for code that runs outside a
fixture (the browser tests, module-level setups).
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import PIL.Image
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from annotator import workflow
from annotator.models import Image, ImageData, MaskLayer, Patient, Status
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


def dave():
    return make_user("dave", ANNOTATOR, REVIEWER)


def erin():
    return make_user("erin", ANNOTATOR)


def admin():
    # Not "admin": pytest-django's admin_user fixture takes that name.
    return make_user("root", superuser=True)


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
OVERLAPPING_SQUARE = [[25, 20], [60, 20], [60, 50], [25, 50]]  # overlaps SQUARE by a 16 x 21 px corner


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


def image_in(status: str, *, annotator, reviewer, name: str = "AAAA_000.png") -> Image:
    """An image of ``annotator``'s brought to ``status`` through the workflow itself.

    Drafts hold one benign square; ``reviewer`` sends back (returned) or approves (approved).
    """
    image = make_image(name, annotator=annotator)
    if status == Status.NEW:
        return image
    if status == Status.REDACTION:
        # as a DICOM import leaves it: assigned or not, no reader sees it until a curator confirms
        image.text_boxes = [{"x": 2, "y": 2, "w": 20, "h": 8, "confidence": 95.0, "length": 5}]
        workflow.import_for_redaction(image=image, actor=reviewer)
        return image
    layer = workflow.start(image_id=image.pk, user=annotator)
    layer = workflow.save_draft(
        layer_id=layer.pk, user=annotator, content=content(("benign", SQUARE)), expected_version=layer.version
    )
    if status != Status.DRAFT:
        workflow.submit(layer_id=layer.pk, user=annotator)
        if status == Status.RETURNED:
            workflow.send_back(image_id=image.pk, user=reviewer, comment="redo")
        elif status == Status.APPROVED:
            workflow.approve(image_id=image.pk, user=reviewer)
    image.refresh_from_db()
    if image.status != status:
        raise ValueError(f"cannot bring an image to {status!r} (it is {image.status})")
    return image


def double_image_in(
    status: str, *, first, second, adjudicator, curator, name: str = "DUAL_000.png", second_submitted: bool = False
) -> Image:
    """An image read blind by ``first`` and ``second`` brought to ``status`` through the workflow.

    double_reading: ``first`` has a draft (one benign square); ``second`` has not started, or, with
    ``second_submitted``, has submitted a malignant square overlapping the first's. adjudication: both
    submitted.
    approved: ``adjudicator`` approved ``first``'s layer. new/redaction: assigned, nothing drawn.
    """
    image = make_image(name)
    workflow.assign(image_ids=[image.pk], annotator=first, second_annotator=second, user=curator)
    image.refresh_from_db()
    if status == Status.NEW:
        return image
    if status == Status.REDACTION:
        image.text_boxes = [{"x": 2, "y": 2, "w": 20, "h": 8, "confidence": 95.0, "length": 5}]
        workflow.import_for_redaction(image=image, actor=curator)
        return image
    drawn = {}
    readers = [(first, ("benign", SQUARE))]
    if second_submitted or status != Status.DOUBLE_READING:
        readers.append((second, ("malignant", OVERLAPPING_SQUARE)))
    for reader, lesion in readers:
        layer = workflow.start_reading(image_id=image.pk, user=reader)
        drawn[reader.pk] = workflow.save_draft(
            layer_id=layer.pk, user=reader, content=content(lesion), expected_version=layer.version
        )
    if status == Status.DOUBLE_READING:
        if second_submitted:
            workflow.submit_reading(layer_id=drawn[second.pk].pk, user=second)
    else:
        for reader, _ in readers:
            workflow.submit_reading(layer_id=drawn[reader.pk].pk, user=reader)
        if status == Status.APPROVED:
            workflow.adjudicate(image_id=image.pk, user=adjudicator, layer_id=drawn[first.pk].pk)
    image.refresh_from_db()
    if image.status != status:
        raise ValueError(f"cannot bring a double reading to {status!r} (it is {image.status})")
    return image


# --- self-review worlds -------------------------------------------------------------------------
# dave annotates and reviews. Each world ends with a submitted image of alice's (assigned to her)
# that holds a layer dave authored, one per layer source; dave must not review it (issue 7, defect 3).


def dave_drew_then_was_reassigned(*, alice, carol, dave) -> Image:
    """dave drew a draft; a curator handed the image to alice, who submitted it."""
    image = make_image("DRAW_000.png", annotator=dave)
    layer = workflow.start(image_id=image.pk, user=dave)
    workflow.save_draft(
        layer_id=layer.pk, user=dave, content=content(("benign", SQUARE)), expected_version=layer.version
    )
    workflow.assign(image_ids=[image.pk], annotator=alice, user=carol)
    workflow.submit(layer_id=image.layers.get(status=Status.DRAFT).pk, user=alice)
    image.refresh_from_db()
    return image


def dave_imported_then_was_reassigned(*, alice, carol, dave) -> Image:
    """A mask imported as dave's draft, submitted by him; then a curator reassigned the image to alice."""
    image = make_image("IMPT_000.png")
    layer = workflow.create_imported(
        image=image,
        content=content(("malignant", SQUARE)),
        as_status=Status.DRAFT,
        author=None,
        annotator=dave,
        actor=carol,
    )
    workflow.submit(layer_id=layer.pk, user=dave)
    workflow.assign(image_ids=[image.pk], annotator=alice, user=carol)
    image.refresh_from_db()
    return image


def dave_edited_it_as_reviewer(*, alice, carol, dave) -> Image:
    """dave edited and approved alice's drawing; a curator reopened it and alice resubmitted."""
    image = submitted_image(alice, "EDIT_000.png")
    workflow.edit_and_approve(image_id=image.pk, user=dave, content=content(("benign", TRIANGLE)))
    workflow.reopen(image_id=image.pk, user=carol, reason="second opinion")
    layer = workflow.start(image_id=image.pk, user=alice)
    workflow.submit(layer_id=layer.pk, user=alice)
    image.refresh_from_db()
    return image


SELF_REVIEW_WORLDS = {
    MaskLayer.Source.DRAWN: dave_drew_then_was_reassigned,
    MaskLayer.Source.IMPORTED: dave_imported_then_was_reassigned,
    MaskLayer.Source.REVIEWER_EDIT: dave_edited_it_as_reviewer,
}


def write_dataset(root, images: dict, masks: dict | None = None, info: bytes | str | None = None):
    """A BUS-UCLM-layout folder: images/, masks/ (when given) and INFO.csv (text gets the BOM)."""
    (root / "images").mkdir(parents=True)
    for name, data in images.items():
        (root / "images" / name).write_bytes(data)
    if masks is not None:
        (root / "masks").mkdir()
        for name, data in masks.items():
            (root / "masks" / name).write_bytes(data)
    if info is not None:
        (root / "INFO.csv").write_bytes(("\ufeff" + info).encode() if isinstance(info, str) else info)
    return root


def run_import(path, *args) -> str:
    """``import_dataset``'s report; it exits with an error only when nothing at all could be imported."""
    import io

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    try:
        call_command("import_dataset", str(path), *args, stdout=out, stderr=io.StringIO())
    except CommandError as e:
        assert str(e) == "nothing could be imported"
        assert "imported 0, unchanged 0" in out.getvalue()
    return out.getvalue()
