"""Who may do what: the one place that decides.

Roles are Django groups (a person may hold several); a superuser is the admin and holds the
curator's actions. ``ROLE_ACTIONS`` is the role x action table; ``can`` adds the per-image rules;
``restrict`` filters lists by the same rules, so a list never shows what a detail page refuses.
The workflow, the API and the pages all ask here: pages through the ``require`` decorator, API
views through the ``Gate`` permission class (both below), the workflow through ``can``.
"""

from __future__ import annotations

import functools

from django.contrib.auth.models import AnonymousUser, Group
from django.contrib.postgres.aggregates import ArrayAgg
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet, Value
from rest_framework.permissions import BasePermission

from annotator.models import Image, MaskLayer, Review, Status

ANNOTATOR = "annotator"
REVIEWER = "reviewer"
CURATOR = "curator"
ADMIN = "admin"
ROLES = (ANNOTATOR, REVIEWER, CURATOR)

# Actions on images ---------------------------------------------------------------------------
VIEW = "view"  # see an image, its layers and reviews
ANNOTATE = "annotate"  # start, draw, save, submit (reader 1)
REVIEW = "review"  # approve, edit-and-approve, send back (reader 2)
DRAW = "draw"  # ask for a smart-contour proposal: either reader of the image (annotate or review)
# Dataset-wide actions ------------------------------------------------------------------------
IMPORT = "import"
ASSIGN = "assign"
EXPORT = "export"
REOPEN = "reopen"
AUDIT = "audit"  # read the audit log and the curator dashboard
REDACT = "redact"  # black out burned-in text and release a DICOM import to the readers
AGREEMENT = "agreement"  # the reader-agreement page: curators all figures, readers their own (agreement_rule)
CONFIGURE = "configure"  # change the dataset settings (e.g. whether BI-RADS descriptors are asked for)
# The top bar's "API" link to the schema and docs: for those who script the dataset. Readers work
# in the pages and do not need it; the API itself answers every role by the rules above.
API_DOCS = "api_docs"

ROLE_ACTIONS: dict[str, frozenset[str]] = {
    ANNOTATOR: frozenset({VIEW, ANNOTATE, AGREEMENT}),
    REVIEWER: frozenset({VIEW, REVIEW, AGREEMENT}),
    CURATOR: frozenset({VIEW, IMPORT, ASSIGN, EXPORT, REOPEN, AUDIT, REDACT, AGREEMENT, CONFIGURE, API_DOCS}),
    ADMIN: frozenset({VIEW, IMPORT, ASSIGN, EXPORT, REOPEN, AUDIT, REDACT, AGREEMENT, CONFIGURE, API_DOCS}),
}
ACTIONS = tuple(sorted(set().union(*ROLE_ACTIONS.values())))

# Images a reviewer may see: those that have reached a second reader (or, read blind by two
# readers, an adjudicator). An image in ``double_reading`` is seen by its two readers only.
REVIEWER_VISIBLE = (Status.SUBMITTED, Status.RETURNED, Status.APPROVED, Status.ADJUDICATION)
# Images no reader sees, even when assigned: burned-in text may still show a patient's name.
HIDDEN_FROM_READERS = (Status.REDACTION,)
# Blind double reading: until the adjudicator approves a consensus, neither reader sees anything of
# the other's layers (drawing, lesion count, remarks on it), whatever else their roles allow.
BLIND_STATUSES = (Status.DOUBLE_READING, Status.ADJUDICATION)


def role_names(prefix: str = "") -> ArrayAgg:
    """An annotation with the names of a user's groups, so that the query that loads the user
    (``prefix`` is the path to it, e.g. ``"user__"`` from a token) also reads their roles:
    ``remember_roles`` then spares ``roles_of`` its own query on every request."""
    return ArrayAgg(f"{prefix}groups__name", filter=Q(**{f"{prefix}groups__isnull": False}), default=Value([]))


def remember_roles(user, group_names) -> None:
    user._busreview_roles = _roles_from(user, group_names)


def _roles_from(user, group_names) -> set[str]:
    roles = {g for g in group_names if g in ROLES}
    if user.is_superuser:
        roles.add(ADMIN)
    return roles


def roles_of(user) -> set[str]:
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated or not user.is_active:
        return set()
    cached = getattr(user, "_busreview_roles", None)
    if cached is None:
        cached = _roles_from(user, user.groups.values_list("name", flat=True))
        user._busreview_roles = cached
    return cached


def may_be_assigned(user) -> bool:
    """May ``user`` be given images to draw (as annotator, or as one of two blind readers)?"""
    return ANNOTATOR in roles_of(user)


def has_role_action(user, action: str) -> bool:
    return any(action in ROLE_ACTIONS[role] for role in roles_of(user))


def image_rule(user, action: str) -> Q | None:
    """The per-image condition under which ``user`` may do ``action``; None means never."""
    roles = roles_of(user)
    clauses: list[Q] = []
    for role in roles:
        if action not in ROLE_ACTIONS[role]:
            continue
        if role in (CURATOR, ADMIN):
            clauses.append(Q())
        elif role == ANNOTATOR:
            if action in (VIEW, ANNOTATE):
                readers = Q(annotator=user) | Q(second_annotator=user)
                clauses.append(readers & ~Q(status__in=HIDDEN_FROM_READERS))
        elif role == REVIEWER:
            # Whether the image is in a reviewable status is the workflow's question, not this one.
            visible = Q(status__in=REVIEWER_VISIBLE)
            if action == VIEW:
                # Seeing one's own work is harmless; a decision on it is refused (403), not hidden.
                clauses.append(visible)
            else:
                # Never a reader of it: neither the assigned annotator (nor, read blind, the second
                # reader) nor the author of any of its layers, whatever the layer's source (drawn
                # here, imported as their draft, or their own earlier edit as a reviewer).
                authored = MaskLayer.objects.filter(author=user)
                clauses.append(
                    visible & ~Q(annotator=user) & ~Q(second_annotator=user) & ~Q(pk__in=authored.values("image_id"))
                )
    if not clauses:
        return None
    combined = clauses[0]
    for clause in clauses[1:]:
        combined |= clause
    return combined


def restrict(queryset: QuerySet[Image], user, action: str = VIEW) -> QuerySet[Image]:
    """Images of ``queryset`` on which ``user`` may do ``action``."""
    rule = image_rule(user, action)
    if rule is None:
        return queryset.none()
    if rule == Q():
        return queryset
    # The rule may join layers; filter by id to keep one row per image.
    return queryset.filter(pk__in=Image.objects.filter(rule).values("pk"))


def agreement_rule(user) -> Q | None:
    """Which stored ``Agreement`` rows ``user`` may see: a curator (or the admin) every row, a reader
    the rows of pairs they were a reader of (as annotator or as reviewer), nobody else any."""
    roles = roles_of(user)
    if not any(AGREEMENT in ROLE_ACTIONS[role] for role in roles):
        return None
    if roles & {CURATOR, ADMIN}:
        return Q()
    return Q(first_reader=user) | Q(second_reader=user)


def restrict_agreements(queryset: QuerySet, user) -> QuerySet:
    rule = agreement_rule(user)
    return queryset.none() if rule is None else queryset.filter(rule)


def can(user, action: str, image: Image | None = None) -> bool:
    """May ``user`` do ``action`` (on ``image``, for per-image actions)?"""
    if action == DRAW:
        return can(user, ANNOTATE, image) or can(user, REVIEW, image)
    if image is None:
        return has_role_action(user, action)
    if action == ANNOTATE:
        # Only annotators annotate, and only their assigned images: decided without a query
        # (the same rule as image_rule's reader clause), since every save asks it.
        return ANNOTATOR in roles_of(user) and is_reader(user, image) and image.status not in HIDDEN_FROM_READERS
    if action == VIEW:
        # The clauses that need no query (image_rule's Q() and the annotator's) first.
        roles = roles_of(user)
        if roles & {CURATOR, ADMIN}:
            return True
        if ANNOTATOR in roles and is_reader(user, image) and image.status not in HIDDEN_FROM_READERS:
            return True
    rule = image_rule(user, action)
    if rule is None:
        return False
    if rule == Q():
        return True
    return Image.objects.filter(rule, pk=image.pk).exists()


def is_reader(user, image: Image) -> bool:
    return user.pk is not None and user.pk in (image.annotator_id, image.second_annotator_id)


def page_for(user, image: Image) -> tuple[str, str]:
    """Which page opens ``image`` for ``user`` from a list, by its status: (page, link text).

    ``annotate`` when it is theirs to draw now, ``review`` when it waits for their review,
    ``redaction`` while it waits for a curator's redaction, else ``view`` (the read-only viewer).
    Decided without a query (lists ask it per row): the review rule here is the role and "not the
    image's annotator"; the review page itself still applies the full rule (``can``).
    """
    roles = roles_of(user)
    if image.status == Status.REDACTION and roles & {CURATOR, ADMIN}:
        return "redaction", "Redact"
    if image.status in (Status.NEW, Status.DRAFT, Status.RETURNED, Status.DOUBLE_READING) and can(
        user, ANNOTATE, image
    ):
        return "annotate", "Start" if image.status == Status.NEW else "Open"
    if image.status in (Status.SUBMITTED, Status.ADJUDICATION) and REVIEWER in roles and not is_reader(user, image):
        return "review", "Adjudicate" if image.status == Status.ADJUDICATION else "Review"
    what = {
        Status.APPROVED: "consensus",
        Status.SUBMITTED: "submission",
        Status.NEW: "image",
        Status.ADJUDICATION: "readings",
    }
    return "view", f"View {what.get(image.status, 'drawing')}"


def may_edit_layer(user, layer: MaskLayer) -> bool:
    """Only the layer's author, who must also be the image's assigned annotator (or, read blind,
    one of its two readers), edits a draft."""
    return layer.author_id == user.pk and can(user, ANNOTATE, layer.image)


# --- layers: what blind double reading hides ------------------------------------------------------


def blind_layers(user) -> Q:
    """The condition on ``MaskLayer`` of the layers ``user`` may not see although they see the image:
    the other reader's, while the image is read blind (``BLIND_STATUSES``) and ``user`` is one of
    its two readers. Their own layers, and everything once a consensus is approved, they see."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Q()
    reader = Q(image__annotator=user) | Q(image__second_annotator=user)
    return Q(image__status__in=BLIND_STATUSES, image__second_annotator__isnull=False) & reader & ~Q(author=user)


def may_see_layer(user, layer: MaskLayer) -> bool:
    """For a layer of an image ``user`` may view: is it not hidden by blind reading? No query."""
    image = layer.image
    blind = image.second_annotator_id is not None and image.status in BLIND_STATUSES and is_reader(user, image)
    return not blind or layer.author_id == user.pk


def restrict_layers(queryset: QuerySet[MaskLayer], user) -> QuerySet[MaskLayer]:
    """Layers of ``queryset`` that ``user`` may see: of images they view, minus the blind ones."""
    images = restrict(Image.objects.all(), user, VIEW)
    return queryset.filter(image__in=images).exclude(blind_layers(user))


def restrict_reviews(queryset: QuerySet[Review], user) -> QuerySet[Review]:
    """Reviews of images ``user`` views, minus those on layers hidden from them (a send-back of the
    other reader's layer would tell its comment and, by its remarks, its lesions)."""
    images = restrict(Image.objects.all(), user, VIEW)
    hidden = MaskLayer.objects.filter(blind_layers(user)).values("pk")
    return queryset.filter(image__in=images).exclude(layer__in=hidden)


# --- the gate: how pages and API views ask ------------------------------------------------------


def require(action: str):
    """Page-view decorator: 403 unless the user's roles allow ``action`` (per-image rules are the
    view's ``restrict``/``can`` question once it has the image)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            if not can(request.user, action):
                raise PermissionDenied(f"your role does not allow {action}")
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


class Gate(BasePermission):
    """DRF permission over this module: the view names the action each of its actions needs.

    ``view.required_actions`` maps a DRF action name (``list``, ``update``, ``approve``...) to one
    of the actions above; ``view.required_action`` is the default. The role-level check runs
    before the view reads the request body; the per-image check runs on ``get_object()``.
    A view with neither attribute needs only a login.
    """

    message = "your role does not allow this"
    code = "not_allowed"  # as the workflow's own refusals

    @classmethod
    def for_action(cls, action: str) -> type[Gate]:
        """The gate of a function view that needs one action."""
        return type(f"Gate_{action}", (cls,), {"_fixed": action})

    @classmethod
    def for_methods(cls, actions: dict[str, str]) -> type[Gate]:
        """The gate of a function view whose HTTP methods need different actions (others: a login)."""
        return type(f"Gate_{'_'.join(sorted(actions))}", (cls,), {"_methods": actions})

    _fixed: str | None = None
    _methods: dict[str, str] | None = None

    @classmethod
    def _action(cls, view) -> str | None:
        if cls._fixed is not None:
            return cls._fixed
        if cls._methods is not None:
            return cls._methods.get(view.request.method)
        per_action = getattr(view, "required_actions", {})
        name = getattr(view, "action", None)
        return per_action.get(name, getattr(view, "required_action", None))

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        action = self._action(view)
        if action is None:
            return True
        if not can(request.user, action):
            self.message = f"your role does not allow {action}"
            return False
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        action = self._action(view)
        if action is None or action == VIEW:
            return True  # seeing it was decided by the queryset (restrict), which gave a 404
        image = obj if isinstance(obj, Image) else obj.image
        if not can(request.user, action, image):
            self.message = f"you may not {action} {image.name}"
            return False
        return True


def ensure_role_groups() -> None:
    for role in ROLES:
        Group.objects.get_or_create(name=role)
