"""Two-factor sign-in: a TOTP code from an authenticator app, with one-time recovery codes.

A password alone is too little for a desk that shows customers' personal data, so a session that
has only passed the password check is held at these pages until a second factor verifies it.
django-otp stores the devices and checks the codes (with its throttling); this package decides
who must verify (middleware), checks what is typed (forms), walks a user through enrolment and
verification (views), and hands out recovery codes exactly once (devices).
"""
