"""The "Moderators" staff group with only what moderating needs in the admin.

Permissions are created here (not left to post_migrate) so that a fresh
database gets the group fully populated in one ``migrate``. Permissions of
apps migrated later (messaging's hidden messages) are added by
rooms.permissions.moderators_group_sync on post_migrate.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODERATOR_PERMISSIONS = [
    ("rooms", "view_room"),
    ("rooms", "change_room"),
    ("rooms", "view_membership"),
    ("rooms", "change_membership"),
    ("rooms", "view_invite"),
    ("rooms", "change_invite"),
    ("rooms", "view_ban"),
    ("rooms", "add_ban"),
    ("rooms", "change_ban"),
    ("rooms", "view_auditlog"),
]


def forwards(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="Moderators")
    for app_label, codename in MODERATOR_PERMISSIONS:
        perm = Permission.objects.filter(
            content_type__app_label=app_label, codename=codename
        ).first()
        if perm is not None:
            group.permissions.add(perm)


def backwards(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Moderators").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0002_moderation"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
