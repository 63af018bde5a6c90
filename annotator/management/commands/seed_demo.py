"""python manage.py seed_demo: demo users and a few patients of synthetic images in every status."""

from __future__ import annotations

import hashlib
import io

import PIL.Image
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import CommandError
from django.db import transaction

from annotator import demo, geometry, importing, permissions, workflow
from annotator.management.base import BulkCommand
from annotator.models import Image, ImageData, Patient, Status

DEMO_USERS = [
    # username, roles, superuser
    ("alice", [permissions.ANNOTATOR], False),
    ("dave", [permissions.ANNOTATOR, permissions.REVIEWER], False),
    ("bob", [permissions.REVIEWER], False),
    ("carol", [permissions.CURATOR], False),
    ("admin", [permissions.CURATOR], True),
]
REDACTION_PATIENT = "DEME"  # one image waiting in the burned-in text step
# patient -> list of lesion label lists, one per image
PATIENTS = {
    "DEMA": [["benign"], [], ["benign", "benign"], [], ["benign"], []],
    "DEMB": [["malignant"], [], ["malignant"], ["benign"], [], ["malignant", "benign"]],
    "DEMC": [[], ["benign"], [], ["malignant"], ["benign"], []],
    "DEMD": [["benign"], ["malignant"], [], ["benign", "benign", "benign"], [], ["malignant"]],
    # Blind double reading by alice and dave: one still being read (dave's turn), one to adjudicate.
    "DEMF": [["benign"], ["malignant"]],
}


class Command(BulkCommand):
    help = "Create demo users (passwords printed) and synthetic images in every workflow status. Local use only."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="allow with DEBUG off (never on a real server)")

    def handle(self, *args, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates users with known passwords; it runs only with DEBUG on")
        permissions.ensure_role_groups()
        users = {}
        lines = []
        for username, roles, superuser in DEMO_USERS:
            password = f"{username}-demo-2026"
            user, created = get_user_model().objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.is_superuser = user.is_staff = superuser
                user.save()
                user.groups.set([Group.objects.get(name=r) for r in roles])
            users[username] = user
            lines.append(
                f"  {username:<6} {password:<18} {', '.join(roles)}{' + admin' if superuser else ''}"
                + ("" if created else "  (existed; password unchanged)")
            )
        if Image.objects.filter(patient__code__in=PATIENTS).exists():
            self.stdout.write("demo images already present; nothing added")
        else:
            self._images(users)
        self.stdout.write("Demo users (local only):\n" + "\n".join(lines))

    def _images(self, users) -> None:
        drawn = {}
        loaders = {}
        for p, (code, images) in enumerate(sorted(PATIENTS.items())):
            for i, labels in enumerate(images):
                name = f"{code}_{i:03d}.png"
                png, lesions = demo.generate(seed=1000 + p * 100 + i, lesions=labels)
                loaders[name] = lambda data=png: data
                drawn[name] = lesions
        report = importing.import_dataset(importing.Source(images=loaders), actor=users["carol"])
        if report.failed:
            raise CommandError(f"demo import failed: {report.defects}")
        alice, dave, bob, carol = users["alice"], users["dave"], users["bob"], users["carol"]
        images = {im.name: im for im in Image.objects.filter(name__in=loaders)}
        for code, annotator in (("DEMA", alice), ("DEMB", alice), ("DEMC", dave), ("DEMD", alice)):  # DEMF below
            workflow.assign(
                image_ids=[im.pk for n, im in images.items() if n.startswith(code)], annotator=annotator, user=carol
            )

        def draw(name, user, submit=True):
            layer = workflow.start(image_id=images[name].pk, user=user)
            content = workflow.LayerContent(lesions=drawn[name], is_normal=not drawn[name])
            layer = workflow.save_draft(layer_id=layer.pk, user=user, content=content, expected_version=layer.version)
            if submit:
                workflow.submit(layer_id=layer.pk, user=user)

        # DEMA: approved by bob; DEMB: waiting for review; DEMC: dave's, one sent back;
        # DEMD: alice's drafts and new images; DEMF: read blind by alice and dave.
        for name in sorted(n for n in images if n.startswith("DEMA")):
            draw(name, alice)
            if name == "DEMA_004.png":
                # One edit before approval, so the agreement page has a pair that is not identical.
                edited = workflow.LayerContent(lesions=[_grown(les, 1.12) for les in drawn[name]])
                workflow.edit_and_approve(
                    image_id=images[name].pk, user=bob, content=edited, comment="Margin widened to the echogenic halo."
                )
            else:
                workflow.approve(image_id=images[name].pk, user=bob)
        for name in sorted(n for n in images if n.startswith("DEMB")):
            draw(name, alice)
        for name in sorted(n for n in images if n.startswith("DEMC"))[:3]:
            draw(name, dave)
        workflow.send_back(
            image_id=images["DEMC_001.png"].pk,
            user=bob,
            comment="The lower margin is drawn too tight; include the hypoechoic rim.",
            remarks=[workflow.RemarkContent(x=400, y=380, text="rim here")],
        )
        workflow.approve(image_id=images["DEMC_000.png"].pk, user=bob)
        draw("DEMD_000.png", alice, submit=False)
        self._double_reading(images, drawn, alice=alice, dave=dave, carol=carol)
        self._redaction_example(carol)
        counts = {
            s: Image.objects.filter(patient__code__in=[*PATIENTS, REDACTION_PATIENT], status=s).count() for s in Status
        }
        self.stdout.write("demo images: " + ", ".join(f"{n} {s}" for s, n in counts.items()))

    def _double_reading(self, images, drawn, *, alice, dave, carol) -> None:
        """DEMF_000 waits for dave's reading (alice has submitted hers); DEMF_001 has both readings,
        dave's drawn 14 px to the right of alice's, and waits for an adjudicator (bob)."""
        names = ["DEMF_000.png", "DEMF_001.png"]
        workflow.assign(image_ids=[images[n].pk for n in names], annotator=alice, second_annotator=dave, user=carol)
        for name, readers in ((names[0], [alice]), (names[1], [alice, dave])):
            for reader in readers:
                shift = 14 if reader == dave else 0
                lesions = [
                    geometry.Lesion(
                        label=les.label,
                        points=[[min(x + shift, demo.WIDTH - 1), y] for x, y in les.points],
                        holes=les.holes,
                    )
                    for les in drawn[name]
                ]
                layer = workflow.start_reading(image_id=images[name].pk, user=reader)
                layer = workflow.save_draft(
                    layer_id=layer.pk,
                    user=reader,
                    content=workflow.LayerContent(lesions=lesions),
                    expected_version=layer.version,
                )
                workflow.submit_reading(layer_id=layer.pk, user=reader)

    @transaction.atomic
    def _redaction_example(self, curator) -> None:
        """One image waiting for a curator in ``redaction``, as a DICOM import leaves it, with one detected box."""
        png, _ = demo.generate(seed=4242, lesions=[])
        width, height = PIL.Image.open(io.BytesIO(png)).size
        patient = Patient.objects.create(code=REDACTION_PATIENT)
        image = Image(
            patient=patient,
            name=f"{REDACTION_PATIENT}_000.png",
            number=0,
            width=width,
            height=height,
            checksum=hashlib.sha256(png).hexdigest(),
            text_boxes=[{"x": 8, "y": 8, "w": min(160, width - 8), "h": 18, "confidence": 95.0, "length": 12}],
        )
        workflow.import_for_redaction(image=image, actor=curator)
        ImageData.objects.create(image=image, png=png)


def _grown(lesion: geometry.Lesion, factor: float) -> geometry.Lesion:
    """``lesion`` scaled about its vertices' centroid (the demo reviewer's wider margin)."""
    cx = sum(x for x, _ in lesion.points) / len(lesion.points)
    cy = sum(y for _, y in lesion.points) / len(lesion.points)
    points = [[round(cx + (x - cx) * factor, 1), round(cy + (y - cy) * factor, 1)] for x, y in lesion.points]
    return geometry.Lesion(label=lesion.label, points=points, holes=lesion.holes)
