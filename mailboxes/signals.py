"""Signals of the mail store, for the apps built on it."""

from django.dispatch import Signal

# New mail in an Inbox, stored by the sync: sent with `account` and `messages` (the new
# `Message` rows, their content loaded), inside the transaction that inserts them, so that a
# receiver's changes (a move to Junk, say) are seen together with the messages or not at all.
# Not sent for the first sync of a folder, which is the mailbox as it was, not incoming mail.
incoming_mail = Signal()
