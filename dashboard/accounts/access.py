"""What a signed-in session keeps about its user: permissions and second factor, read once per session.

A request used to read the user's permissions (two queries: their own and their groups') and the
second-factor device its session was verified with (one more). Both change rarely, so the session
keeps a copy (SESSION_KEY) with the version of the user's AccessStamp it was read at, and the stamp
comes with the user in the one query that reads them (AccessStampBackendMixin). A session whose copy
is of another version, or of another device than the session now names, reads both again: the
two-factor middleware does that (dashboard/accounts/two_factor/verification.py).

A copy is written when the session is saved anyway (signing in, verifying, the idle clock's save at
most once a minute), never on its own: a write moves the session's idle expiry on, which a page's
automatic requests must not do (dashboard/accounts/sessions.py). Until then a request reads again.

The receivers at the end move a user's stamp on after anything the copy depends on has changed:
their groups or own permissions, a group's permissions, a group or permission deleted, their
is_active or is_superuser, a second-factor device of theirs added, deleted, confirmed or not, or
given to someone else; and everyone's after `migrate`, whose data migrations change groups through
models that send no signals here.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import django_otp
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.base import SessionBase
from django.db.models import F
from django.db.models.signals import m2m_changed, post_delete, post_init, post_migrate, post_save, pre_delete
from django_otp import DEVICE_ID_SESSION_KEY

from dashboard.accounts.models import AccessStamp

SESSION_KEY = "dashboard_access"
# Where the session's copy of the permissions sits on the user for the rest of the request.
_KEPT_PERMISSIONS = "_dashboard_kept_permissions"


@dataclass(frozen=True)
class KeptAccess:
    """The session's copy: of `user_id`, read at `version` of their stamp, for the device the session
    named then.

    `device_id` is django-otp's persistent ID of the device the session was verified with ("" for
    none). The permissions are None for a superuser, whom Django lets do everything without them.
    """

    user_id: int
    version: int
    device_id: str
    own_permissions: frozenset[str] | None
    group_permissions: frozenset[str] | None

    def as_session_value(self) -> dict:
        def listed(permissions):
            return None if permissions is None else sorted(permissions)

        return {
            "user_id": self.user_id,
            "version": self.version,
            "device_id": self.device_id,
            "own": listed(self.own_permissions),
            "groups": listed(self.group_permissions),
        }

    @classmethod
    def from_session_value(cls, value: object) -> "KeptAccess | None":
        def kept(permissions):
            return None if permissions is None else frozenset(permissions)

        if not isinstance(value, dict):
            return None
        try:
            return cls(
                int(value["user_id"]),
                int(value["version"]),
                str(value["device_id"]),
                kept(value["own"]),
                kept(value["groups"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def but_for_device(self, device_id: str) -> "KeptAccess":
        return KeptAccess(self.user_id, self.version, device_id, self.own_permissions, self.group_permissions)


def stamp_version(user) -> int:
    """The user's stamp, read with the user by AccessStampBackendMixin; 0 before their first change."""
    try:
        return user.access_stamp.version
    except AccessStamp.DoesNotExist:
        return 0


def kept_access(session: SessionBase, user, *, device_id: str) -> KeptAccess | None:
    """The session's copy, if it is still true: of this user, at their current version, for `device_id`."""
    kept = KeptAccess.from_session_value(session.get(SESSION_KEY))
    if kept is None or kept.user_id != user.pk or kept.version != stamp_version(user):
        return None
    return kept if kept.device_id == device_id else None


def read_access(user, *, device_id: str) -> KeptAccess:
    """The user's permissions now, with the version read before them, for the device `device_id` that
    the caller found the session verified with.

    The version comes first (with the user, at the start of the request): a change made after it
    moves the stamp on, so a copy that already saw the change is still read again, never kept stale.
    """
    version = stamp_version(user)
    if user.is_superuser:
        return KeptAccess(user.pk, version, device_id, None, None)
    own, groups = frozenset(user.get_user_permissions()), frozenset(user.get_group_permissions())
    return KeptAccess(user.pk, version, device_id, own, groups)


def keep(session: SessionBase, kept: KeptAccess) -> None:
    """Put the copy in the session, if it is not there already; the caller knows the session is saved."""
    value = kept.as_session_value()
    if session.get(SESSION_KEY) != value:
        session[SESSION_KEY] = value


def use_kept_permissions(user, kept: KeptAccess) -> None:
    """Let AccessStampBackendMixin answer this request's permission checks from the session's copy."""
    if kept.own_permissions is not None:
        setattr(user, _KEPT_PERMISSIONS, (kept.own_permissions, kept.group_permissions))


class AccessStampBackendMixin:
    """For a ModelBackend (or a subclass, such as a single sign-on backend): put it first in the bases.

    get_user() reads the user's AccessStamp in the same query as the user, and the permission
    checks answer from the session's copy when the two-factor middleware put one on the user.
    """

    def get_user(self, user_id):
        users = get_user_model()._default_manager.select_related("access_stamp")
        try:
            user = users.get(pk=user_id)
        except users.model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None

    def get_user_permissions(self, user_obj, obj=None):
        kept = getattr(user_obj, _KEPT_PERMISSIONS, None)
        if kept is None or obj is not None or not user_obj.is_active:
            return super().get_user_permissions(user_obj, obj)
        return set(kept[0])

    def get_group_permissions(self, user_obj, obj=None):
        kept = getattr(user_obj, _KEPT_PERMISSIONS, None)
        if kept is None or obj is not None or not user_obj.is_active:
            return super().get_group_permissions(user_obj, obj)
        return set(kept[1])


# --- Moving the stamp on ----------------------------------------------------------------------


def bump(user_ids: Iterable[int]) -> None:
    """Move these users' stamps on (making them where missing), so their sessions read access again."""
    user_ids = sorted(set(user_ids))
    if not user_ids:
        return
    AccessStamp.objects.bulk_create(
        [AccessStamp(user_id=user_id) for user_id in user_ids], ignore_conflicts=True
    )
    AccessStamp.objects.filter(user_id__in=user_ids).update(version=F("version") + 1)


def _members(groups) -> list[int]:
    return list(get_user_model()._default_manager.filter(groups__in=groups).values_list("pk", flat=True))


def _holders(permission: Permission) -> list[int]:
    """Who holds `permission`, themselves or through a group."""
    users = get_user_model()._default_manager
    direct = users.filter(user_permissions=permission).values_list("pk", flat=True)
    return [*direct, *_members(permission.group_set.all())]


def _affected_by_membership(sender, instance, reverse: bool, pk_set) -> list[int]:
    """The users whose access a change of one of the three permission relations touches.

    `pk_set` is None for a clear(): then the relation as it still stands (asked before the clear).
    """
    user_model = get_user_model()
    if sender is user_model.groups.through or sender is user_model.user_permissions.through:
        if not reverse:  # user.groups / user.user_permissions
            return [instance.pk]
        return list(pk_set) if pk_set is not None else list(instance.user_set.values_list("pk", flat=True))
    # Group.permissions: a group's permissions, or the groups holding a permission.
    if not reverse:
        return _members([instance])
    return _members(pk_set if pk_set is not None else instance.group_set.all())


def _membership_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    if action == "pre_clear":
        instance._access_cleared_users = _affected_by_membership(sender, instance, reverse, None)
    elif action == "post_clear":
        bump(getattr(instance, "_access_cleared_users", ()))
    elif action in ("post_add", "post_remove"):
        bump(_affected_by_membership(sender, instance, reverse, pk_set))


def _before_group_or_permission_deleted(sender, instance, **kwargs) -> None:
    # Its rows in the relations go without m2m_changed, so who held it is asked before they go.
    instance._access_holders = _members([instance]) if sender is Group else _holders(instance)


def _group_or_permission_deleted(sender, instance, **kwargs) -> None:
    bump(getattr(instance, "_access_holders", ()))


def _user_saved(sender, instance, created: bool, update_fields, **kwargs) -> None:
    """is_active or is_superuser may have changed; the sign-in's own save of last_login changes nothing."""
    if not created and set(update_fields or ()) != {"last_login"}:
        bump([instance.pk])


def _device_loaded(sender, instance, **kwargs) -> None:
    instance._access_loaded_as = (instance.user_id, instance.confirmed)


def _device_saved(sender, instance, created: bool, **kwargs) -> None:
    """Added, confirmed or not, or given to another user: its user now and its user before.

    A device is also saved at every code entered (its counters); that changes nothing kept.
    """
    before = getattr(instance, "_access_loaded_as", (None, None))
    if created or before != (instance.user_id, instance.confirmed):
        bump(user_id for user_id in (instance.user_id, before[0]) if user_id)
    instance._access_loaded_as = (instance.user_id, instance.confirmed)


def _device_deleted(sender, instance, **kwargs) -> None:
    bump([instance.user_id])


def _signed_in(sender, request, user, **kwargs) -> None:
    """Signing in saves the session: the copy goes with it, so the next request reads nothing.

    A session that already names a device (the same user signing in again) is checked by the next
    request instead.
    """
    if request is not None and DEVICE_ID_SESSION_KEY not in request.session:
        keep(request.session, read_access(user, device_id=""))


def _migrated(sender, **kwargs) -> None:
    """Everyone's stamp: the users without one get one at version 1, past the 0 their sessions kept."""
    AccessStamp.objects.update(version=F("version") + 1)
    unstamped = (
        get_user_model()._default_manager.filter(access_stamp__isnull=True).values_list("pk", flat=True)
    )
    AccessStamp.objects.bulk_create(
        [AccessStamp(user_id=user_id, version=1) for user_id in unstamped], ignore_conflicts=True
    )


def connect_receivers(app_config) -> None:
    """Called once from the accounts app's ready(): the device models are known only then."""
    user_model = get_user_model()
    for relation in (
        user_model.groups.through,
        user_model.user_permissions.through,
        Group.permissions.through,
    ):
        m2m_changed.connect(_membership_changed, sender=relation, dispatch_uid=f"access-{relation.__name__}")
    for model in (Group, Permission):
        pre_delete.connect(
            _before_group_or_permission_deleted, sender=model, dispatch_uid=f"access-{model.__name__}"
        )
        post_delete.connect(
            _group_or_permission_deleted, sender=model, dispatch_uid=f"access-{model.__name__}"
        )
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="access-user")
    for device_model in django_otp.device_classes():
        uid = f"access-{device_model._meta.label}"
        post_init.connect(_device_loaded, sender=device_model, dispatch_uid=uid)
        post_save.connect(_device_saved, sender=device_model, dispatch_uid=uid)
        post_delete.connect(_device_deleted, sender=device_model, dispatch_uid=uid)
    user_logged_in.connect(_signed_in, dispatch_uid="access-signed-in")
    post_migrate.connect(_migrated, sender=app_config, dispatch_uid="access-migrated")
