"""Admin pages of documents made by a service (manifests, return manifests): a small add form,
then a read-only page of what the service made."""

from __future__ import annotations

from django import forms
from django.contrib.admin.utils import flatten_fieldsets


class AddFormMixin:
    """The add page shows `add_form` (its fields only); the change page shows `change_fields`,
    read-only except `change_editable`. `save_model` hands the add form's values to a service
    and `adopt` copies what the service made onto the admin's object, so the admin redirects
    to it."""

    add_form: type[forms.ModelForm]
    change_fields: list
    change_editable: tuple[str, ...] = ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return list(self.add_form._meta.fields) if obj is None else self.change_fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        fields = flatten_fieldsets([(None, {"fields": self.change_fields})])
        return [f for f in fields if f not in self.change_editable]

    @staticmethod
    def adopt(obj, created) -> None:
        """Make the admin's unsaved `obj` the row the service created."""
        obj.pk, obj.code, obj.status = created.pk, created.code, created.status
        obj.created_at, obj.created_by = created.created_at, created.created_by
