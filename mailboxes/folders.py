"""Creating, renaming, deleting and (un)subscribing folders on the IMAP server.

These act on the server at once, then mirror its folder list; the messages of a renamed folder
follow at the next sync (the server keeps their UIDs only if it keeps UIDVALIDITY).
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext as _
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailboxes.models import Folder, MailAccount
from mailboxes.sync import open_imap, refresh_folders

MAX_NAME = 200
PROTECTED_ROLES = {Folder.Role.INBOX}


class FolderError(Exception):
    """A folder change refused, with a message for the user."""


def _check_leaf(account: MailAccount, leaf: str, delimiter: str) -> str:
    leaf = leaf.strip()
    if not leaf or len(leaf) > MAX_NAME:
        raise FolderError(_("A folder name needs 1 to %(max)d characters.") % {"max": MAX_NAME})
    if delimiter and delimiter in leaf:
        raise FolderError(
            _("A folder name cannot contain “%(delimiter)s”.") % {"delimiter": delimiter}
        )
    return leaf


def _delimiter(account: MailAccount) -> str:
    inbox = account.folders.filter(role=Folder.Role.INBOX).first()
    return inbox.delimiter if inbox else "/"


def _run(account: MailAccount, change: Callable[[IMAPClient], None]) -> None:
    client = open_imap(account)
    try:
        try:
            change(client)
        except IMAPClientError as exc:
            reason = {"reason": str(exc)[:200]}
            raise FolderError(_("The server refused: %(reason)s") % reason) from exc
        refresh_folders(client, account)
    finally:
        client.logout()


def create_folder(account: MailAccount, leaf: str, parent: Folder | None = None) -> Folder:
    delimiter = _delimiter(account)
    leaf = _check_leaf(account, leaf, delimiter)
    name = f"{parent.name}{delimiter}{leaf}" if parent else leaf
    if account.folders.filter(name=name).exists():
        raise FolderError(_("There is already a folder with this name."))

    def create(client: IMAPClient) -> None:
        client.create_folder(name)
        client.subscribe_folder(name)

    _run(account, create)
    return account.folders.get(name=name)


def rename_folder(folder: Folder, leaf: str) -> Folder:
    if folder.role in PROTECTED_ROLES:
        raise FolderError(_("The Inbox cannot be renamed."))
    account = folder.account
    leaf = _check_leaf(account, leaf, folder.delimiter)
    parent = folder.name.rsplit(folder.delimiter, 1)[0] if folder.delimiter in folder.name else ""
    new_name = f"{parent}{folder.delimiter}{leaf}" if parent else leaf
    if account.folders.filter(name=new_name).exists():
        raise FolderError(_("There is already a folder with this name."))
    _run(account, lambda client: client.rename_folder(folder.name, new_name))
    return account.folders.get(name=new_name)


def delete_folder(folder: Folder) -> None:
    if folder.role in PROTECTED_ROLES:
        raise FolderError(_("The Inbox cannot be deleted."))
    _run(folder.account, lambda client: client.delete_folder(folder.name))


def set_subscribed(folder: Folder, subscribed: bool) -> None:
    def change(client: IMAPClient) -> None:
        if subscribed:
            client.subscribe_folder(folder.name)
        else:
            client.unsubscribe_folder(folder.name)

    _run(folder.account, change)
