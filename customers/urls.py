from django.urls import path

from customers.views import bulk as bulk_views
from customers.views import kyc_sessions
from customers.views import lookup as views
from customers.views import webhooks as webhook_views

app_name = "customers"

urlpatterns = [
    path("", views.customer_search, name="search"),
    # Before the customer's own address, which would otherwise take "bulk" for a customer ID.
    path("bulk/", bulk_views.bulk_lookup, name="bulk"),
    path("bulk/start/", bulk_views.bulk_start, name="bulk_start"),
    path("bulk/<uuid:batch_id>/", bulk_views.bulk_batch, name="bulk_batch"),
    path("bulk/<uuid:batch_id>/export.csv", bulk_views.bulk_export, name="bulk_export"),
    path("<str:customer_ref>/", views.customer_detail, name="detail"),
    path("<uuid:customer_id>/link-copied/", views.link_copied, name="link_copied"),
    path("<uuid:customer_id>/kyc-session/", kyc_sessions.start_kyc_session, name="kyc_session"),
    path("<uuid:customer_id>/kyc-changes/", webhook_views.kyc_changes, name="kyc_changes"),
]
