"""Sign-in through the company's identity provider (OpenID Connect), beside or instead of passwords.

docs/single-sign-on.md says how to register the dashboard with a provider; docs/architecture.md
says what each module here does.
"""
