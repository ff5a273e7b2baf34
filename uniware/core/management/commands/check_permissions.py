"""Print who may use what in the admin (the role table), and where the groups differ from it.

    python manage.py check_permissions                   # every page, action and download
    python manage.py check_permissions --role "Pick and Pack"   # one role's list

The table is `uniware.core.access.TABLE` (proved against the running admin by
`tests/test_role_matrix.py`); the rows are named as staff see them (the model's name in the
admin, the action's label). Below it, each predefined group's permissions in this database are
compared with what `uniware/core/roles.py` grants: permissions an admin added or removed by
hand are listed, since the table holds only for the groups as shipped. `--strict` exits 1 then.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError

from uniware.core.access import ACCESS, ROLES
from uniware.core.roles import ROLE_PERMISSIONS, permissions_for

PAGES = {
    "list": "see the list",
    "view": "open a record",
    "add": "add",
    "change": "change",
    "delete": "delete",
}


def _model_title(label: str) -> str:
    try:
        model = apps.get_model(label)
    except LookupError:
        return label
    app = apps.get_app_config(model._meta.app_label).verbose_name
    return f"{app} › {str(model._meta.verbose_name_plural).capitalize()}"


def _action_label(label: str, name: str) -> str:
    try:
        model_admin = admin.site._registry[apps.get_model(label)]
    except (LookupError, KeyError):
        return name
    func = getattr(model_admin, name, None) or admin.site._actions.get(name)
    for action in model_admin.actions or ():
        if getattr(action, "__name__", action) == name and callable(action):
            func = action
    description = getattr(func, "short_description", None) or name.replace("_", " ")
    plural = model_admin.model._meta.verbose_name_plural
    return f"action: {description}".replace("%(verbose_name_plural)s", str(plural))


def _row_label(label: str, what: str) -> str:
    if what in PAGES:
        return PAGES[what]
    if what.startswith("action "):
        return _action_label(label, what.removeprefix("action "))
    return what


def group_drift() -> list[str]:
    """Permissions of the predefined groups that differ from what roles.py grants."""
    every = list(Permission.objects.select_related("content_type"))
    lines = []
    for role in ROLE_PERMISSIONS:
        group = Group.objects.filter(name=role).first()
        if group is None:
            lines.append(f"{role}: the group is missing (run migrate)")
            continue
        granted = {p.pk for p in permissions_for(role, every)}
        held = set(group.permissions.values_list("pk", flat=True))
        names = {p.pk: f"{p.content_type.app_label}.{p.codename}" for p in every}
        for pk in sorted(held - granted, key=names.get):
            lines.append(f"{role}: also has {names[pk]} (added by hand)")
        for pk in sorted(granted - held, key=names.get):
            lines.append(f"{role}: lacks {names[pk]} (removed by hand)")
    return lines


class Command(BaseCommand):
    help = "Print the role table (who may use which admin page, action and download)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--role", help="only what this role may use")
        parser.add_argument(
            "--strict", action="store_true", help="exit 1 when a group differs from roles.py"
        )

    def handle(self, *args, role: str | None = None, strict: bool = False, **options) -> None:
        if role and role not in ROLES.values():
            raise CommandError(f"unknown role {role!r}: one of {', '.join(ROLES.values())}")
        self.stdout.write(self._table(role))
        drift = group_drift()
        self.stdout.write("")
        if not drift:
            self.stdout.write("The groups in this database hold exactly the shipped roles.")
            return
        self.stdout.write("The groups in this database differ from the shipped roles:")
        for line in drift:
            self.stdout.write(f"  {line}")
        if strict:
            raise CommandError(f"{len(drift)} difference(s) between the groups and roles.py")

    def _table(self, role: str | None) -> str:
        by_model: dict[str, list[tuple[str, frozenset[str]]]] = {}
        for entry, roles in ACCESS.items():
            label, what = entry.split(" ", 1)
            if role is None or role in roles:
                by_model.setdefault(label, []).append((what, roles))
        legend = ", ".join(f"{i} = {name}" for i, name in ROLES.items())
        lines = [f"Roles: {legend}" if role is None else f"What {role} may use:"]
        width = 64
        for label in sorted(by_model, key=_model_title):
            lines.append("")
            head = _model_title(label)
            lines.append(head.ljust(width) + ("  ".join(ROLES) if role is None else ""))
            for what, roles in sorted(by_model[label], key=lambda r: _order(r[0])):
                text = f"  {_row_label(label, what)}"[: width - 1].ljust(width)
                if role is None:
                    text += "  ".join(i if ROLES[i] in roles else "." for i in ROLES)
                lines.append(text.rstrip())
        return "\n".join(lines)


def _order(what: str) -> tuple[int, str]:
    keys = list(PAGES)
    return (keys.index(what), "") if what in keys else (len(keys), what)
