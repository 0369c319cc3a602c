"""Models of the customers app.

Customers themselves live in Align, not here; the app keeps only what the dashboard owns.
"""

from django.db import models


class CustomerAccess(models.Model):
    """Carries the permissions for customer lookups; it has no table of its own."""

    class Meta:
        managed = False
        verbose_name = "customer lookup access"
        default_permissions = ()
        permissions = [("lookup_customer", "Can look up Align customers and see their KYC state")]

    def __str__(self) -> str:
        return "Customer lookup access"
