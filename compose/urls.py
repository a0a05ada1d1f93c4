from __future__ import annotations

from django.urls import path

from compose import views

urlpatterns = [
    path("new/", views.start_new, name="compose-new"),
    path("reply/<int:message_id>/", views.start_reply, name="compose-reply"),
    path("forward/<int:message_id>/", views.start_forward, name="compose-forward"),
    path("drafts/", views.list_drafts, name="compose-drafts"),
    path("<int:draft_id>/", views.edit, name="compose-edit"),
    path("<int:draft_id>/save/", views.save, name="compose-save"),
    path("<int:draft_id>/send/", views.send, name="compose-send"),
    path("<int:draft_id>/undo/", views.undo, name="compose-undo"),
    path("<int:draft_id>/discard/", views.discard, name="compose-discard"),
    path("<int:draft_id>/attach/", views.attach, name="compose-attach"),
    path(
        "<int:draft_id>/attachments/<int:attachment_id>/remove/",
        views.remove_attachment,
        name="compose-attachment-remove",
    ),
    # Contacts: the autocomplete (JSON), the address book, vCard in and out.
    path("contacts/", views.suggest_contacts, name="compose-contacts"),
    path("contacts/manage/", views.manage_contacts, name="compose-contacts-manage"),
    path("contacts/add/", views.add_contact, name="compose-contact-add"),
    path("contacts/<int:contact_id>/edit/", views.rename_contact, name="compose-contact-edit"),
    path("contacts/<int:contact_id>/delete/", views.delete_contact, name="compose-contact-delete"),
    path("contacts/import/", views.import_contacts, name="compose-contacts-import"),
    path("contacts/export.vcf", views.export_contacts, name="compose-contacts-export"),
]
