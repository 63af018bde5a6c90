"""BI-RADS descriptors through the API and the workflow: storage, 400s that change nothing, the
curator's setting in its three modes (off, on, required) and its audit trail."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from annotator import dataset_settings, workflow
from annotator.models import AuditEvent, DatasetSettings, Image, MaskLayer, Status
from tests.factories import SQUARE, TRIANGLE, make_image

pytestmark = pytest.mark.django_db

FULL = {
    "shape": "irregular",
    "orientation": "not_parallel",
    "margin": ["angular", "spiculated"],
    "echo_pattern": "hypoechoic",
    "posterior_features": "shadowing",
}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def draft(alice):
    image = make_image(annotator=alice)
    api = client_for(alice)
    layer = api.post(f"/api/images/{image.pk}/start/").json()
    return image, layer, api


def save(api, layer, version, lesions, **flags):
    return api.put(f"/api/layers/{layer['id']}/", {"version": version, "lesions": lesions, **flags}, format="json")


def set_mode(carol, mode):
    dataset_settings.set_descriptor_mode(mode=mode, user=carol)


def test_descriptors_and_assessment_are_stored_and_returned(alice):
    image, layer, api = draft(alice)
    lesions = [{"label": "malignant", "points": SQUARE, "descriptors": {**FULL, "margin": ["spiculated", "angular"]}}]
    saved = save(api, layer, 1, lesions, assessment="4c")
    assert saved.status_code == 200, saved.content
    body = saved.json()
    assert body["assessment"] == "4C"
    assert body["lesions"][0]["descriptors"]["margin"] == ["angular", "spiculated"]
    stored = MaskLayer.objects.get(pk=layer["id"])
    assert stored.assessment == "4C"
    assert stored.lesions.get().descriptors == FULL
    assert client_for(alice).get(f"/api/images/{image.pk}/").json()["open_layer"]["lesions"][0]["descriptors"] == FULL


@pytest.mark.parametrize(
    "lesion_descriptors, assessment, rule",
    [
        ({"shape": "square"}, "", "descriptor_value"),
        ({"colour": "red"}, "", "descriptor_unknown"),
        ({"margin": ["circumscribed", "spiculated"]}, "", "descriptor_exclusive"),
        ({"margin": "spiculated!"}, "", "descriptor_value"),
        ("oval", "", "descriptor_format"),
        ({}, "4D", "assessment_value"),
        ({}, ["4A"], "assessment_value"),
    ],
)
def test_values_outside_the_lexicon_are_a_400_that_changes_nothing(alice, lesion_descriptors, assessment, rule):
    image, layer, api = draft(alice)
    assert (
        save(api, layer, 1, [{"label": "benign", "points": SQUARE, "descriptors": {"shape": "oval"}}]).status_code
        == 200
    )
    before = MaskLayer.objects.get(pk=layer["id"])
    lesions = [
        {"label": "benign", "points": SQUARE},
        {"label": "malignant", "points": TRIANGLE, "descriptors": lesion_descriptors},
    ]
    response = save(api, layer, 2, lesions, assessment=assessment)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_content" and body["rule"] == rule
    if rule != "assessment_value":
        assert body["lesion"] == 1 and body["detail"].startswith("lesion 2:")
    after = MaskLayer.objects.get(pk=layer["id"])
    assert after.version == before.version == 2
    assert [les.descriptors for les in after.lesions.all()] == [{"shape": "oval"}]


def test_off_is_the_default_and_submission_asks_for_nothing(alice):
    assert dataset_settings.descriptor_mode() == "off"
    assert not DatasetSettings.objects.exists()  # reading the default writes nothing
    image, layer, api = draft(alice)
    assert save(api, layer, 1, [{"label": "benign", "points": SQUARE}]).status_code == 200
    assert api.post(f"/api/layers/{layer['id']}/submit/").status_code == 200
    assert Image.objects.get(pk=image.pk).status == Status.SUBMITTED


def test_on_offers_descriptors_but_submission_does_not_need_them(alice, carol):
    set_mode(carol, "on")
    image, layer, api = draft(alice)
    assert (
        save(api, layer, 1, [{"label": "benign", "points": SQUARE, "descriptors": {"shape": "oval"}}]).status_code
        == 200
    )
    assert api.post(f"/api/layers/{layer['id']}/submit/").status_code == 200


def test_required_blocks_submission_naming_each_lesion_and_what_it_lacks(alice, carol):
    set_mode(carol, "required")
    image, layer, api = draft(alice)
    lesions = [
        {"label": "malignant", "points": SQUARE, "descriptors": FULL},
        {"label": "benign", "points": TRIANGLE, "descriptors": {"shape": "oval", "margin": ["circumscribed"]}},
    ]
    assert save(api, layer, 1, lesions).status_code == 200
    refused = api.post(f"/api/layers/{layer['id']}/submit/")
    assert refused.status_code == 400
    body = refused.json()
    assert body["rule"] == "descriptors_required"
    assert body["detail"] == (
        "BI-RADS descriptors are required for submission: lesion 2 (benign) lacks orientation, echo pattern, "
        "posterior features; the image lacks its BI-RADS assessment category"
    )
    assert body["lesion"] == 1
    assert body["missing"] == [
        {"lesion": 1, "label": "benign", "missing": ["orientation", "echo_pattern", "posterior_features"]}
    ]
    assert body["assessment_missing"] is True
    assert Image.objects.get(pk=image.pk).status == Status.DRAFT
    assert MaskLayer.objects.get(pk=layer["id"]).status == "draft"
    assert not AuditEvent.objects.filter(image=image, action="submit").exists()

    lesions[1]["descriptors"] = {**FULL, "shape": "oval", "margin": ["circumscribed"]}
    assert save(api, layer, 2, lesions, assessment="4B").status_code == 200
    done = api.post(f"/api/layers/{layer['id']}/submit/")
    assert done.status_code == 200, done.content
    assert Image.objects.get(pk=image.pk).status == Status.SUBMITTED


def test_required_asks_a_normal_image_for_its_assessment_only(alice, carol):
    set_mode(carol, "required")
    image, layer, api = draft(alice)
    assert save(api, layer, 1, [], is_normal=True).status_code == 200
    refused = api.post(f"/api/layers/{layer['id']}/submit/").json()
    assert refused["rule"] == "descriptors_required" and refused["missing"] == []
    assert save(api, layer, 2, [], is_normal=True, assessment="1").status_code == 200
    assert api.post(f"/api/layers/{layer['id']}/submit/").status_code == 200


def test_required_applies_to_the_reviewers_edit_then_approve(alice, bob, carol):
    image, layer, api = draft(alice)
    assert save(api, layer, 1, [{"label": "malignant", "points": SQUARE}]).status_code == 200
    assert api.post(f"/api/layers/{layer['id']}/submit/").status_code == 200
    set_mode(carol, "required")
    reviewer = client_for(bob)
    body = {"layer": {"lesions": [{"label": "malignant", "points": SQUARE, "descriptors": {"shape": "round"}}]}}
    refused = reviewer.post(f"/api/images/{image.pk}/edit-approve/", body, format="json")
    assert refused.status_code == 400 and refused.json()["rule"] == "descriptors_required"
    assert Image.objects.get(pk=image.pk).status == Status.SUBMITTED
    body["layer"]["lesions"][0]["descriptors"] = FULL
    body["layer"]["assessment"] = "5"
    approved = reviewer.post(f"/api/images/{image.pk}/edit-approve/", body, format="json")
    assert approved.status_code == 200, approved.content
    consensus = Image.objects.get(pk=image.pk).consensus
    assert consensus.assessment == "5" and consensus.lesions.get().descriptors == FULL


def test_descriptors_survive_a_send_back_and_the_next_revision(alice, bob):
    image, layer, api = draft(alice)
    save(api, layer, 1, [{"label": "malignant", "points": SQUARE, "descriptors": FULL}], assessment="4A")
    api.post(f"/api/layers/{layer['id']}/submit/")
    workflow.send_back(image_id=image.pk, user=bob, comment="margin should be microlobulated")
    again = workflow.start(image_id=image.pk, user=alice)
    assert again.assessment == "4A"
    assert again.lesions.get().descriptors == FULL


def test_settings_api_reads_for_everyone_and_changes_for_curators_with_an_audit_event(alice, carol):
    read = client_for(alice).get("/api/settings/").json()
    assert read["descriptors"] == "off"
    assert [d["key"] for d in read["lexicon"]["descriptors"]][:2] == ["shape", "orientation"]
    assert client_for(alice).put("/api/settings/", {"descriptors": "on"}, format="json").status_code == 403
    bad = client_for(carol).put("/api/settings/", {"descriptors": "sometimes"}, format="json")
    assert bad.status_code == 400 and bad.json()["descriptors"]
    assert not DatasetSettings.objects.exists()
    changed = client_for(carol).put("/api/settings/", {"descriptors": "required"}, format="json")
    assert changed.status_code == 200 and changed.json()["descriptors"] == "required"
    event = AuditEvent.objects.get(action="settings")
    assert event.actor == carol and event.image is None
    assert event.detail == {"setting": "descriptors", "from": "off", "to": "required"}
    # Setting the same value again is no change and no event.
    client_for(carol).put("/api/settings/", {"descriptors": "required"}, format="json")
    assert AuditEvent.objects.filter(action="settings").count() == 1


def test_settings_page_changes_the_mode_for_curators_only(alice, carol):
    page = Client()
    page.force_login(alice)
    assert page.get("/dataset/settings/").status_code == 403
    assert page.post("/dataset/settings/", {"descriptors": "on"}).status_code == 403
    page.force_login(carol)
    shown = page.get("/dataset/settings/")
    assert shown.status_code == 200 and b"Spiculated" in shown.content
    response = page.post("/dataset/settings/", {"descriptors": "on"}, follow=True)
    assert b"BI-RADS descriptors: On" in response.content
    assert dataset_settings.descriptor_mode() == "on"
    page.post("/dataset/settings/", {"descriptors": "bogus"}, follow=True)
    assert dataset_settings.descriptor_mode() == "on"
    audit = page.get("/dataset/audit/").content.decode()
    assert "setting: descriptors, from: off, to: on" in audit


def test_required_applies_to_blind_readings_and_the_adjudicators_edit(double_image_in, alice, erin, bob, carol):
    image = double_image_in("double_reading")  # alice has a draft with one benign square, undescribed
    set_mode(carol, "required")
    reading = image.layers.get(author=alice)
    with pytest.raises(workflow.InvalidContent) as refused:
        workflow.submit_reading(layer_id=reading.pk, user=alice)
    assert refused.value.extra["rule"] == "descriptors_required"
    assert MaskLayer.objects.get(pk=reading.pk).status == "draft"
    set_mode(carol, "off")
    image = double_image_in("adjudication", name="DUAL_001.png")
    set_mode(carol, "required")
    undescribed = workflow.LayerContent(lesions=image.layers.get(author=erin).geometry_lesions())
    with pytest.raises(workflow.InvalidContent) as refused:
        workflow.adjudicate_edit(image_id=image.pk, user=bob, content=undescribed, start_from="union")
    assert refused.value.extra["rule"] == "descriptors_required"
    assert Image.objects.get(pk=image.pk).status == Status.ADJUDICATION
