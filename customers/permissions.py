"""Who may do what with customers: the permissions, and the gate each view needing one stands behind."""

from dashboard.accounts.gate import permission_required

LOOKUP_PERMISSION = "customers.lookup_customer"
# Compliance leads only (migration 0009): a new session replaces the customer's link.
START_PERMISSION = "customers.start_kyc_session"
# Created by migration 0003 with exactly the lookup permission; how people are given access.
COMPLIANCE_STAFF_GROUP = "Compliance staff"

LOOKUP_REFUSAL = f"Customer lookups need the {LOOKUP_PERMISSION} permission."
lookup_permission_required = permission_required(LOOKUP_PERMISSION, LOOKUP_REFUSAL)
# The customer pages (a customer, the search, a bulk lookup): a sign-in comes back to the one asked for.
customer_page_required = permission_required(LOOKUP_PERMISSION, LOOKUP_REFUSAL, page=True)
start_kyc_session_permission_required = permission_required(
    START_PERMISSION, f"Starting a KYC session needs the {START_PERMISSION} permission."
)
