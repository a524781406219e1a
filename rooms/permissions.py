"""The "Moderators" admin group: exactly the permissions moderating needs.

Created by migration rooms/0003; this keeps it complete when apps migrated
after rooms (messaging: hiding messages) add their permissions.
"""

from django.contrib.auth.models import Group, Permission

MODERATORS_GROUP = "Moderators"

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
    # Hidden messages: moderators see and hide messages, never write or delete them.
    ("messaging", "view_message"),
    ("messaging", "change_message"),
]


def moderators_group_sync(**_kwargs) -> None:
    group, _ = Group.objects.get_or_create(name=MODERATORS_GROUP)
    for app_label, codename in MODERATOR_PERMISSIONS:
        perm = Permission.objects.filter(
            content_type__app_label=app_label, codename=codename
        ).first()
        if perm is not None:
            group.permissions.add(perm)
