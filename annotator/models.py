"""The dataset: patients, images, readers' mask layers, lesions, reviews and the audit log.

Only ``annotator.workflow`` changes an image's or a layer's status; everything else reads.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q

from annotator import birads, geometry

PATIENT_CODE = RegexValidator(r"^[A-Z]{4}$", "A patient code is four capital letters (BUS-UCLM convention).")
# [0-9], not \d (which also takes other scripts' digits); \Z, not $ (which allows a trailing newline).
IMAGE_NAME = RegexValidator(r"^[A-Z]{4}_[0-9]{3,}\.png\Z", "An image name is XXXX_YYY.png (patient code, number).")


class Patient(models.Model):
    code = models.CharField(max_length=4, unique=True, validators=[PATIENT_CODE])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class PatientKey(models.Model):
    """A source patient's keyed hash (HMAC-SHA256 with settings.PATIENT_KEY_SECRET, kept outside the
    database) -> the patient's code, so the same source patient imported again gets the same code.
    Without the secret the hash cannot be reversed or confirmed by guessing IDs."""

    key = models.CharField(max_length=64, unique=True)
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="source_keys")

    def __str__(self) -> str:
        return f"key of {self.patient.code}"


class Status(models.TextChoices):
    """Where an image stands in the two-reader loop (``redaction``: imported from DICOM, waiting for
    a curator to black out burned-in text; no reader sees it). Blind double reading (an image with
    a ``second_annotator``) uses ``double_reading`` while its two readers draw and ``adjudication``
    once both have submitted, instead of draft / submitted / returned."""

    REDACTION = "redaction", "Redaction"
    NEW = "new", "New"
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    RETURNED = "returned", "Returned"
    APPROVED = "approved", "Approved"
    DOUBLE_READING = "double_reading", "Double reading"
    ADJUDICATION = "adjudication", "Adjudication"


class ImageQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "view") -> ImageQuerySet:
        """The images of this queryset on which ``user`` may do ``action`` (annotator.permissions)."""
        from annotator import permissions  # permissions reads these models

        return permissions.restrict(self, user, action)


class Image(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="images")
    name = models.CharField(max_length=64, unique=True, validators=[IMAGE_NAME])
    number = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # mm per pixel. pixel_spacing_mm is the one figure the app uses for lengths and areas: the
    # geometric mean of X and Y when both are known (so px area x spacing² is exact), else as imported.
    pixel_spacing_mm = models.FloatField(null=True, blank=True)
    pixel_spacing_x_mm = models.FloatField(null=True, blank=True)
    pixel_spacing_y_mm = models.FloatField(null=True, blank=True)
    spacing_source = models.CharField(max_length=32, blank=True)
    # Where the stored image sat in the source frame (DICOM crop to the tissue region).
    crop_x = models.PositiveIntegerField(null=True, blank=True)
    crop_y = models.PositiveIntegerField(null=True, blank=True)
    # Allow-listed, non-identifying header values (annotator.dicom.header_summary).
    acquisition = models.JSONField(default=dict, blank=True)
    # HMAC of the SOP Instance UID (never the UID) and the 0-based frame: a re-import is recognised.
    source_key = models.CharField(max_length=64, blank=True, db_index=True)
    source_frame = models.PositiveIntegerField(null=True, blank=True)
    # Burned-in text found on import: [{x, y, w, h, confidence, length}], numbers only, never text.
    # Burned-in text boxes found in a DICOM image (numbers only, never text); None while the
    # search has not run yet (annotator.text_search).
    text_boxes = models.JSONField(default=list, blank=True, null=True)
    checksum = models.CharField(max_length=64, db_index=True, help_text="SHA-256 of the PNG bytes")
    # Images imported from a public dataset (annotator.importing.public): which dataset, the file's
    # name in the published release and its licence (exported in sources.csv so users can honour
    # it), and the dataset's own per-image values (class, BI-RADS columns, published folds...).
    source_dataset = models.CharField(max_length=32, blank=True, db_index=True)
    source_file = models.CharField(max_length=255, blank=True)
    source_licence = models.CharField(max_length=64, blank=True)
    source_metadata = models.JSONField(default=dict, blank=True)
    # Consensus metadata (as in INFO.csv); copied from the approved layer on approval.
    doppler = models.BooleanField(default=False)
    marks = models.BooleanField(default=False)
    combined = models.BooleanField(default=False)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW, db_index=True)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="assigned_images"
    )
    # Set for blind double reading: the second of two independent readers (``annotator`` is the first).
    second_annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="second_read_images"
    )
    consensus = models.OneToOneField(
        "MaskLayer", null=True, blank=True, on_delete=models.PROTECT, related_name="consensus_of"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=Status.APPROVED) | Q(consensus__isnull=False), name="approved_has_consensus"
            ),
            models.CheckConstraint(condition=Q(width__gt=0) & Q(height__gt=0), name="image_has_size"),
            models.CheckConstraint(
                condition=Q(second_annotator__isnull=True)
                | (Q(annotator__isnull=False) & ~Q(second_annotator=F("annotator"))),
                name="two_different_readers",
            ),
            models.CheckConstraint(
                condition=Q(pixel_spacing_mm__isnull=True) | Q(pixel_spacing_mm__gt=0), name="spacing_positive"
            ),
            models.CheckConstraint(
                condition=(Q(pixel_spacing_x_mm__isnull=True) | Q(pixel_spacing_x_mm__gt=0))
                & (Q(pixel_spacing_y_mm__isnull=True) | Q(pixel_spacing_y_mm__gt=0)),
                name="spacing_xy_positive",
            ),
            models.UniqueConstraint(
                fields=["source_key", "source_frame"], condition=~Q(source_key=""), name="one_image_per_source_frame"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_double_read(self) -> bool:
        return self.second_annotator_id is not None

    def reader_slot(self, user) -> int:
        """1 for the (first) annotator, 2 for the second reader of a double reading."""
        return 2 if self.second_annotator_id is not None and self.second_annotator_id == user.pk else 1


# What a DICOM import stores about an image besides its pixels: allow-listed values and keyed
# hashes only (shown read-only in the admin and in the image's API detail).
PROVENANCE_FIELDS = [
    "pixel_spacing_x_mm",
    "pixel_spacing_y_mm",
    "spacing_source",
    "crop_x",
    "crop_y",
    "acquisition",
    "text_boxes",
    "source_dataset",
    "source_file",
    "source_licence",
    "source_metadata",
]


class ImageData(models.Model):
    """The PNG bytes, kept apart so that lists of images never load pixels by accident."""

    image = models.OneToOneField(Image, primary_key=True, on_delete=models.CASCADE, related_name="data")
    png = models.BinaryField()


class LayerStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    RETURNED = "returned", "Returned"
    APPROVED = "approved", "Approved"
    SUPERSEDED = "superseded", "Superseded"


OPEN_LAYER_STATUSES = [LayerStatus.DRAFT, LayerStatus.SUBMITTED]


class MaskLayer(models.Model):
    """One reader's drawing of one image at one revision. Immutable once submitted."""

    class Source(models.TextChoices):
        DRAWN = "drawn", "Drawn in BUS Review"
        IMPORTED = "imported", "Imported mask"
        REVIEWER_EDIT = "reviewer_edit", "Edited by the reviewer"

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="layers")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="layers")
    revision = models.PositiveIntegerField()
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.DRAWN)
    status = models.CharField(max_length=16, choices=LayerStatus.choices, default=LayerStatus.DRAFT)
    # Which reader's drawing this is: 1 (the annotator, and every layer of single reading, reviewers'
    # edits included) or 2 (the second reader of a blind double reading).
    reader = models.PositiveSmallIntegerField(default=1)
    # Bumped by every save; a save must name the version it was based on (optimistic locking).
    version = models.PositiveIntegerField(default=1)
    is_normal = models.BooleanField(default=False)
    doppler = models.BooleanField(default=False)
    marks = models.BooleanField(default=False)
    combined = models.BooleanField(default=False)
    note = models.TextField(blank=True, max_length=4000)
    # BI-RADS assessment category of the image (birads.ASSESSMENT_CATEGORIES); blank when not assessed.
    assessment = models.CharField(max_length=2, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["image", "revision"]
        constraints = [
            models.UniqueConstraint(fields=["image", "revision"], name="one_layer_per_revision"),
            models.UniqueConstraint(
                fields=["image", "reader"],
                condition=Q(status__in=OPEN_LAYER_STATUSES),
                name="one_open_layer_per_image_and_reader",
            ),
            models.CheckConstraint(
                condition=Q(assessment__in=("", *birads.ASSESSMENT_CATEGORIES)), name="layer_assessment_valid"
            ),
            models.CheckConstraint(condition=Q(reader__in=[1, 2]), name="layer_reader_1_or_2"),
        ]

    def __str__(self) -> str:
        return f"{self.image.name} r{self.revision} ({self.status})"

    def geometry_lesions(self) -> list[geometry.Lesion]:
        return [les.as_geometry() for les in self.lesions.all()]


class Lesion(models.Model):
    class Label(models.TextChoices):
        BENIGN = geometry.BENIGN, "Benign"
        MALIGNANT = geometry.MALIGNANT, "Malignant"

    layer = models.ForeignKey(MaskLayer, on_delete=models.CASCADE, related_name="lesions")
    index = models.PositiveIntegerField()
    label = models.CharField(max_length=16, choices=Label.choices)
    points = models.JSONField(help_text="Outer contour: [[x, y], ...] in image pixels")
    holes = models.JSONField(default=list, blank=True, help_text="Hole contours: [[[x, y], ...], ...]")
    # Painted pixels (the COCO area), counted when the layer is submitted or approved; empty on drafts.
    area_px = models.PositiveIntegerField(null=True, blank=True)
    # BI-RADS descriptors in birads.validate_descriptors' canonical form; {} when not described.
    descriptors = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["layer", "index"]
        constraints = [
            models.UniqueConstraint(fields=["layer", "index"], name="lesion_index_unique"),
            models.CheckConstraint(condition=Q(label__in=geometry.LABELS), name="lesion_label_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.label} lesion {self.index} of {self.layer}"

    def as_geometry(self) -> geometry.Lesion:
        return geometry.Lesion(label=self.label, points=self.points, holes=self.holes, descriptors=self.descriptors)


class Review(models.Model):
    """A second reader's decision on a submitted layer (or a curator's reopening)."""

    class Decision(models.TextChoices):
        APPROVED = "approved", "Approved"
        EDITED_APPROVED = "edited_approved", "Edited and approved"
        RETURNED = "returned", "Sent back"
        REOPENED = "reopened", "Reopened by a curator"
        # Blind double reading: the adjudicator settled the consensus; one per reader's layer, with
        # the Dice of that layer against the consensus.
        ADJUDICATED = "adjudicated", "Adjudicated"

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="reviews")
    layer = models.ForeignKey(MaskLayer, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews")
    # Denormalised so the database itself can refuse self-review.
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Blind double reading: the other reader, denormalised too, so the database refuses an
    # adjudicator who is either reader.
    other_reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=16, choices=Decision.choices)
    comment = models.TextField(blank=True, max_length=4000)
    # Inter-reader agreement: Dice of the annotator's mask and the approved mask (1.0 when approved
    # unchanged); empty for send-backs and reopenings.
    dice = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image", "created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision="reopened") | ~Q(reviewer=F("annotator")), name="reviewer_is_not_annotator"
            ),
            models.CheckConstraint(
                condition=Q(other_reader__isnull=True) | ~Q(reviewer=F("other_reader")),
                name="adjudicator_is_neither_reader",
            ),
            models.CheckConstraint(
                condition=~Q(decision__in=["returned", "reopened"]) | ~Q(comment=""), name="send_back_has_comment"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} {self.image.name} by {self.reviewer_id}"


class Remark(models.Model):
    """A review comment pinned to a point on the image and/or to a lesion."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="remarks")
    x = models.FloatField(null=True, blank=True)
    y = models.FloatField(null=True, blank=True)
    lesion = models.ForeignKey(Lesion, null=True, blank=True, on_delete=models.SET_NULL, related_name="remarks")
    text = models.TextField(max_length=2000)

    class Meta:
        ordering = ["review", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(x__isnull=True) & Q(y__isnull=True)) | (Q(x__isnull=False) & Q(y__isnull=False)),
                name="remark_point_complete",
            )
        ]

    def __str__(self) -> str:
        return self.text[:40]


class AuditEvent(models.Model):
    """Who did what to which image, when. Written in the same transaction as the change."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    image = models.ForeignKey(Image, null=True, on_delete=models.CASCADE, related_name="events")
    layer = models.ForeignKey(MaskLayer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=32)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.from_status}->{self.to_status}"


class Agreement(models.Model):
    """How far two layers of one image agree, stored when a layer is approved so that pages and
    exports never recompute it (``annotator.agreement_records``; the definitions are those of
    ``annotator.agreement``). For a submission-vs-consensus pair the first layer is the annotator's
    submission (or a blind reading), the second the approved layer (the same layer when the reviewer
    approved it unchanged); for a readers pair, reader 1's and reader 2's blind readings."""

    class Kind(models.TextChoices):
        SUBMISSION_CONSENSUS = "submission_consensus", "Submission vs consensus"
        # Blind double reading: reader 1's reading vs reader 2's, stored when the adjudicator decides.
        READERS = "readers", "Reader vs reader (blind double reading)"

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="agreements")
    # The review that decided the pair (for a readers pair: the adjudication review of reader 1's reading).
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="agreements")
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.SUBMISSION_CONSENSUS)
    first_layer = models.ForeignKey(MaskLayer, on_delete=models.CASCADE, related_name="+")
    second_layer = models.ForeignKey(MaskLayer, on_delete=models.CASCADE, related_name="+")
    first_reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    second_reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # 1 for the first submission reviewed, +1 for each send-back before it (counted afresh after a reopening).
    round = models.PositiveIntegerField()
    decided_at = models.DateTimeField(db_index=True)
    unit = models.CharField(max_length=2)  # "mm" with a pixel spacing, else "px"
    spacing_x_mm = models.FloatField(null=True, blank=True)
    spacing_y_mm = models.FloatField(null=True, blank=True)
    dice = models.FloatField()
    iou = models.FloatField()
    # None when exactly one of the two masks is empty (distances undefined).
    hausdorff = models.FloatField(null=True, blank=True)
    hd95 = models.FloatField(null=True, blank=True)
    assd = models.FloatField(null=True, blank=True)
    # {"benign": {"dice", "iou", "first_pixels", "second_pixels"}, "malignant": {...}}
    per_label = models.JSONField(default=dict)
    first_label = models.CharField(max_length=16)  # Normal, Benign or Malignant, as in INFO.csv
    second_label = models.CharField(max_length=16)
    normal_lesion_disagreement = models.BooleanField(default=False)
    lesions_matched = models.PositiveIntegerField()
    lesions_added = models.PositiveIntegerField()  # drawn in the second layer only
    lesions_missed = models.PositiveIntegerField()  # drawn in the first layer only
    label_flips = models.PositiveIntegerField()
    # LesionMatch.as_dict() of each matched pair, and the unmatched lesions' indices.
    matches = models.JSONField(default=list)
    missed = models.JSONField(default=list)
    added = models.JSONField(default=list)
    confusion = models.JSONField(default=dict)  # confusion[first label][second label] = matched pairs
    min_iou = models.FloatField()
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["image", "decided_at"]
        constraints = [
            models.CheckConstraint(condition=Q(dice__gte=0) & Q(dice__lte=1), name="agreement_dice_in_range"),
            models.CheckConstraint(condition=Q(unit__in=["mm", "px"]), name="agreement_unit_known"),
            models.UniqueConstraint(fields=["review", "kind"], name="agreement_one_per_review_and_kind"),
        ]

    def __str__(self) -> str:
        return f"agreement {self.image_id} r{self.round}: Dice {self.dice:.3f}"


class DescriptorMode(models.TextChoices):
    OFF = "off", "Off (contours and labels only, the BUS-UCLM workflow)"
    ON = "on", "On (optional)"
    REQUIRED = "required", "Required for submission"


class DatasetSettings(models.Model):
    """Dataset-wide options a curator changes on the settings page; a single row (pk 1).

    Read with ``annotator.dataset_settings.current()`` and changed only through
    ``dataset_settings.set_descriptor_mode`` (which writes an audit event).
    """

    descriptors = models.CharField(max_length=16, choices=DescriptorMode.choices, default=DescriptorMode.OFF)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "dataset settings"
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="dataset_settings_single_row"),
            models.CheckConstraint(
                condition=Q(descriptors__in=[m.value for m in DescriptorMode]), name="dataset_settings_mode_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"descriptors {self.descriptors}"
