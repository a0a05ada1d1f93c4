"""IMAP helpers imapclient lacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.imap_utf7 import decode as decode_utf7
from imapclient.imapclient import as_pairs, seq_to_parenstr_upper
from imapclient.response_parser import parse_fetch_response, parse_response
from imapclient.util import chunk


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


STATUS_ITEMS = ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ")


def list_with_status(
    client: IMAPClient,
) -> list[tuple[tuple[bytes, ...], str, str, dict[bytes, int]]]:
    """Every folder with its flags (``\\Subscribed`` and special-use ones included), delimiter,
    decoded name and STATUS, in one round trip (LIST-STATUS, RFC 5819, with LIST-EXTENDED).

    Callers check ``LIST-STATUS`` in the capabilities first. HIGHESTMODSEQ is asked for only
    when the server has CONDSTORE.
    """
    items = [item for item in STATUS_ITEMS if item != "HIGHESTMODSEQ"]
    if b"CONDSTORE" in client.capabilities():
        items.append("HIGHESTMODSEQ")
    imap = client._imap
    options = f"(SUBSCRIBED SPECIAL-USE STATUS ({' '.join(items)}))"
    tag = imap._command("LIST", '""', '"*"', "RETURN", options)
    typ, data = imap._command_complete("LIST", tag)
    client._checkok("list", typ, data)
    _typ, listed = imap._untagged_response(typ, data, "LIST")
    status_lines = imap.untagged_responses.pop("STATUS", [])
    statuses: dict[str, dict[bytes, int]] = {}
    for name, values in chunk(parse_response([line for line in status_lines if line]), 2):
        key = str(name) if isinstance(name, int) else decode_utf7(name)
        statuses[key] = dict(as_pairs(values))
    folders = []
    for flags, delimiter, name in client._proc_folder_list(listed):
        delim = delimiter.decode() if isinstance(delimiter, bytes) else (delimiter or "")
        folders.append((tuple(flags), delim, str(name), statuses.get(str(name), {})))
    return folders
