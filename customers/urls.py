from django.urls import path

from customers import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_search, name="search"),
    path("<str:customer_ref>/", views.customer_detail, name="detail"),
    path("<uuid:customer_id>/link-copied/", views.link_copied, name="link_copied"),
]
