"""Writing mail: the editor (new, reply, forward), autosave, attachments, send with undo or
later, discard; the drafts and outbox list; contacts (autocomplete, address book, vCard)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import formats, timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from compose import contacts, drafts
from compose.drafts import NotEditable, Problem
from compose.forms import (
    AttachForm,
    ComposeForm,
    ContactForm,
    ContactImportForm,
    ContactListForm,
    ContactNameForm,
    ContactQueryForm,
    ForwardForm,
    ReplyForm,
    SendForm,
    StartForm,
    sender_value,
)
from compose.models import Contact, Draft
from mail import listing
from mail.services import preferences
from mailboxes import live
from mailboxes.models import MailAccount, Message
from mailcore.sanitize import sanitize_html

# Room for the multipart framing and the CSRF field around a file's bytes.
UPLOAD_OVERHEAD = 64 * 1024
CONTACTS_PER_PAGE = 100
OUTBOX_STATES = [
    Draft.State.QUEUED,
    Draft.State.SENDING,
    Draft.State.RETRYING,
    Draft.State.ACCEPTED,
]
# Where a Problem's field (compose.drafts.check, mailcore.compose) shows in the form.
PROBLEM_FIELDS = {"to": "to", "cc": "cc", "bcc": "bcc", "subject": "subject", "from": "sender"}


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]  # login_required guarantees it


def _get_draft_for_user(request: HttpRequest, draft_id: int) -> Draft:
    drafts_of_user = Draft.objects.filter(user=request.user).select_related("account")
    return get_object_or_404(drafts_of_user, pk=draft_id)


def _get_message_for_user(request: HttpRequest, message_id: int) -> Message:
    return get_object_or_404(
        Message.objects.select_related("content", "folder__account"),
        pk=message_id,
        folder__account__user=request.user,
    )


def _get_contact_for_user(request: HttpRequest, contact_id: int) -> Contact:
    return get_object_or_404(Contact, pk=contact_id, user=request.user)


def _shell(request: HttpRequest) -> dict[str, Any]:
    """What mail/layout.html shows around a compose page: the sidebar, in the user's zone."""
    user = _user(request)
    prefs = preferences(user)
    timezone.activate(prefs.time_zone)
    return {"sidebar": listing.sidebar(user), "prefs": prefs, "version": live.version(user.pk)}


# Starting ---------------------------------------------------------------------------------------


@login_required
@require_GET
def start_new(request: HttpRequest) -> HttpResponse:
    form = StartForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(_("This link is not valid."))
    account = None
    if form.cleaned_data["account"]:
        account = get_object_or_404(MailAccount, pk=form.cleaned_data["account"], user=request.user)
    return _started(request, account=account)


@login_required
@require_GET
def start_reply(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _get_message_for_user(request, message_id)
    form = ReplyForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(_("This link is not valid."))
    return _started(request, reply_to=message, reply_all=form.cleaned_data["all"])


@login_required
@require_GET
def start_forward(request: HttpRequest, message_id: int) -> HttpResponse:
    message = _get_message_for_user(request, message_id)
    form = ForwardForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(_("This link is not valid."))
    return _started(request, forward=message, as_attachment=form.cleaned_data["attachment"])


def _started(request: HttpRequest, **how: Any) -> HttpResponse:
    try:
        draft = drafts.start(_user(request), **how)
    except Problem as problem:
        messages.error(request, problem.message)
        return redirect("mail-account-add")
    return redirect("compose-edit", draft.pk)


# The editor -------------------------------------------------------------------------------------


@login_required
@require_GET
def edit(request: HttpRequest, draft_id: int) -> HttpResponse:
    draft = _get_draft_for_user(request, draft_id)
    return _editor(request, draft)


def _initial(draft: Draft) -> dict[str, Any]:
    return {
        "sender": sender_value(draft.account_id, draft.identity_id),
        "to": draft.to,
        "cc": draft.cc,
        "bcc": draft.bcc,
        "subject": draft.subject,
        "html": draft.html,
    }


def _editor(
    request: HttpRequest,
    draft: Draft,
    form: ComposeForm | None = None,
    send_form: SendForm | None = None,
) -> HttpResponse:
    """The editor page; with bound forms, what was typed and the errors next to the fields
    (200, as the project's other forms re-render)."""
    context = _shell(request)
    form = form or ComposeForm(_user(request), initial=_initial(draft))
    if form.is_bound:
        # What was typed, shown again; never the raw HTML as posted.
        typed = form.data.get("html", "")
        safe = sanitize_html(typed, images=False)
        body = safe.html if not safe.over_budget else ""
    else:
        body = draft.html
    context.update(
        {
            "draft": draft,
            "form": form,
            "send_form": send_form or SendForm(),
            "body": SafeString(body),  # sanitised: drafts.save, or just above
            "editable": draft.state == Draft.State.DRAFT,
            "show_cc": bool(form["cc"].value() or form["cc"].errors),
            "show_bcc": bool(form["bcc"].value() or form["bcc"].errors),
        }
    )
    context.update(_attachments_context(draft))
    return render(request, "compose/editor.html", context)


def _attachments_context(draft: Draft) -> dict[str, Any]:
    attachments = list(draft.attachments.order_by("created_at", "pk"))
    limit = drafts.attachment_limit(draft)
    return {
        "draft": draft,
        "attachments": attachments,
        "attachments_used": sum(a.size for a in attachments),
        "attachment_limit": limit,
        "too_large_message": drafts.too_large_message(limit),
        "forwarded_message": draft.forwarding if draft.forward_as_attachment else None,
    }


def _save_from(draft: Draft, form: ComposeForm) -> Draft:
    """Raises NotEditable."""
    data = form.cleaned_data
    account, identity = data["sender"]
    return drafts.save(
        draft,
        account=account,
        identity=identity,
        to=data["to"],
        cc=data["cc"],
        bcc=data["bcc"],
        subject=data["subject"],
        html=data["html"],
    )


@login_required
@require_POST
def save(request: HttpRequest, draft_id: int) -> HttpResponse:
    """Autosave: 200 with the new version, 400 with the fields' errors, 409 once sent."""
    draft = _get_draft_for_user(request, draft_id)
    form = ComposeForm(_user(request), request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    try:
        saved = _save_from(draft, form)
    except NotEditable:
        return JsonResponse({"error": _("This message is no longer a draft.")}, status=409)
    return JsonResponse({"version": saved.version})


@login_required
@require_POST
def send(request: HttpRequest, draft_id: int) -> HttpResponse:
    draft = _get_draft_for_user(request, draft_id)
    prefs = preferences(_user(request))
    timezone.activate(prefs.time_zone)  # "Send at" is in the user's time zone
    form = ComposeForm(_user(request), request.POST)
    send_form = SendForm(request.POST)
    if not (form.is_valid() & send_form.is_valid()):  # both, for every error at once
        return _editor(request, draft, form, send_form)
    send_at = send_form.cleaned_data["send_at"]
    try:
        draft = _save_from(draft, form)
        queued = drafts.queue(draft, delay=prefs.undo_send_seconds, send_at=send_at)
    except NotEditable:
        messages.error(request, _("This message is already on its way."))
        return redirect("compose-edit", draft.pk)
    except Problem as problem:
        field = PROBLEM_FIELDS.get(problem.field)
        form.add_error(field, problem.message)
        return _editor(request, draft, form, send_form)
    if send_at is not None:
        when = formats.date_format(timezone.localtime(send_at), "DATETIME_FORMAT")
        text = _("Scheduled for %(when)s.") % {"when": when}
        messages.success(request, _with_undo(request, queued, text, _("Cancel")))
    elif prefs.undo_send_seconds:
        messages.success(request, _with_undo(request, queued, _("Sending…"), _("Undo")))
    else:
        messages.success(request, _("Sending…"))
    return redirect("mail-inbox")


def _with_undo(request: HttpRequest, draft: Draft, text: str, button: str) -> SafeString:
    """The notice the inbox shows, with its Undo form (a Django message kept as safe HTML)."""
    html = render_to_string(
        "compose/undo_notice.html",
        {"draft": draft, "text": text, "button": button},
        request=request,
    )
    return SafeString(html.strip())


@login_required
@require_POST
def undo(request: HttpRequest, draft_id: int) -> HttpResponse:
    draft = _get_draft_for_user(request, draft_id)
    if drafts.undo(draft):
        messages.success(request, _("Not sent: the message is back in your drafts."))
        return redirect("compose-edit", draft.pk)
    draft.refresh_from_db(fields=["state"])
    if draft.state == Draft.State.DRAFT:  # undone already (a second click)
        return redirect("compose-edit", draft.pk)
    if draft.state in (Draft.State.SENDING, Draft.State.RETRYING):
        messages.error(request, _("Too late to undo: the message is being sent."))
    else:
        messages.error(request, _("Already sent."))
    return redirect("mail-inbox")


@login_required
@require_POST
def discard(request: HttpRequest, draft_id: int) -> HttpResponse:
    draft = _get_draft_for_user(request, draft_id)
    if not drafts.discard(draft):
        messages.error(request, _("This message is no longer a draft."))
        return redirect("compose-edit", draft.pk)
    messages.success(request, _("Draft discarded."))
    return redirect("mail-inbox")


# Attachments ------------------------------------------------------------------------------------


def _is_xhr(request: HttpRequest) -> bool:
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


def _refuse(request: HttpRequest, draft: Draft, text: str, status: int) -> HttpResponse:
    if _is_xhr(request):
        return JsonResponse({"error": text}, status=status)
    if status == 413:  # the body was not read: no redirect the browser would wait for
        return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
    messages.error(request, text)
    return redirect("compose-edit", draft.pk)


# The CSRF check reads the body (request.POST): it runs below, once the size is known to fit.
@csrf_exempt
@login_required
@require_POST
def attach(request: HttpRequest, draft_id: int) -> HttpResponse:
    """One upload (compose.js sends each file alone, with a progress bar; a form without
    JavaScript may send several). Too large is refused from Content-Length, before reading."""
    draft = _get_draft_for_user(request, draft_id)
    if draft.state != Draft.State.DRAFT:
        return _refuse(request, draft, _("This message is no longer a draft."), 409)
    limit = drafts.attachment_limit(draft)
    used = draft.attachments.aggregate(total=Sum("size"))["total"] or 0
    try:
        length = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return HttpResponse(_("The upload has no length."), status=411)
    if length > limit - used + UPLOAD_OVERHEAD:
        return _refuse(request, draft, drafts.too_large_message(limit), 413)
    return _attach_checked(request, draft)


@csrf_protect
def _attach_checked(request: HttpRequest, draft: Draft) -> HttpResponse:
    form = AttachForm(request.POST, request.FILES)
    if not form.is_valid():
        return _refuse(request, draft, " ".join(form.errors.get("file", [])), 400)
    try:
        for upload in form.cleaned_data["file"]:
            drafts.attach(draft, upload)
    except Problem as problem:
        return _refuse(request, draft, problem.message, 413)
    except NotEditable:
        return _refuse(request, draft, _("This message is no longer a draft."), 409)
    except ValueError:  # a line break in the file's name (mailcore.compose.HeaderInjection)
        return _refuse(request, draft, _("This file's name cannot be used."), 400)
    if _is_xhr(request):
        return render(request, "compose/attachment_list.html", _attachments_context(draft))
    return redirect("compose-edit", draft.pk)


@login_required
@require_POST
def remove_attachment(request: HttpRequest, draft_id: int, attachment_id: int) -> HttpResponse:
    draft = _get_draft_for_user(request, draft_id)
    try:
        removed = drafts.remove_attachment(draft, attachment_id)
    except NotEditable:
        return _refuse(request, draft, _("This message is no longer a draft."), 409)
    if not removed:
        raise Http404
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "compose/attachment_list.html", _attachments_context(draft))
    return redirect("compose-edit", draft.pk)


# Drafts and outbox ------------------------------------------------------------------------------


@login_required
@require_GET
def list_drafts(request: HttpRequest) -> HttpResponse:
    mine = Draft.objects.filter(user=request.user).defer("html", "text", "references")
    # A draft never saved (version 0) is a "New message" or a reply opened and left: not listed.
    written = mine.filter(state=Draft.State.DRAFT, version__gt=0)
    context = _shell(request)
    context.update(
        {
            "drafts": list(written.order_by("-updated_at")[:500]),
            "outbox": list(mine.filter(state__in=OUTBOX_STATES).order_by("send_at", "pk")[:500]),
        }
    )
    return render(request, "compose/drafts.html", context)


# Contacts ---------------------------------------------------------------------------------------


@login_required
@require_GET
def suggest_contacts(request: HttpRequest) -> HttpResponse:
    """The autocomplete: JSON, at most 8, most used first."""
    form = ContactQueryForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"contacts": []}, status=400)
    user = _user(request)
    contacts.learn_from_mail(user)
    found = contacts.suggest(user, form.cleaned_data["q"])
    return JsonResponse(
        {
            "contacts": [
                {
                    "name": c.name,
                    "email": c.email,
                    "value": contacts.recipient_text(c.name, c.email),
                }
                for c in found
            ]
        }
    )


@login_required
@require_GET
def manage_contacts(request: HttpRequest) -> HttpResponse:
    return _contacts_page(request)


def _contacts_page(
    request: HttpRequest,
    *,
    add_form: ContactForm | None = None,
    import_form: ContactImportForm | None = None,
    status: int = 200,
) -> HttpResponse:
    query_form = ContactListForm(request.GET)
    query, number = "", 1
    if query_form.is_valid():
        query = query_form.cleaned_data["q"]
        number = query_form.cleaned_data["page"] or 1
    user = _user(request)
    contacts.learn_from_mail(user)
    page = Paginator(contacts.listed(user, query), CONTACTS_PER_PAGE).get_page(number)
    context = _shell(request)
    context.update(
        {
            "page": page,
            "query": query,
            "query_form": query_form,
            "add_form": add_form or ContactForm(),
            "import_form": import_form or ContactImportForm(),
            "max_vcard_mb": contacts.MAX_VCARD_BYTES // (1024 * 1024),
        }
    )
    return render(request, "compose/contacts.html", context)


@login_required
@require_POST
def add_contact(request: HttpRequest) -> HttpResponse:
    form = ContactForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        if contacts.add(_user(request), data["email"], data["name"]) is not None:
            messages.success(request, _("Contact added."))
            return redirect("compose-contacts-manage")
        form.add_error("email", _("This address is already in your contacts."))
    return _contacts_page(request, add_form=form)


@login_required
@require_POST
def rename_contact(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _get_contact_for_user(request, contact_id)
    form = ContactNameForm(request.POST)
    if not form.is_valid():
        text = " ".join(form.errors.get("name", []))
        messages.error(request, f"{contact.email}: {text}")
        return redirect("compose-contacts-manage")
    contacts.rename(contact, form.cleaned_data["name"])
    messages.success(request, _("Contact saved."))
    return redirect("compose-contacts-manage")


@login_required
@require_POST
def delete_contact(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = _get_contact_for_user(request, contact_id)
    contacts.delete(contact)
    messages.success(request, _("%(email)s removed from your contacts.") % {"email": contact.email})
    return redirect("compose-contacts-manage")


VCARD_ERRORS = {
    "too-large": gettext_lazy("The file is too large (at most %(mb)s MB)."),
    "too-many": gettext_lazy("The file has too many contacts (at most %(cards)s)."),
    "no-card": gettext_lazy("This file has no vCard in it."),
}


@login_required
@require_POST
def import_contacts(request: HttpRequest) -> HttpResponse:
    form = ContactImportForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if (upload.size or 0) > contacts.MAX_VCARD_BYTES:
                raise contacts.VCardError("too-large")
            cards = contacts.parse_vcards(upload.read())
        except contacts.VCardError as error:
            form.add_error(
                "file",
                VCARD_ERRORS[error.code]
                % {
                    "mb": contacts.MAX_VCARD_BYTES // (1024 * 1024),
                    "cards": formats.number_format(contacts.MAX_VCARDS, force_grouping=True),
                },
            )
        else:
            result = contacts.import_cards(_user(request), cards)
            messages.success(request, _import_summary(result))
            return redirect("compose-contacts-manage")
    return _contacts_page(request, import_form=form)


def _import_summary(result: contacts.Imported) -> str:
    parts = [
        ngettext("%(n)s contact added", "%(n)s contacts added", result.created)
        % {"n": result.created},
        ngettext("%(n)s renamed", "%(n)s renamed", result.updated) % {"n": result.updated},
    ]
    if result.skipped:
        parts.append(
            ngettext(
                "%(n)s card without an address skipped",
                "%(n)s cards without an address skipped",
                result.skipped,
            )
            % {"n": result.skipped}
        )
    return _("Import done: %(summary)s.") % {"summary": ", ".join(parts)}


@login_required
@require_GET
def export_contacts(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(
        contacts.export_vcards(_user(request)), content_type="text/vcard; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="contacts.vcf"'
    return response
