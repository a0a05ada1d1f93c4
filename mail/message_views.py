"""Reading one message: the reading panel, the body frame, parts, source, print view, images.

Every view is for the message's owner only (404 for anyone else). The body frame, the parts it
shows and the image proxy are also reached from the sandboxed frame, whose requests carry no
session cookie: they accept a signed URL (`mail.rendering.sign`) instead of a signed-in user,
and still refuse a signed-in user other than the one the URL was signed for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from mail import proxy, rendering, sender, services
from mail.models import Preferences
from mail.rendering import Purpose
from mailboxes.models import Message
from mailcore.mime import parse_message

# Reading: the panel -----------------------------------------------------------------------------


class ReadingForm(forms.Form):
    """The query string of the reading views."""

    t = forms.CharField(required=False, max_length=16_000)  # a signed URL's token
    images = forms.BooleanField(required=False)
    inline = forms.BooleanField(required=False)
    download = forms.BooleanField(required=False)


@dataclass(frozen=True)
class Reading:
    """What the reading panel of one message shows."""

    sender: sender.Sender
    body: rendering.RenderedBody
    notice: str
    body_url: str
    frame_height: int
    attachments: list[rendering.AttachmentView]
    can_trust: bool  # "Always show images from …" is offered


def _get_message(user: Any, message_id: int) -> Message:
    """The user's message, with what reading it needs, or 404."""
    found = (
        Message.objects.filter(pk=message_id, folder__account__user=user)
        .select_related("content", "folder__account__user")
        .defer("content__search_text")
        .first()
    )
    if found is None:
        raise Http404
    return found


def _get_granted_message(
    request: HttpRequest, message_id: int, purpose: Purpose, token: str, value: str | None = None
) -> Message | None:
    """The message a signed URL names, else the signed-in owner's; None: sign in first.

    A token that is forged, altered, expired, for another message or part, or for another user
    than the one signed in is a 404, as is a message that is no longer the user's."""
    if token:
        grant = _check_grant(request, message_id, purpose, token, value)
        return _get_message(grant.user_id, message_id)
    if not request.user.is_authenticated:
        return None
    return _get_message(request.user, message_id)


def _check_grant(
    request: HttpRequest, message_id: int, purpose: Purpose, token: str, value: str | None
) -> rendering.Grant:
    grant = rendering.unsign(purpose, token)
    if (
        grant is None
        or grant.message_id != message_id
        or (value is not None and grant.value != value)
        or (request.user.is_authenticated and request.user.pk != grant.user_id)
    ):
        raise Http404
    return grant


def _query(request: HttpRequest) -> dict[str, Any] | None:
    """The valid query string, or None (a 400)."""
    form = ReadingForm(request.GET)
    return form.cleaned_data if form.is_valid() else None


def _images_wanted(message: Message, asked: bool, prefs: Preferences | None = None) -> bool:
    """Remote images show when asked for once, always by preference, or from a trusted sender."""
    if asked:
        return True
    user = message.folder.account.user
    prefs = prefs or services.preferences(user)
    if prefs.images == Preferences.Images.ALWAYS:
        return True
    address = message.content.from_email
    return bool(address) and services.trusts(user, address)


def _reading(message: Message, images: bool) -> Reading:
    body = rendering.render_body(message, images=images)
    found = sender.analyse(message.content)
    listed = rendering.attachments(message, body)
    if body.kind == "html":  # inline images are shown in the body, not listed again
        listed = [a for a in listed if not a.inline]
    return Reading(
        sender=found,
        body=body,
        notice=rendering.notice(body),
        body_url=rendering.body_url(message, images=images),
        frame_height=rendering.frame_height(body),
        attachments=listed,
        can_trust=bool(found.address) and body.images_blocked,
    )


def _conversation_url(message: Message, images: bool = False) -> str:
    conversation_id = message.content.conversation_id
    if conversation_id is None:
        return reverse("mail-folder", args=[message.folder_id])
    query = f"?images={message.pk}" if images else ""
    return f"{reverse('mail-conversation', args=[conversation_id])}{query}#message-{message.pk}"


def _panel(request: HttpRequest, message: Message, images: bool) -> HttpResponse:
    prefs = services.preferences(request.user)  # type: ignore[arg-type]
    timezone.activate(prefs.time_zone)
    images = _images_wanted(message, images, prefs)
    context = {
        "message": message,
        "content": message.content,
        "reading": _reading(message, images),
    }
    return render(request, "mail/message.html", context)


@login_required
@require_GET
def show_message(request: HttpRequest, message_id: int) -> HttpResponse:
    """The reading panel of a message (an htmx fragment of the conversation page)."""
    message = _get_message(request.user, message_id)
    query = _query(request)
    if query is None:
        return HttpResponseBadRequest()
    if not request.htmx:  # type: ignore[attr-defined]
        return redirect(_conversation_url(message, images=query["images"]))
    return _panel(request, message, query["images"])


@login_required
@require_POST
def trust_sender(request: HttpRequest, message_id: int) -> HttpResponse:
    """Always show remote images from this message's sender (and never another address)."""
    message = _get_message(request.user, message_id)
    address = message.content.from_email
    if not address:
        return HttpResponseBadRequest()
    services.trust_sender(request.user, address)  # type: ignore[arg-type]
    if request.htmx:  # type: ignore[attr-defined]
        return _panel(request, message, True)
    return redirect(_conversation_url(message))


# The body frame ---------------------------------------------------------------------------------


def _sandboxed(response: HttpResponse, policy: str) -> HttpResponse:
    # A header set here is kept by django-csp's middleware, which only fills in a missing one.
    response["Content-Security-Policy"] = policy
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
@xframe_options_sameorigin
def show_body(request: HttpRequest, message_id: int) -> HttpResponse:
    """The sanitised body as a whole document for the sandboxed frame, under its own CSP."""
    query = _query(request)
    if query is None:
        return HttpResponseBadRequest()
    message = _get_granted_message(request, message_id, Purpose.BODY, query["t"], "")
    if message is None:
        return redirect_to_login(request.get_full_path())
    body = rendering.render_body(message, images=_images_wanted(message, query["images"]))
    response = HttpResponse(rendering.body_document(body), content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "private"
    return _sandboxed(response, rendering.BODY_POLICY)


# Parts ------------------------------------------------------------------------------------------


@require_GET
def download_part(request: HttpRequest, message_id: int, part: str) -> HttpResponse:
    """One attachment, decoded, as a download; ``?inline=1`` shows raster images and PDF."""
    query = _query(request)
    if query is None:
        return HttpResponseBadRequest()
    if not rendering.valid_part_path(part):
        raise Http404
    message = _get_granted_message(request, message_id, Purpose.PART, query["t"], part)
    if message is None:
        return redirect_to_login(request.get_full_path())
    content = message.content
    listed = {str(a.get("part")): a for a in content.attachments or []}
    raw = rendering.read_raw(content)
    if raw is None:
        raise Http404
    if not content.indexed:  # not listed yet: ask the parser, as the indexer will
        listed = {
            a.part_path: {"filename": a.filename, "content_type": a.content_type}
            for a in parse_message(raw).attachments
        }
    if part not in listed:
        raise Http404  # only what was listed as an attachment: never the body, never junk
    data = rendering.find_part(raw, part)
    if data is None:
        raise Http404
    filename = rendering.clean_filename(
        str(listed[part].get("filename", "")), str(listed[part].get("content_type", "")), part
    )
    shown_as = rendering.sniff_preview_type(data) if query["inline"] else None
    if shown_as is not None:
        response = HttpResponse(data, content_type=shown_as)
        response["Content-Disposition"] = rendering.content_disposition("inline", filename.text)
    else:
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = rendering.content_disposition("attachment", filename.text)
    response["Cache-Control"] = "private"
    return _sandboxed(response, rendering.PART_POLICY)


# Remote images ----------------------------------------------------------------------------------


@require_GET
def proxy_image(request: HttpRequest, message_id: int) -> HttpResponse:
    """A remote image of the message, fetched by the server (mail.proxy); the signed URL
    names it, so the proxy fetches nothing a message did not show."""
    query = _query(request)
    if query is None:
        return HttpResponseBadRequest()
    if not query["t"]:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise Http404
    grant = _check_grant(request, message_id, Purpose.IMAGE, query["t"], None)
    _get_message(grant.user_id, message_id)  # still theirs
    try:
        image = proxy.fetch_image(grant.value)
    except proxy.Refused as refused:
        status = 502 if refused.code in ("network", "timeout", "dns", "status") else 403
        return _sandboxed(HttpResponse(status=status), rendering.PART_POLICY)
    response = HttpResponse(image.data, content_type=image.content_type)
    response["Cache-Control"] = "private, max-age=86400"
    return _sandboxed(response, rendering.PART_POLICY)


# Source and print view --------------------------------------------------------------------------


@login_required
@require_GET
def show_source(request: HttpRequest, message_id: int) -> HttpResponse:
    """The message as it came: text to read, or with ``?download=1`` the .eml file."""
    message = _get_message(request.user, message_id)
    query = _query(request)
    if query is None:
        return HttpResponseBadRequest()
    raw = rendering.read_raw(message.content)
    if raw is None:
        raise Http404
    if query["download"]:
        response = HttpResponse(raw, content_type="message/rfc822")
        response["Content-Disposition"] = rendering.content_disposition("attachment", "message.eml")
    else:
        text = raw.decode("utf-8", errors="replace")
        response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "private"
    return _sandboxed(response, rendering.PART_POLICY)


@login_required
@require_GET
def print_message(request: HttpRequest, message_id: int) -> HttpResponse:
    """Headers and body on one page for printing: the body inline (an iframe prints clipped),
    which this page's CSP, the body frame's own, makes as safe as the frame."""
    message = _get_message(request.user, message_id)
    query = _query(request)
    if query is None:
        return HttpResponseBadRequest()
    prefs = services.preferences(request.user)  # type: ignore[arg-type]
    timezone.activate(prefs.time_zone)
    body = rendering.render_body(message, images=_images_wanted(message, query["images"], prefs))
    context = {
        "message": message,
        "content": message.content,
        "sender": sender.analyse(message.content),
        "body": body,
        "notice": rendering.notice(body),
        "attachments": rendering.attachments(message, body),
        "style": rendering.DOCUMENT_STYLE,
    }
    response = render(request, "mail/print.html", context)
    response["Cache-Control"] = "private"
    return _sandboxed(response, rendering.BODY_POLICY)
