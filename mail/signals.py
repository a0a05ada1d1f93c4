"""Signals of the webmail's actions."""

from django.dispatch import Signal

# The user said "Report spam" (is_spam=True) or "Not spam" (False) about `messages` (a list of
# their `Message` rows, before the move): sent with `user`, `messages` and `is_spam`, inside the
# action's transaction.
spam_reported = Signal()
