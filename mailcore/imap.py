"""IMAP helpers imapclient lacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.imapclient import seq_to_parenstr_upper
from imapclient.response_parser import parse_fetch_response


def fetch_range(
    client: IMAPClient,
    sequence_set: str,
    items: Sequence[str],
    modifiers: Sequence[str] | None = None,
) -> dict[int, dict[bytes, Any]]:
    """``UID FETCH`` over a sequence set such as ``1:*``, every response kept.

    ``IMAPClient.fetch`` turns its argument into a list of integers to drop unsolicited
    responses, which refuses ranges; listing 100,000 UIDs instead would exceed servers' line
    limits. This issues the same command through imapclient's own connection and parser.
    """
    imap = client._imap
    args = ["UID", "FETCH", sequence_set, seq_to_parenstr_upper(items)]
    if modifiers:
        args.append(seq_to_parenstr_upper(modifiers))
    tag = imap._command(*args)
    typ, data = imap._command_complete("FETCH", tag)
    client._checkok("fetch", typ, data)
    typ, data = imap._untagged_response(typ, data, "FETCH")
    return parse_fetch_response(data, client.normalise_times, True)
