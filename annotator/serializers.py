"""API shapes: output serializers, and input serializers that validate once and return typed content."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotator import birads, exporting, geometry, importing, permissions, redaction, smart_contour, workflow
from annotator.models import (
    PATIENT_CODE,
    PROVENANCE_FIELDS,
    AuditEvent,
    DescriptorMode,
    Image,
    Lesion,
    MaskLayer,
    Patient,
    Remark,
    Review,
    Status,
)

_DATETIME = serializers.DateTimeField()


def _when(value) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


class LesionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Lesion
        fields = ["id", "index", "label", "points", "holes", "area_px", "descriptors"]

    def to_representation(self, lesion: Lesion) -> dict:
        # Every autosave answers with its layer: written out, this is several times faster than
        # DRF's field-by-field machinery (the fields above still document it and are tested equal).
        return {
            "id": lesion.pk,
            "index": lesion.index,
            "label": lesion.label,
            "points": lesion.points,
            "holes": lesion.holes,
            "area_px": lesion.area_px,
            "descriptors": lesion.descriptors,
        }


class LayerSerializer(serializers.ModelSerializer):
    author = serializers.SlugRelatedField(slug_field="username", read_only=True)
    lesions = LesionSerializer(many=True, read_only=True)

    def to_representation(self, layer: MaskLayer) -> dict:
        """The same as the declared fields give (a test compares them), without DRF's per-field cost."""
        return {
            "id": layer.pk,
            "image": layer.image_id,
            "author": layer.author.get_username(),
            "revision": layer.revision,
            "reader": layer.reader,
            "status": layer.status,
            "version": layer.version,
            "source": layer.source,
            "is_normal": layer.is_normal,
            "doppler": layer.doppler,
            "marks": layer.marks,
            "combined": layer.combined,
            "note": layer.note,
            "assessment": layer.assessment,
            "lesions": [LESION.to_representation(lesion) for lesion in layer.lesions.all()],
            "based_on": layer.based_on_id,
            "created_at": _when(layer.created_at),
            "updated_at": _when(layer.updated_at),
            "submitted_at": _when(layer.submitted_at),
        }

    class Meta:
        model = MaskLayer
        fields = [
            "id",
            "image",
            "author",
            "revision",
            "reader",
            "status",
            "version",
            "source",
            "is_normal",
            "doppler",
            "marks",
            "combined",
            "note",
            "assessment",
            "lesions",
            "based_on",
            "created_at",
            "updated_at",
            "submitted_at",
        ]


LESION = LesionSerializer()


class RemarkSerializer(serializers.ModelSerializer):
    class Meta:
        model = Remark
        fields = ["x", "y", "lesion", "text"]


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True)
    remarks = RemarkSerializer(many=True, read_only=True)

    class Meta:
        model = Review
        fields = ["id", "image", "layer", "decision", "comment", "dice", "reviewer", "created_at", "remarks"]


class ImageListSerializer(serializers.ModelSerializer):
    patient = serializers.SlugRelatedField(slug_field="code", read_only=True)
    annotator = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    second_annotator = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Image
        fields = [
            "id",
            "name",
            "patient",
            "width",
            "height",
            "pixel_spacing_mm",
            "status",
            "annotator",
            "second_annotator",
            "doppler",
            "marks",
            "combined",
            "consensus",
            "updated_at",
        ]


class ImageDetailSerializer(ImageListSerializer):
    open_layer = serializers.SerializerMethodField()
    consensus = serializers.SerializerMethodField()
    previous_layer = serializers.SerializerMethodField()
    reviews = serializers.SerializerMethodField()
    readings = serializers.SerializerMethodField()
    reading_agreement = serializers.SerializerMethodField()
    can_annotate = serializers.SerializerMethodField()
    can_review = serializers.SerializerMethodField()
    can_adjudicate = serializers.SerializerMethodField()
    next_id = serializers.SerializerMethodField()

    class Meta(ImageListSerializer.Meta):
        fields = [
            *ImageListSerializer.Meta.fields,
            # calibration and provenance (DICOM imports): allow-listed values only, never identifying
            *PROVENANCE_FIELDS,
            "open_layer",
            "previous_layer",
            "reviews",
            "readings",
            "reading_agreement",
            "can_annotate",
            "can_review",
            "can_adjudicate",
            "next_id",
        ]

    def _ctx(self, key):
        return self.context.get(key)

    def get_open_layer(self, obj) -> dict | None:
        layer = self._ctx("open_layer")
        return LayerSerializer(layer).data if layer else None

    def get_consensus(self, obj) -> dict | None:
        return LayerSerializer(obj.consensus).data if obj.consensus_id else None

    def get_previous_layer(self, obj) -> dict | None:
        layer = self._ctx("previous_layer")
        return LayerSerializer(layer).data if layer else None

    def get_reviews(self, obj) -> list[dict]:
        reviews = self._ctx("reviews")  # filtered by annotator.permissions (blind double reading)
        if reviews is None:
            reviews = obj.reviews.prefetch_related("remarks").select_related("reviewer")
        return ReviewSerializer(reviews, many=True).data

    def get_readings(self, obj) -> list[dict]:
        """Blind double reading: the open layer of each reader the user may see (reader 1 first)."""
        return [LayerSerializer(layer).data for layer in self._ctx("readings") or []]

    @extend_schema_field({"type": "object", "nullable": True})
    def get_reading_agreement(self, obj) -> dict | None:
        """Both readings submitted: their agreement (annotator.agreement.compare_layers, reader 1 first)."""
        return self._ctx("reading_agreement")

    def get_can_adjudicate(self, obj) -> bool:
        return bool(self._ctx("can_adjudicate"))

    def get_can_annotate(self, obj) -> bool:
        return bool(self._ctx("can_annotate"))

    def get_can_review(self, obj) -> bool:
        return bool(self._ctx("can_review"))

    def get_next_id(self, obj) -> int | None:
        return self._ctx("next_id")


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)
    image = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "image", "layer", "action", "from_status", "to_status", "detail"]


# --- inputs -----------------------------------------------------------------------------------
# One validation pass: an input serializer returns the typed content the workflow takes
# (``LayerContent``, ``RemarkContent``), so nothing downstream re-checks types. Serializers that
# check geometry need the image in their context: ``Serializer(data=..., context={"image": image})``.


class IdInput(serializers.Serializer):
    """A database id from a query string: ASCII digits, within the column's range."""

    id = serializers.RegexField(r"\A[0-9]{1,18}\Z", error_messages={"invalid": "must be a number (an id)"})

    def validate_id(self, value: str) -> int:
        return int(value)


class RawField(serializers.Field):
    """A JSON value passed on untouched: geometry checks it once, in one linear pass."""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["label", "points"],
            "properties": {
                "label": {"type": "string", "enum": list(geometry.LABELS)},
                "points": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                "holes": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                },
                "descriptors": {
                    "type": "object",
                    "description": "BI-RADS descriptors (annotator.birads.LEXICON): one value, or a list for "
                    "margin, calcifications and associated_features",
                    "properties": {
                        key: (
                            {"type": "array", "items": {"type": "string", "enum": list(d.values)}}
                            if d.multi
                            else {"type": "string", "enum": list(d.values)}
                        )
                        for key, d in birads.LEXICON.items()
                    },
                },
            },
        },
    }
)
class LesionsField(RawField):
    """Lesions as ``[{label, points: [[x, y], ...], holes?: [ring, ...], descriptors?: {...}}]`` in image pixels."""


@extend_schema_field({"type": "string", "enum": ["", *birads.ASSESSMENT_CATEGORIES]})
class AssessmentField(RawField):
    """The image's BI-RADS assessment category, or "" for none."""


class LayerContentInput(serializers.Serializer):
    lesions = LesionsField(required=False, default=list)
    is_normal = serializers.BooleanField(required=False, default=False)
    doppler = serializers.BooleanField(required=False, default=False)
    marks = serializers.BooleanField(required=False, default=False)
    combined = serializers.BooleanField(required=False, default=False)
    note = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=workflow.MAX_NOTE, trim_whitespace=False
    )
    assessment = AssessmentField(required=False, default="")

    def validate(self, attrs):
        return self.content(attrs)

    def content(self, attrs, image=None) -> workflow.LayerContent:
        """The typed content, the drawing checked against ``image`` (default: the context's)."""
        image = self.context["image"] if image is None else image
        try:
            lesions = geometry.validate_lesions(attrs.get("lesions", []), image.width, image.height)
        except geometry.ContourError as e:
            extra = {} if e.index is None else {"lesion": e.index}
            raise workflow.InvalidContent(e.message, rule=e.rule, **extra) from None
        if attrs["is_normal"] and lesions:
            raise workflow.InvalidContent("an image marked normal cannot have lesions", rule="normal_with_lesions")
        # BI-RADS descriptors, checked against the lexicon whatever the curator's setting (stored
        # descriptors survive the setting being turned off; the setting decides what is asked for).
        for i, (lesion, raw) in enumerate(zip(lesions, attrs.get("lesions", []), strict=True)):
            try:
                lesion.descriptors = birads.validate_descriptors(raw.get("descriptors"))
            except birads.DescriptorError as e:
                raise workflow.InvalidContent(
                    f"lesion {i + 1}: {e.message}", rule=e.rule, lesion=i, descriptor=e.key
                ) from None
        try:
            assessment = birads.validate_assessment(attrs.get("assessment"))
        except birads.DescriptorError as e:
            raise workflow.InvalidContent(e.message, rule=e.rule) from None
        return workflow.LayerContent(
            lesions=lesions,
            is_normal=attrs["is_normal"],
            doppler=attrs["doppler"],
            marks=attrs["marks"],
            combined=attrs["combined"],
            note=attrs["note"],
            assessment=assessment,
        )


class SaveLayerInput(LayerContentInput):
    """The body of a save, validated in one pass except the drawing: its geometry (and the point
    caps) are checked by ``content(attrs, image)``, which the workflow calls only once it has
    locked the layer and knows the user may edit it, so a user who may not never buys that work."""

    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1)

    def validate(self, attrs):
        return attrs


class VersionInput(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False)


class ApproveInput(VersionInput):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


class RemarkInput(serializers.Serializer):
    x = serializers.FloatField(required=False, allow_null=True, default=None)
    y = serializers.FloatField(required=False, allow_null=True, default=None)
    lesion = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    text = serializers.CharField(max_length=2000)

    def validate(self, attrs) -> workflow.RemarkContent:
        x, y = attrs["x"], attrs["y"]
        if (x is None) != (y is None):
            raise serializers.ValidationError("a remark needs both x and y, or neither")
        image = self.context["image"]
        if x is not None and not (0 <= x <= image.width - 1 and 0 <= y <= image.height - 1):
            raise serializers.ValidationError("the remark's point is outside the image")
        return workflow.RemarkContent(text=attrs["text"], x=x, y=y, lesion_id=attrs["lesion"])


class SendBackInput(VersionInput):
    comment = serializers.CharField(max_length=4000)
    remarks = RemarkInput(many=True, required=False, default=list)


class EditApproveInput(ApproveInput):
    layer = LayerContentInput()


class AdjudicateInput(serializers.Serializer):
    """Approve one reader's layer (its id) as the consensus."""

    layer = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)


class AdjudicateEditInput(serializers.Serializer):
    """The adjudicator's drawing, started from one reader's layer (its id), ``union`` or ``intersection``."""

    start_from = serializers.RegexField(
        r"\A(union|intersection|[0-9]{1,18})\Z",
        error_messages={"invalid": "a reader's layer id, union or intersection"},
    )
    layer = LayerContentInput()
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)

    def validate_start_from(self, value: str) -> int | str:
        return int(value) if value.isdigit() else value


class ReturnReadingInput(serializers.Serializer):
    """Send one or both readings (layer ids) back to their readers, with a comment."""

    layers = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=2
    )
    comment = serializers.CharField(max_length=4000)


class CombineInput(serializers.Serializer):
    operation = serializers.ChoiceField(choices=["union", "intersection"])


class ReopenInput(serializers.Serializer):
    reason = serializers.CharField(max_length=4000)


def annotator_named(username: str | None):
    """The active annotator of that name, None for no name, or a validation error saying why not."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise serializers.ValidationError(f"no user {username}")
    if not permissions.may_be_assigned(user):
        raise serializers.ValidationError(f"{username} is not an annotator")
    return user


class AssignInput(serializers.Serializer):
    """Images (by id) and whole patients (by code) to one annotator, or to nobody (null or ""), or,
    with ``second_annotator``, to two annotators for blind double reading.

    The page's form and the API both go through here. Validated data:
    ``{"image_ids": [...], "annotator": User | None, "second_annotator": User | None}``.
    """

    images = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False, default=list
    )
    patients = serializers.ListField(child=serializers.CharField(max_length=4), required=False, default=list)
    annotator = serializers.CharField(allow_null=True, allow_blank=True, max_length=150)
    second_annotator = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, default=None, max_length=150
    )

    def validate_patients(self, codes: list[str]) -> list[str]:
        codes = [c.upper() for c in codes]
        for code in codes:
            PATIENT_CODE(code)
        return codes

    def validate_annotator(self, username: str | None):
        return annotator_named(username)

    def validate_second_annotator(self, username: str | None):
        return annotator_named(username)

    def validate(self, attrs):
        first, second = attrs["annotator"], attrs.get("second_annotator")
        if second is not None and (first is None or first.pk == second.pk):
            raise serializers.ValidationError(
                {"second_annotator": "blind double reading needs two different annotators"}
            )
        ids = set(attrs["images"])
        known = set(Image.objects.filter(pk__in=ids).values_list("pk", flat=True))
        if ids - known:
            raise serializers.ValidationError({"images": f"no image with id {min(ids - known)}"})
        patients = set(attrs["patients"])
        found = dict(Patient.objects.filter(code__in=patients).values_list("code", "pk"))
        if patients - set(found):
            raise serializers.ValidationError({"patients": f"no patient {sorted(patients - set(found))[0]}"})
        ids |= set(Image.objects.filter(patient__code__in=patients).values_list("pk", flat=True))
        if not ids:
            raise serializers.ValidationError({"images": "name at least one image or patient"})
        return {"image_ids": sorted(ids), "annotator": first, "second_annotator": second}


class ImportInput(serializers.Serializer):
    """The import form's choices. Validated data: an ``importing.ImportOptions``."""

    as_status = serializers.ChoiceField(
        choices=[Status.DRAFT, Status.SUBMITTED, Status.APPROVED], required=False, default=Status.APPROVED
    )
    annotator = serializers.CharField(required=False, allow_blank=True, max_length=150)
    # DICOM: "key" (default), "all", or 1-based frame numbers "1,5,9"
    frames = serializers.CharField(required=False, allow_blank=True, default=importing.FRAMES_KEY, max_length=2000)
    # DICOM: modalities allowed besides US, e.g. "MG,CR" (refused unless listed here)
    allow_modalities = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    # The source's layout: auto (recognised by its files), bus-uclm (and DICOM), busi, breast, bus-bra
    dataset = serializers.ChoiceField(choices=importing.DATASET_CHOICES, required=False, default=importing.AUTO)

    def validate_frames(self, value: str) -> str | list[int]:
        return parse_frames(value)

    def validate_allow_modalities(self, value: str) -> tuple[str, ...]:
        return parse_modalities(value)

    def validate_annotator(self, username: str):
        return annotator_named(username)

    def validate(self, attrs) -> importing.ImportOptions:
        if attrs["as_status"] == Status.DRAFT and not attrs.get("annotator"):
            raise serializers.ValidationError("importing as draft needs the annotator who will own the drafts")
        return importing.ImportOptions(
            as_status=attrs["as_status"],
            annotator=attrs.get("annotator"),
            frames=attrs.get("frames", importing.FRAMES_KEY),
            allow_modalities=attrs.get("allow_modalities", ()),
            dataset=attrs.get("dataset", importing.AUTO),
        )


MAX_FRAME_NUMBERS = 500


def parse_frames(value: str) -> str | list[int]:
    """'key' / '' -> 'key'; 'all' -> 'all'; '1,5,9' -> [1, 5, 9] (1-based, as DICOM numbers frames)."""
    text = (value or "").strip().lower()
    if text in ("", importing.FRAMES_KEY):
        return importing.FRAMES_KEY
    if text == importing.FRAMES_ALL:
        return importing.FRAMES_ALL
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or len(parts) > MAX_FRAME_NUMBERS or not all(p.isascii() and p.isdigit() for p in parts):
        raise serializers.ValidationError(
            f"frames is 'key', 'all' or up to {MAX_FRAME_NUMBERS} frame numbers from 1, e.g. '1,5,9'"
        )
    numbers = [int(p) for p in parts]
    if min(numbers) < 1:
        raise serializers.ValidationError("frame numbers start at 1")
    return numbers


def parse_modalities(value: str) -> tuple[str, ...]:
    codes = tuple(dict.fromkeys(c.strip().upper() for c in (value or "").split(",") if c.strip()))
    bad = [c for c in codes if not (c.isascii() and c.isalpha() and 2 <= len(c) <= 4)]
    if bad:
        raise serializers.ValidationError("modalities are DICOM codes of 2-4 letters, e.g. 'MG,CR'")
    return codes


class RedactInput(serializers.Serializer):
    """Black boxes for an image in redaction. Validated data: ``{"boxes": [Box], "apply_to_group": bool}``;
    the image (for its size) comes in the context."""

    boxes = serializers.JSONField()
    apply_to_group = serializers.BooleanField(required=False, default=False)

    def validate_boxes(self, value):
        image = self.context["image"]
        try:
            return redaction.validate_boxes(value, image.width, image.height)
        except ValueError as e:
            raise serializers.ValidationError(str(e)) from None


class SettingsInput(serializers.Serializer):
    descriptors = serializers.ChoiceField(choices=DescriptorMode.choices)


class ExportInput(serializers.Serializer):
    """Export choices (query string, form or JSON). Validated data: an ``exporting.ExportOptions``."""

    formats = serializers.CharField(required=False, default="bus-uclm,coco", max_length=200)
    patients = serializers.CharField(required=False, default="", allow_blank=True, max_length=20000)
    exclude_doppler = serializers.BooleanField(required=False, default=False)
    exclude_marks = serializers.BooleanField(required=False, default=False)
    exclude_combined = serializers.BooleanField(required=False, default=False)

    def validate_formats(self, value: str) -> list[str]:
        formats = list(dict.fromkeys(_csv(value)))
        unknown = [f for f in formats if f not in exporting.FORMATS]
        if unknown or not formats:
            raise serializers.ValidationError(f"known formats: {', '.join(sorted(exporting.FORMATS))}")
        return formats

    def validate_patients(self, value: str) -> list[str]:
        return _patient_codes(value)

    def validate(self, attrs) -> exporting.ExportOptions:
        return exporting.ExportOptions(**attrs)


class ProposeInput(serializers.Serializer):
    box = serializers.ListField(child=serializers.FloatField(), min_length=4, max_length=4, required=False)
    point = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2, required=False)
    # The reader's corrections to a proposal (clicks, or strokes sampled along their path), each [x, y].
    inside = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        max_length=smart_contour.MAX_CORRECTIONS,
        required=False,
    )
    outside = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
        max_length=smart_contour.MAX_CORRECTIONS,
        required=False,
    )


class ProposalSerializer(serializers.Serializer):
    points = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _patient_codes(value: str) -> list[str]:
    """Comma-separated patient codes, upper-cased, each four capital letters."""
    codes = [c.upper() for c in _csv(value)]
    for code in codes:
        PATIENT_CODE(code)
    return codes


class ImageFilterInput(serializers.Serializer):
    """Query-string filters of image lists (API and curator pages); CharField refuses NUL bytes."""

    status = serializers.CharField(required=False, allow_blank=True, max_length=200)
    patient = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    search = serializers.CharField(required=False, allow_blank=True, max_length=64)

    def validate_status(self, value: str) -> list[str]:
        statuses = _csv(value)
        unknown = [s for s in statuses if s not in Status.values]
        if unknown:
            raise serializers.ValidationError(f"unknown status {unknown[0]!r}; one of {', '.join(Status.values)}")
        return statuses

    def validate_patient(self, value: str) -> list[str]:
        return _patient_codes(value)


class AuditFilterInput(serializers.Serializer):
    image = serializers.CharField(required=False, allow_blank=True, max_length=64)


class AgreementFilterInput(serializers.Serializer):
    """Filters of the agreement page: patient codes (comma-separated) and decision dates (UTC, inclusive)."""

    patient = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    date_from = serializers.DateField(required=False, allow_null=True)
    date_to = serializers.DateField(required=False, allow_null=True)

    def to_internal_value(self, data):
        # An empty date field of the form means no bound, not a malformed date.
        data = {k: v for k, v in data.items() if not (k in ("date_from", "date_to") and v == "")}
        return super().to_internal_value(data)

    def validate_patient(self, value: str) -> list[str]:
        return _patient_codes(value)

    def validate(self, attrs: dict) -> dict:
        start, end = attrs.get("date_from"), attrs.get("date_to")
        if start and end and start > end:
            raise serializers.ValidationError({"date_to": "must not be before date_from"})
        return attrs
