"""Site-wide views: the home page, and the two ways to log in (the page and the token endpoint).

Both ways count failed attempts in the one counter of busreview/throttle.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from annotator import permissions
from busreview import auth, throttle

TOO_MANY = "Too many failed attempts. Wait a few minutes and try again."


class ThrottledLoginView(LoginView):
    """Django's login page, refusing an address further attempts at a name after repeated failures."""

    def _username(self) -> str:
        return throttle.normalise_username(self.request.POST.get("username", ""))

    def post(self, request, *args, **kwargs):
        wait = throttle.blocked_for(request, self._username())
        if wait:
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, TOO_MANY)
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        throttle.record_failure(self.request, self._username())
        return super().form_invalid(form)

    def form_valid(self, form):
        throttle.clear(self.request, self._username())
        return super().form_valid(form)


class TokenLoginSerializer(AuthTokenSerializer):
    """User name and password; the name is normalised as the login page's form does."""

    def validate_username(self, value: str) -> str:
        return throttle.normalise_username(value)


TokenResponse = inline_serializer("Token", {"token": serializers.CharField(), "expires": serializers.DateTimeField()})
TooMany = inline_serializer("TooManyFailures", {"code": serializers.CharField(), "detail": serializers.CharField()})


class ObtainTokenView(ObtainAuthToken):
    """A token for scripts (`Authorization: Token …`), valid for TOKEN_TTL_HOURS from its issue.

    Failed attempts count together with the login page's, per address and user name.
    """

    serializer_class = TokenLoginSerializer
    throttle_classes = [auth.LoginRateThrottle]

    @extend_schema(request=TokenLoginSerializer, responses={200: TokenResponse, 400: OpenApiTypes.OBJECT, 429: TooMany})
    def post(self, request, *args, **kwargs):
        data = request.data if isinstance(request.data, Mapping) else {}
        username = throttle.normalise_username(data.get("username", ""))
        wait = throttle.blocked_for(request, username)
        if wait:
            return Response(
                {"code": "too_many_failures", "detail": TOO_MANY}, status=429, headers={"Retry-After": str(wait)}
            )
        serializer = self.get_serializer(data=data)
        if not serializer.is_valid():
            throttle.record_failure(request, username)
            raise ValidationError(serializer.errors)
        throttle.clear(request, username)
        token = auth.issue_token(serializer.validated_data["user"])
        return Response({"token": token.key, "expires": auth.expires_at(token)})


def home(request: HttpRequest) -> HttpResponse:
    roles = permissions.roles_of(request.user)
    if permissions.CURATOR in roles or permissions.ADMIN in roles:
        return redirect("curator:dashboard")
    if permissions.REVIEWER in roles and permissions.ANNOTATOR not in roles:
        return redirect("reviewer:queue")
    if permissions.ANNOTATOR in roles:
        return redirect("annotator:worklist")
    return render(request, "annotator/no_role.html")
