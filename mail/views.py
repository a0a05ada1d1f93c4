from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from mail import listing, services
from mail.forms import ActionForm, ListForm, PreferencesForm, SearchForm
from mail.listing import View
from mail.models import Preferences, UndoableAction
from mail.services import Action
from mailboxes import live
from mailboxes.models import Folder
from mailcore.query import QueryError, highlight_terms

QUERY_ERRORS = {
    "unknown-operator": gettext_noop("Unknown search operator “{0}:”."),
    "empty-operand": gettext_noop("“{0}” needs a value after it."),
    "bad-value": gettext_noop("“{1}” is not a value “{0}:” understands."),
    "bad-date": gettext_noop("“{0}” is not a date: write it as 2026/11/29."),
    "bad-duration": gettext_noop("“{0}” is not a duration: write it as 3d, 2w, 6m or 1y."),
    "bad-size": gettext_noop("“{0}” is not a size: write it as 500K or 10M."),
    "unbalanced-quote": gettext_noop("A quotation mark is not closed."),
    "unbalanced-parenthesis": gettext_noop("A parenthesis is not closed, or closed twice."),
    "misplaced-or": gettext_noop("OR must stand between two search terms."),
    "too-long": gettext_noop("The search is too long (at most {0} characters)."),
    "too-many-terms": gettext_noop("The search has too many terms (at most {0})."),
    "too-deep": gettext_noop("The search nests parentheses too deeply (at most {0} levels)."),
}


def query_error_message(error: QueryError) -> str:
    template = QUERY_ERRORS.get(error.code)
    if template is None:
        return _("This search cannot be read.")
    return _(template).format(*error.message_args)


# Lists ------------------------------------------------------------------------------------------


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    return _list(request, View("inbox"))


@login_required
def starred(request: HttpRequest) -> HttpResponse:
    return _list(request, View("starred"))


@login_required
def snoozed(request: HttpRequest) -> HttpResponse:
    return _list(request, View("snoozed"))


@login_required
def folder(request: HttpRequest, folder_id: int) -> HttpResponse:
    return _list(request, listing.folder_view(request.user, folder_id))  # type: ignore[arg-type]


@login_required
def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    if not form.is_valid():
        return _list(request, View("search"), form_errors=form.errors)
    query = form.cleaned_data["q"]
    try:
        view = listing.search_view(query)
    except QueryError as error:
        return _list(request, View("search", query=query), error=query_error_message(error))
    return _list(request, view, cursor=form.cleaned_data["after"])


def _list(
    request: HttpRequest,
    view: View,
    *,
    cursor: listing.Cursor | None = None,
    error: str = "",
    form_errors: Any = None,
) -> HttpResponse:
    user = request.user
    if cursor is None and view.kind != "search":
        form = ListForm(request.GET)
        if not form.is_valid():
            return HttpResponseBadRequest(_("This page link is not valid."))
        cursor = form.cleaned_data["after"]
    prefs = services.preferences(user)  # type: ignore[arg-type]
    version = live.version(user.pk)  # before the page: a change in between is not lost
    target = request.htmx.target if request.htmx else None  # type: ignore[attr-defined]
    more_rows = request.htmx and target != "mail-list" and request.GET.get("after")  # type: ignore[attr-defined]
    # The sidebar's folders spare the page a query of its own.
    shell = {} if more_rows else _shell(request, view, prefs)
    page = listing.page(
        user,  # type: ignore[arg-type]
        view,
        cursor,
        size=prefs.page_size,
        conversations=prefs.conversation_view,
        folders=shell["sidebar"].every_folder if shell else None,
    )
    context = {
        **shell,
        "view": view,
        "page": page,
        "rows": page.rows,
        "next_url": _page_url(request, view, page.next_cursor),
        "error": error or (form_errors and _("This search cannot be read.")),
        "query": view.query,
        "highlight": highlight_terms(view.tree) if view.tree is not None else [],
        "version": version,
    }
    if more_rows:
        return render(request, "mail/list_rows.html", context)
    if target == "mail-list":
        return render(request, "mail/list_panel.html", context)
    return render(request, "mail/list.html", context)


def _page_url(request: HttpRequest, view: View, cursor: listing.Cursor | None) -> str:
    if cursor is None:
        return ""
    params = {"after": str(cursor)}
    if view.kind == "search":
        params["q"] = view.query
    return f"{request.path}?{urlencode(params)}"


def _shell(request: HttpRequest, view: View, prefs: Preferences | None = None) -> dict[str, Any]:
    """What every mail page shows around its content: the sidebar and the move targets."""
    sidebar = listing.sidebar(request.user)  # type: ignore[arg-type]
    prefs = prefs or services.preferences(request.user)  # type: ignore[arg-type]
    timezone.activate(prefs.time_zone)
    undo_id = request.session.pop("mail-undo", None)  # left by an action without JS
    return {
        "sidebar": sidebar,
        "view": view,
        "prefs": prefs,
        "pending_undo": UndoableAction.objects.filter(pk=undo_id, user=request.user).first()
        if undo_id
        else None,
        "move_targets": [
            (entry.account, [f for f in entry.folders if f.folder.role != Folder.Role.DRAFTS])
            for entry in sidebar.accounts
        ],
    }


# One conversation -------------------------------------------------------------------------------


@login_required
def conversation(request: HttpRequest, conversation_id: int) -> HttpResponse:
    user = request.user
    try:
        view = listing.view_from_key(
            user,  # type: ignore[arg-type]
            request.GET.get("v", "inbox")[:40],
            request.GET.get("q", "")[:500],
        )
    except QueryError:
        view = View("inbox")
    version = live.version(user.pk)
    found, shown = listing.conversation(user, conversation_id)  # type: ignore[arg-type]
    unread_ids = {item.message.pk for item in shown if not item.message.seen}
    unread = [pk for item in shown for pk in item.ids if not item.message.seen]
    if unread:
        services.mark_read(user, unread)  # type: ignore[arg-type]
        for item in shown:
            item.message.seen = True
    context = {
        "conversation": found,
        "shown": shown,
        "last": shown[-1],
        "back_url": _back_url(view),
        "all_ids": [pk for item in shown for pk in item.ids],
        "unread_ids": unread_ids,  # opened on the page, as they were unread
        "version": version,
    }
    context.update(_shell(request, view))
    return render(request, "mail/conversation.html", context)


def _back_url(view: View) -> str:
    if view.kind == "folder":
        assert view.folder is not None
        return reverse("mail-folder", args=[view.folder.pk])
    if view.kind == "search":
        return f"{reverse('mail-search')}?{urlencode({'q': view.query})}"
    if view.kind in ("starred", "snoozed"):
        return reverse(f"mail-{view.kind}")
    return reverse("mail-inbox")


# Actions ----------------------------------------------------------------------------------------


def done_message(action: Action, n: int) -> str:
    """What the toast says once `action` was done on `n` conversations."""
    texts = {
        Action.READ: ngettext("Marked as read.", "{n} conversations marked as read.", n),
        Action.UNREAD: ngettext("Marked as unread.", "{n} conversations marked as unread.", n),
        Action.STAR: ngettext("Starred.", "{n} conversations starred.", n),
        Action.UNSTAR: ngettext("Star removed.", "Stars removed from {n} conversations.", n),
        Action.ARCHIVE: ngettext("Conversation archived.", "{n} conversations archived.", n),
        Action.DELETE: ngettext(
            "Conversation moved to the Trash.", "{n} conversations moved to the Trash.", n
        ),
        Action.SPAM: ngettext(
            "Conversation reported as spam.", "{n} conversations reported as spam.", n
        ),
        Action.NOT_SPAM: ngettext(
            "Conversation moved to the Inbox.", "{n} conversations moved to the Inbox.", n
        ),
        Action.MOVE: ngettext("Conversation moved.", "{n} conversations moved.", n),
        Action.DELETE_FOREVER: ngettext(
            "Deleted for good.", "{n} conversations deleted for good.", n
        ),
        Action.LABEL: ngettext("Label added.", "Label added to {n} conversations.", n),
        Action.UNLABEL: ngettext("Label removed.", "Label removed from {n} conversations.", n),
        Action.SNOOZE: ngettext("Conversation snoozed.", "{n} conversations snoozed.", n),
        Action.UNSNOOZE: ngettext(
            "Conversation back in the Inbox.", "{n} conversations back in the Inbox.", n
        ),
    }
    return texts[action].format(n=n)


@login_required
@require_POST
def act(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = ActionForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(str(e) for e in form.non_field_errors()) or _(
            "This action could not be done: reload the page and try again."
        )
        return _after_action(request, form, errors, None, error=True)
    data = form.cleaned_data
    try:
        view = listing.view_from_key(user, data["view"], data["q"])  # type: ignore[arg-type]
    except QueryError:
        view = View("search", query=data["q"])
    target = None
    if data["target"]:
        target = Folder.objects.filter(pk=data["target"], account__user=user).first()
        if target is None:
            raise Http404
    action = Action(data["action"])
    chosen = services.selected_messages(
        user,  # type: ignore[arg-type]
        view,
        data["conversation"],
        data["message"],
    )
    if not chosen.exists():
        raise Http404  # none of these is the user's
    count = len(data["conversation"]) + len(data["message"])
    changed, undo = services.apply(
        user,  # type: ignore[arg-type]
        view,
        action,
        chosen,
        target,
        label=data["label"],
        until=data["until"],
    )
    text = done_message(action, count) if changed else _("Nothing to change.")
    return _after_action(request, form, text, undo)


def _after_action(
    request: HttpRequest,
    form: ActionForm,
    text: str,
    undo: Any,
    *,
    error: bool = False,
) -> HttpResponse:
    if request.htmx:  # type: ignore[attr-defined]
        response = render(request, "mail/toast.html", {"text": text, "undo": undo, "error": error})
        response["HX-Trigger"] = "mail-changed"
        return response
    (messages.error if error else messages.success)(request, text)
    if undo is not None:
        request.session["mail-undo"] = undo.pk
    target = form.data.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = reverse("mail-inbox")
    return redirect(target)


@login_required
@require_POST
def undo(request: HttpRequest, undo_id: int) -> HttpResponse:
    if not UndoableAction.objects.filter(pk=undo_id, user=request.user).exists():
        raise Http404
    done = services.undo(request.user, undo_id)  # type: ignore[arg-type]
    text = _("Undone.") if done else _("Too late to undo that.")
    if request.htmx:  # type: ignore[attr-defined]
        response = render(request, "mail/toast.html", {"text": text, "error": not done})
        response["HX-Trigger"] = "mail-changed"
        return response
    (messages.success if done else messages.error)(request, text)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = reverse("mail-inbox")
    return redirect(target)


@login_required
@require_POST
def empty_folder(request: HttpRequest, folder_id: int) -> HttpResponse:
    view = listing.folder_view(request.user, folder_id)  # type: ignore[arg-type]
    assert view.folder is not None
    if view.folder.role not in listing.HIDDEN:
        return HttpResponseBadRequest(_("Only the Trash and Junk folders can be emptied."))
    count = services.empty_folder(request.user, view.folder)  # type: ignore[arg-type]
    messages.success(
        request,
        ngettext("{n} message deleted for good.", "{n} messages deleted for good.", count).format(
            n=count
        ),
    )
    return redirect("mail-folder", folder_id)


# Live updates and settings -----------------------------------------------------------------------


@login_required
@require_GET
@never_cache
def poll(request: HttpRequest) -> HttpResponse:
    """The version of the user's mail: one cache read. 204 while it is the one the page has."""
    current = live.version(request.user.pk)
    if request.GET.get("v") == current:
        return HttpResponse(status=204)
    return JsonResponse({"version": current})


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    prefs = services.preferences(request.user)  # type: ignore[arg-type]
    form = PreferencesForm(request.POST or None, instance=prefs)
    if request.method == "POST":
        if form.is_valid():
            form.save()
            messages.success(request, _("Settings saved."))
            response = redirect("mail-settings")
            if prefs.language:
                from django.conf import settings

                response.set_cookie(
                    settings.LANGUAGE_COOKIE_NAME,
                    prefs.language,
                    max_age=365 * 24 * 3600,
                    samesite="Lax",
                    secure=request.is_secure(),
                )
            return response
        messages.error(request, _("Please correct the errors below."))
    context = {"form": form, "version": live.version(request.user.pk)}
    context.update(_shell(request, View("inbox"), prefs))
    context["view"] = None  # no folder is the current page here
    return render(request, "mail/settings.html", context)
