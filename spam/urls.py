from __future__ import annotations

from django.urls import path

from spam import views

urlpatterns = [
    path("", views.filters, name="spam-filters"),
    path("senders/", views.add_sender, name="spam-sender-add"),
    path("senders/<int:entry_id>/remove/", views.remove_sender, name="spam-sender-remove"),
    path("rules/", views.add_rule, name="spam-rule-add"),
    path("rules/<int:index>/remove/", views.remove_rule, name="spam-rule-remove"),
    path("rules/edit/", views.save_rules, name="spam-rules-save"),
    path("classifier/rebuild/", views.rebuild_classifier, name="spam-classifier-rebuild"),
    path("dry-run/", views.dry_run, name="spam-dry-run"),
]
