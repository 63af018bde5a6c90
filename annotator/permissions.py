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
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from rest_framework.permissions import BasePermission

from annotator.models import Image, MaskLayer, Status

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
# The top bar's "API" link to the schema and docs: for those who script the dataset. Readers work
# in the pages and do not need it; the API itself answers every role by the rules above.
API_DOCS = "api_docs"

ROLE_ACTIONS: dict[str, frozenset[str]] = {
    ANNOTATOR: frozenset({VIEW, ANNOTATE}),
    REVIEWER: frozenset({VIEW, REVIEW}),
    CURATOR: frozenset({VIEW, IMPORT, ASSIGN, EXPORT, REOPEN, AUDIT, REDACT, API_DOCS}),
    ADMIN: frozenset({VIEW, IMPORT, ASSIGN, EXPORT, REOPEN, AUDIT, REDACT, API_DOCS}),
}
ACTIONS = tuple(sorted(set().union(*ROLE_ACTIONS.values())))

# Images a reviewer may see: those that have reached a second reader.
REVIEWER_VISIBLE = (Status.SUBMITTED, Status.RETURNED, Status.APPROVED)
# Images no reader sees, even when assigned: burned-in text may still show a patient's name.
HIDDEN_FROM_READERS = (Status.REDACTION,)


def roles_of(user) -> set[str]:
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated or not user.is_active:
        return set()
    cached = getattr(user, "_busreview_roles", None)
    if cached is None:
        cached = {g for g in user.groups.values_list("name", flat=True) if g in ROLES}
        if user.is_superuser:
            cached.add(ADMIN)
        user._busreview_roles = cached
    return cached


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
                clauses.append(Q(annotator=user) & ~Q(status__in=HIDDEN_FROM_READERS))
        elif role == REVIEWER:
            # Whether the image is in a reviewable status is the workflow's question, not this one.
            visible = Q(status__in=REVIEWER_VISIBLE)
            if action == VIEW:
                # Seeing one's own work is harmless; a decision on it is refused (403), not hidden.
                clauses.append(visible)
            else:
                # Never a reader of it: neither the assigned annotator nor the author of any of its
                # layers, whatever the layer's source (drawn here, imported as their draft, or
                # their own earlier edit as a reviewer).
                authored = MaskLayer.objects.filter(author=user)
                clauses.append(visible & ~Q(annotator=user) & ~Q(pk__in=authored.values("image_id")))
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


def can(user, action: str, image: Image | None = None) -> bool:
    """May ``user`` do ``action`` (on ``image``, for per-image actions)?"""
    if action == DRAW:
        return can(user, ANNOTATE, image) or can(user, REVIEW, image)
    if image is None:
        return has_role_action(user, action)
    if action == ANNOTATE:
        # Only annotators annotate, and only their assigned images: decided without a query
        # (the same rule as image_rule's Q(annotator=user)), since every save asks it.
        return ANNOTATOR in roles_of(user) and image.annotator_id == user.pk and image.status not in HIDDEN_FROM_READERS
    if action == VIEW:
        # The clauses that need no query (image_rule's Q() and the annotator's) first.
        roles = roles_of(user)
        if roles & {CURATOR, ADMIN}:
            return True
        if ANNOTATOR in roles and image.annotator_id == user.pk and image.status not in HIDDEN_FROM_READERS:
            return True
    rule = image_rule(user, action)
    if rule is None:
        return False
    if rule == Q():
        return True
    return Image.objects.filter(rule, pk=image.pk).exists()


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
    if image.status in (Status.NEW, Status.DRAFT, Status.RETURNED) and can(user, ANNOTATE, image):
        return "annotate", "Start" if image.status == Status.NEW else "Open"
    if image.status == Status.SUBMITTED and REVIEWER in roles and image.annotator_id != user.pk:
        return "review", "Review"
    what = {Status.APPROVED: "consensus", Status.SUBMITTED: "submission", Status.NEW: "image"}
    return "view", f"View {what.get(image.status, 'drawing')}"


def may_edit_layer(user, layer: MaskLayer) -> bool:
    """Only the layer's author, who must also be the image's assigned annotator, edits a draft."""
    return layer.author_id == user.pk and can(user, ANNOTATE, layer.image)


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

    _fixed: str | None = None

    @classmethod
    def _action(cls, view) -> str | None:
        if cls._fixed is not None:
            return cls._fixed
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
