"""Every control in the Django admin has an accessible name (WCAG 2.1 A, "label").

Django's admin leaves two kinds nameless: the date and time boxes of a
date-time field (the field's label points at neither), and every control in
a tabular inline (the column heading is not a label). ``install()`` (at
start-up, from ``AccessibleAdminConfig``, which stands for django.contrib.admin
in INSTALLED_APPS) gives each date and time box a name for the whole admin;
``NamedInlineControls`` names an inline's controls after their column.
"""

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.contrib.admin import widgets
from django.contrib.admin.apps import AdminConfig
from django.db import models

if TYPE_CHECKING:  # the mixin's super() reaches InlineModelAdmin
    _InlineBase = admin.options.InlineModelAdmin[Any, Any]
else:
    _InlineBase = object


def _field_label(name: str) -> str:
    # "memberships-0-joined_at" (an inline's row) -> "Joined at"
    return name.rsplit("-", 1)[-1].replace("_", " ").capitalize()


class NamedSplitDateTime(widgets.AdminSplitDateTime):
    """The admin's date-time widget with "<field>: date" and "<field>: time" names."""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        label = _field_label(name)
        for sub, part in zip(context["widget"]["subwidgets"], ("date", "time"), strict=False):
            sub["attrs"].setdefault("aria-label", f"{label}: {part}")
        return context


def install() -> None:
    """Every ModelAdmin copies these defaults when it is built (at autodiscover, after this)."""
    admin.options.FORMFIELD_FOR_DBFIELD_DEFAULTS[models.DateTimeField] = {
        "form_class": forms.SplitDateTimeField,
        "widget": NamedSplitDateTime,
    }


class AccessibleAdminConfig(AdminConfig):
    """django.contrib.admin, with ``install()`` run before autodiscover builds the ModelAdmins."""

    def ready(self) -> None:
        install()
        super().ready()


class NamedInlineControls(_InlineBase):
    """A tabular inline whose controls are named after their column (and "Delete <row>")."""

    def get_formset(self, request: Any, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)

        class NamedFormSet(formset):  # type: ignore[misc,valid-type]
            def add_fields(self, form: forms.Form, index: int | None) -> None:
                super().add_fields(form, index)
                for name, field in form.fields.items():
                    # A foreign key's widget is wrapped (the add/change links around it).
                    inner = getattr(field.widget, "widget", None) or field.widget
                    if isinstance(inner, forms.MultiWidget):
                        continue  # NamedSplitDateTime names its parts
                    if name == "DELETE":
                        row = getattr(form, "instance", None)
                        label = f"Delete {row}" if row is not None and row.pk else "Delete"
                    else:
                        label = str(field.label or name)
                    inner.attrs.setdefault("aria-label", label)

        return NamedFormSet
