"""annotator.birads: the lexicon as data, descriptor and assessment validation, and storage."""

import pytest
from django.db import IntegrityError, transaction

from annotator import birads
from annotator.birads import DescriptorError
from annotator.models import Lesion, MaskLayer
from tests.factories import make_image


def test_it_holds_the_fifth_edition_lexicon():
    assert list(birads.LEXICON) == [
        "shape",
        "orientation",
        "margin",
        "echo_pattern",
        "posterior_features",
        "calcifications",
        "associated_features",
    ]
    assert list(birads.LEXICON["shape"].values) == ["oval", "round", "irregular"]
    assert list(birads.LEXICON["margin"].values) == [
        "circumscribed",
        "indistinct",
        "angular",
        "microlobulated",
        "spiculated",
    ]
    assert len(birads.LEXICON["echo_pattern"].values) == 6
    assert len(birads.LEXICON["associated_features"].values) == 6
    multi = {key for key, d in birads.LEXICON.items() if d.multi}
    assert multi == {"margin", "calcifications", "associated_features"}
    assert birads.ASSESSMENT_CATEGORIES == ("0", "1", "2", "3", "4A", "4B", "4C", "5", "6")


def test_it_returns_the_canonical_form():
    """Empty entries dropped, multi-valued lists deduplicated in lexicon order, keys in lexicon order."""
    got = birads.validate_descriptors(
        {
            "margin": ["spiculated", "angular", "spiculated"],
            "shape": "irregular",
            "orientation": None,
            "calcifications": [],
            "echo_pattern": "",
            "associated_features": "edema",
        }
    )
    assert got == {"shape": "irregular", "margin": ["angular", "spiculated"], "associated_features": ["edema"]}
    assert list(got) == ["shape", "margin", "associated_features"]
    assert birads.validate_descriptors(None) == {}
    assert birads.validate_descriptors({}) == {}


@pytest.mark.parametrize(
    "data, rule, key",
    [
        ("oval", "descriptor_format", None),
        ({"colour": "red"}, "descriptor_unknown", "colour"),
        ({"shape": "square"}, "descriptor_value", "shape"),
        ({"shape": ["oval"]}, "descriptor_format", "shape"),
        ({"shape": 3}, "descriptor_format", "shape"),
        ({"margin": ["circumscribed", "angular"]}, "descriptor_exclusive", "margin"),
        ({"margin": ["wavy"]}, "descriptor_value", "margin"),
        ({"margin": [1]}, "descriptor_format", "margin"),
        ({"calcifications": {"in_mass": True}}, "descriptor_format", "calcifications"),
    ],
)
def test_it_rejects_what_the_lexicon_does_not_hold(data, rule, key):
    with pytest.raises(DescriptorError) as err:
        birads.validate_descriptors(data)
    assert err.value.rule == rule
    assert err.value.key == key
    if key:
        assert key in err.value.message


def test_circumscribed_alone_is_a_margin():
    assert birads.validate_descriptors({"margin": ["circumscribed"]}) == {"margin": ["circumscribed"]}


@pytest.mark.parametrize("value, expected", [("4a", "4A"), ("4B", "4B"), (3, "3"), ("", ""), (None, "")])
def test_it_accepts_assessment_categories(value, expected):
    assert birads.validate_assessment(value) == expected


@pytest.mark.parametrize("value", ["4", "7", "4D", True, 3.0, ["3"]])
def test_it_rejects_other_assessments(value):
    with pytest.raises(DescriptorError) as err:
        birads.validate_assessment(value)
    assert err.value.rule == "assessment_value"


def test_it_lists_missing_required_descriptors_in_lexicon_order():
    assert birads.missing_descriptors({"shape": "oval", "margin": ["angular"]}) == [
        "orientation",
        "echo_pattern",
        "posterior_features",
    ]
    full = {"shape": "oval", "orientation": "parallel", "margin": ["circumscribed"]}
    full |= {"echo_pattern": "anechoic", "posterior_features": "enhancement"}
    assert birads.missing_descriptors(full) == []


def test_it_describes_descriptors_in_words():
    text = birads.describe({"shape": "oval", "margin": ["angular", "spiculated"]})
    assert text == "Shape: oval; Margin: angular, spiculated"


@pytest.mark.django_db
def test_descriptors_and_assessment_are_stored(alice):
    image = make_image(annotator=alice)
    layer = MaskLayer.objects.create(image=image, author=alice, revision=1, assessment="4B")
    lesion = Lesion.objects.create(
        layer=layer, index=1, label="malignant", points=[[1, 1], [5, 1], [5, 5]], descriptors={"shape": "round"}
    )
    lesion.refresh_from_db()
    layer.refresh_from_db()
    assert lesion.descriptors == {"shape": "round"}
    assert layer.assessment == "4B"
    assert (
        Lesion.objects.create(layer=layer, index=2, label="benign", points=[[1, 1], [5, 1], [5, 5]]).descriptors == {}
    )


@pytest.mark.django_db
def test_the_database_rejects_an_unknown_assessment(alice):
    image = make_image(annotator=alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        MaskLayer.objects.create(image=image, author=alice, revision=1, assessment="7")
