"""Annotator pages: home, worklist, the annotation page. Validate, check, call, render."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render

from annotator import permissions, selectors
from annotator.models import Image


class ThrottledLoginView(LoginView):
    """Django's login, refusing further attempts after repeated failures from one address."""

    def _key(self) -> str:
        ip = self.request.META.get("REMOTE_ADDR", "")
        return f"login-failures:{ip}:{self.request.POST.get('username', '')[:150].lower()}"

    def post(self, request, *args, **kwargs):
        if cache.get(self._key(), 0) >= settings.LOGIN_FAILURES_ALLOWED:
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, "Too many failed attempts. Wait a few minutes and try again.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        key = self._key()
        cache.add(key, 0, settings.LOGIN_FAILURE_WINDOW_S)
        cache.incr(key)
        return super().form_invalid(form)


def home(request):
    roles = permissions.roles_of(request.user)
    if permissions.CURATOR in roles or permissions.ADMIN in roles:
        return redirect("curator:dashboard")
    if permissions.REVIEWER in roles and permissions.ANNOTATOR not in roles:
        return redirect("reviewer:queue")
    if permissions.ANNOTATOR in roles:
        return redirect("annotator:worklist")
    return render(request, "annotator/no_role.html")


@permissions.require(permissions.ANNOTATE)
def worklist(request):
    todo = Paginator(selectors.worklist(request.user), 50).get_page(request.GET.get("page"))
    done = selectors.my_done(request.user)[:20]
    counts = {s: 0 for s in selectors.ANNOTATOR_OPEN}
    for row in selectors.worklist(request.user).order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return render(request, "annotator/worklist.html", {"todo": todo, "done": done, "counts": counts})


def annotate(request, image_id: int):
    image = get_object_or_404(Image.objects.restrict(request.user), pk=image_id)
    if not permissions.can(request.user, permissions.ANNOTATE, image):
        if permissions.can(request.user, permissions.VIEW, image):
            return redirect("reviewer:review", image_id=image.pk)
        raise PermissionDenied
    return render(request, "annotator/annotate.html", {"image": image})
