"""Bulk lookups: a pasted list of customers, fetched a few at a time, its rows kept in the cache.

A batch is read from the paste (`paste`), put on record (BulkLookup), and run in a background
thread (`runner`): a pool of ALIGN_BULK_CONCURRENCY threads, each looking one customer up at a
time through the same audited path as the single lookup (the audit row first, then Align). Its
rows (`rows`, and `export` for the CSV) live only in the shared cache (`state`), under keys of
their own, so any worker of any instance can answer the page's polls; the database holds
counts and the audit rows (IDs and outcomes), never a name. Rows hold only what the table shows
(never an address); the e-mail only for users allowed to export it.
"""
