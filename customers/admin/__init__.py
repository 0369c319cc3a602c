"""The dashboard's records in Django's admin: readable and exportable, never editable.

One module per area (audit, bulk, webhooks) on one read-only base (base.py); they are
registered here, in one place, so the admin site's contents read at a glance.
"""

from django.contrib import admin

from customers.admin.audit import AuditEventAdmin, AuditExportAdmin
from customers.admin.bulk import BulkLookupAdmin, BulkLookupExportAdmin
from customers.admin.webhooks import KycWebhookEventAdmin
from customers.models import AuditEvent, AuditExport, BulkLookup, BulkLookupExport, KycWebhookEvent

admin.site.site_header = "KYC Desk administration"
admin.site.site_title = "KYC Desk administration"

admin.site.register(AuditEvent, AuditEventAdmin)
admin.site.register(AuditExport, AuditExportAdmin)
admin.site.register(BulkLookup, BulkLookupAdmin)
admin.site.register(BulkLookupExport, BulkLookupExportAdmin)
admin.site.register(KycWebhookEvent, KycWebhookEventAdmin)
