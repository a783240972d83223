"""API tokens: the signed-in user's tokens, creating one (shown once) and revoking one."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from .. import tokens as token_store
from ..models import ApiToken
from ..services import ServiceError
from ..services import tokens as token_services
from ..types import HtmxHttpRequest
from .common import actor_for

EXPIRY_CHOICES = [
    ("7", "in 7 days"),
    ("30", "in 30 days"),
    ("90", "in 90 days"),
    ("365", "in a year"),
    ("", "never (until revoked)"),
]


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=token_services.NAME_MAX,
        help_text="What it is for, e.g. “CI deploys” or “nightly report script”.",
    )
    expires_in_days = forms.TypedChoiceField(
        label="Expires",
        choices=EXPIRY_CHOICES,
        coerce=int,
        empty_value=None,
        required=False,
        initial="90",
        help_text="After this the token is refused; changing your password revokes it too.",
    )


@never_cache  # Cache-Control: no-store, among others: the new token must not stay in a cache
@require_http_methods(["GET", "HEAD", "POST"])
def tokens(request: HtmxHttpRequest) -> HttpResponse:
    """The list and the create form. A created token is shown once, in the POST's own answer
    (201, no redirect), so it is never kept in the session or anywhere else."""
    form = TokenForm(request.POST if request.method == "POST" else None)
    created: ApiToken | None = None
    raw = ""
    status = 200
    if form.is_bound:
        status = 400
        if form.is_valid():
            try:
                created, raw = token_services.token_create(
                    actor=actor_for(request),
                    name=form.cleaned_data["name"],
                    expires_in_days=form.cleaned_data["expires_in_days"],
                )
            except ServiceError as error:
                form.add_error(getattr(error, "field", "name"), str(error))
            else:
                status = 201
                form = TokenForm()
    context = {
        "form": form,
        "tokens": token_store.tokens_of(request.user),
        "created": created,
        "raw_token": raw,
        "max_active": token_services.MAX_ACTIVE_TOKENS,
    }
    return render(request, "tasks_app/tokens.html", context, status=status)


@require_POST
def token_revoke(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    token = ApiToken.objects.select_related("user").filter(pk=pk).first()
    if token is None:
        raise Http404("No such token.")
    try:
        # Someone else's token: PermissionDenied, a 403.
        changed = token_services.token_revoke(token, actor=actor_for(request))
    except ServiceError as error:
        messages.error(request, str(error))
    else:
        if changed:
            messages.success(request, f"Revoked token {token.name} ({token.prefix}…).")
        else:
            messages.info(request, f"Token {token.name} ({token.prefix}…) was already revoked.")
    return redirect("tasks_app:tokens")
