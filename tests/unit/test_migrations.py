"""The compliance groups that migration 0003 creates: exactly the permissions each job needs."""

import uuid

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from customers.models import AuditEvent, AuditExport, BulkLookup, BulkLookupExport

STAFF = "Compliance staff"
AUDITORS = "Compliance auditors"
EXPECTED_GROUPS = {
    STAFF: {"customers.lookup_customer"},
    # Given by 0008 (issue #13): the received webhook events are part of the record auditors read.
    # And by 0011 (issue #20): the whole sign-in trail, where refused single sign-ons show.
    AUDITORS: {
        "customers.view_auditevent",
        "customers.export_auditevent",
        "customers.view_kycwebhookevent",
        "accounts.view_signinevent",
    },
}
AUDIT_LOG = "/admin/customers/auditevent/"


def group_permissions() -> dict[str, set[str]]:
    return {
        group.name: {
            f"{permission.content_type.app_label}.{permission.codename}"
            for permission in group.permissions.select_related("content_type")
        }
        for group in Group.objects.filter(name__in=EXPECTED_GROUPS)
    }


def member_of(django_user_model, group_name: str | None, *, is_staff=False) -> Client:
    user = django_user_model.objects.create_user(
        username="member", password="irrelevant-password", is_staff=is_staff
    )
    if group_name:
        user.groups.add(Group.objects.get(name=group_name))
    client = Client()
    client.force_login(user)
    return client


def latest_customers_migration() -> tuple[str, str]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes("customers")[0]


@pytest.mark.django_db
def test_the_groups_hold_exactly_their_permissions():
    assert group_permissions() == EXPECTED_GROUPS


@pytest.mark.django_db
def test_the_permissions_the_groups_name_are_the_ones_the_code_checks(django_user_model):
    staff = django_user_model.objects.create_user(username="clerk", password="irrelevant-password")
    staff.groups.add(Group.objects.get(name=STAFF))
    auditor = django_user_model.objects.create_user(username="auditor", password="irrelevant-password")
    auditor.groups.add(Group.objects.get(name=AUDITORS))
    assert staff.has_perm("customers.lookup_customer")
    assert not staff.has_perm("customers.view_auditevent")
    assert auditor.has_perm("customers.view_auditevent")
    assert auditor.has_perm("customers.export_auditevent")
    assert not auditor.has_perm("customers.lookup_customer")


@pytest.mark.django_db
def test_nobody_can_be_given_change_or_delete_of_the_audit_log():
    codenames = set(
        Permission.objects.filter(
            content_type__app_label="customers", content_type__model="auditevent"
        ).values_list("codename", flat=True)
    )
    assert codenames == {"view_auditevent", "export_auditevent"}


@pytest.mark.django_db
def test_a_member_of_compliance_staff_can_look_customers_up(django_user_model):
    response = member_of(django_user_model, STAFF).get("/customers/")
    assert response.status_code == 200
    assert b"Customer ID" in response.content


@pytest.mark.django_db
def test_a_user_in_no_group_is_told_which_permission_to_ask_for(django_user_model):
    response = member_of(django_user_model, None).get("/customers/")
    assert response.status_code == 403
    assert b"customers.lookup_customer" in response.content


@pytest.mark.django_db
def test_a_compliance_auditor_reads_the_audit_log_but_cannot_look_customers_up(django_user_model):
    client = member_of(django_user_model, AUDITORS, is_staff=True)
    AuditEvent.objects.create(
        user=django_user_model.objects.get(),
        action=AuditEvent.Action.LOOKUP,
        customer_id="3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91",
        outcome=AuditEvent.Outcome.NOT_FOUND,
    )
    assert client.get(AUDIT_LOG).status_code == 200
    assert 'value="export_csv"' in client.get(AUDIT_LOG).content.decode()
    assert client.get("/customers/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_reversing_and_reapplying_0003_leaves_the_same_groups():
    latest = latest_customers_migration()
    call_command("migrate", "customers", "0002", verbosity=0)
    assert not Group.objects.filter(name__in=EXPECTED_GROUPS).exists()
    call_command("migrate", "customers", latest[1], verbosity=0)
    assert group_permissions() == EXPECTED_GROUPS


@pytest.mark.django_db(transaction=True)
def test_reapplying_0003_restores_groups_an_administrator_changed():
    """Permissions added to a group by hand do not survive the migration: the sets stay exact."""
    latest = latest_customers_migration()
    call_command("migrate", "customers", "0002", verbosity=0)
    staff = Group.objects.create(name=STAFF)
    staff.permissions.add(Permission.objects.get(codename="view_auditevent"))
    call_command("migrate", "customers", latest[1], verbosity=0)
    assert group_permissions() == EXPECTED_GROUPS
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_the_email_export_permission_exists_and_no_group_is_given_it():
    permission = Permission.objects.get(content_type__app_label="customers", codename="export_customer_email")
    assert permission.name == "Can export customers' e-mail addresses in bulk lookup CSVs"
    assert not permission.group_set.exists()


@pytest.mark.django_db(transaction=True)
def test_0007_can_be_reversed_and_applied_again():
    call_command("migrate", "customers", "0006", verbosity=0)
    assert "customers_bulklookup" not in connection.introspection.table_names()
    call_command("migrate", "customers", latest_customers_migration()[1], verbosity=0)
    assert {"customers_bulklookup", "customers_bulklookupexport"} <= set(
        connection.introspection.table_names()
    )
    assert "batch_id" in [
        column.name
        for column in connection.introspection.get_table_description(
            connection.cursor(), "customers_auditevent"
        )
    ]
    assert Permission.objects.filter(codename="export_customer_email").exists()


@pytest.mark.django_db(transaction=True)
def test_reversing_0008_takes_the_webhook_events_from_the_auditors_and_reapplying_gives_them_back():
    latest = latest_customers_migration()
    # From 0002, so that 0003 makes the groups again (a transactional test before may have emptied them).
    call_command("migrate", "customers", "0002", verbosity=0)
    call_command("migrate", "customers", latest[1], verbosity=0)
    assert group_permissions() == EXPECTED_GROUPS
    call_command("migrate", "customers", "0007", verbosity=0)
    assert group_permissions()[AUDITORS] == {"customers.view_auditevent", "customers.export_auditevent"}
    call_command("migrate", "customers", latest[1], verbosity=0)
    assert group_permissions() == EXPECTED_GROUPS


@pytest.mark.django_db
def test_a_compliance_auditor_reads_the_webhook_events_and_can_change_none(django_user_model):
    client = member_of(django_user_model, AUDITORS, is_staff=True)
    assert client.get("/admin/customers/kycwebhookevent/").status_code == 200
    assert client.get("/admin/customers/kycwebhookevent/add/").status_code == 403


LEADS = "Compliance leads"


@pytest.mark.django_db
def test_compliance_leads_may_look_up_and_start_kyc_sessions():
    group = Group.objects.get(name=LEADS)
    assert {
        f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
    } == {
        "customers.lookup_customer",
        "customers.start_kyc_session",
    }


@pytest.mark.django_db(transaction=True)
def test_0009_can_be_reversed_and_applied_again():
    call_command("migrate", "customers", "0008", verbosity=0)
    assert not Group.objects.filter(name=LEADS).exists()
    columns = [
        column.name
        for column in connection.introspection.get_table_description(
            connection.cursor(), "customers_auditevent"
        )
    ]
    assert "email_hash" not in columns
    call_command("migrate", "customers", latest_customers_migration()[1], verbosity=0)
    assert Group.objects.get(name=LEADS).permissions.count() == 2


@pytest.mark.django_db(transaction=True)
def test_0012_reads_the_trail_written_before_it_as_before(django_user_model):
    """Issue #21: no old row is marked as repeating what came before it, and only cards carry the mark."""
    before = ("customers", "0010_audit_sub_status_and_single_lookups")
    call_command("migrate", *before, verbosity=0)
    old = MigrationExecutor(connection).loader.project_state(before).apps
    user = old.get_model("auth", "User").objects.create(username="before")
    batch = old.get_model("customers", "BulkLookup").objects.create(
        user=user, ids_submitted=1, ids_valid=1, duplicates=0, rejected=0
    )
    for action, batch_of_it, customer_id in (
        ("lookup", None, uuid.uuid4()),
        ("lookup", batch, uuid.uuid4()),
        ("link_copied", None, uuid.uuid4()),
        ("email_search", None, None),
    ):
        old.get_model("customers", "AuditEvent").objects.create(
            user=user, action=action, batch=batch_of_it, customer_id=customer_id, outcome="found"
        )
    call_command("migrate", "customers", latest_customers_migration()[1], verbosity=0)
    marks = {
        (event.action, event.batch_id is not None): (event.kyc_unchanged, event.repeats_last_card)
        for event in AuditEvent.objects.all()
    }
    assert marks == {
        ("lookup", False): (False, False),  # a card: the first of its run
        ("lookup", True): (False, None),  # a bulk lookup's row: no card, but History's still
        ("link_copied", False): (False, None),
        ("email_search", False): (False, None),  # found no single customer: no card
    }


@pytest.mark.django_db
def test_the_models_need_no_migration_the_repository_lacks():
    """Fields moved to an abstract base (customers.models.UserActionRecord) keep their columns as they are."""
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_a_record_of_what_a_user_did_names_its_kind_its_id_and_the_user(django_user_model):
    jane = django_user_model(pk=7, username="jane")
    batch = BulkLookup(pk="3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91", user=jane)
    assert str(batch) == "Bulk lookup 3f2a9c1e-7b4d-4e2a-9f61-2c8d5e0b7e91 by jane"
    assert str(BulkLookupExport(pk=12, user=jane, batch=batch)) == "Bulk lookup export 12 by jane"
    assert str(AuditExport(pk=5, user=jane)) == "Audit log export 5 by jane"
