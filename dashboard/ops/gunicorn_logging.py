"""gunicorn's access log without what staff typed.

gunicorn writes the request line (`%(r)s`), the path (`%(U)s`), the query (`%(q)s`) and the
Referer (`%(f)s`, which holds the previous page's address) as they came. With
`logger_class = "dashboard.ops.gunicorn_logging.RedactingLogger"` every access-log format, gunicorn's
default included, gets them redacted as Django's own log lines are (dashboard/ops/log_redaction.py):
the route, and the query's parameter names only.
"""

from gunicorn.glogging import Logger

from dashboard.ops.log_redaction import HIDDEN, redact_path, redact_query, redact_url


class RedactingLogger(Logger):
    """gunicorn's Logger, with the request's path, query and page addresses redacted in every access line."""

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        try:
            path = environ.get("SCRIPT_NAME", "") + redact_path(environ.get("PATH_INFO") or "/")
            query = redact_query(environ.get("QUERY_STRING", ""))
            referer = redact_url(environ.get("HTTP_REFERER", "-"))
            current_url = redact_url(environ.get("HTTP_HX_CURRENT_URL", "-"))
        except Exception:
            # Redaction that fails must hide the address, not let it through as it came.
            path, query, referer, current_url = HIDDEN, "", HIDDEN, HIDDEN
        target = f"{path}?{query}" if query else path
        method, protocol = environ.get("REQUEST_METHOD", "-"), environ.get("SERVER_PROTOCOL", "-")
        atoms |= {
            "r": f"{method} {target} {protocol}",
            "U": path,
            "q": query,
            "f": referer,
            # The same addresses under their header and environ names, `%({referer}i)s` and so on.
            "{raw_uri}e": target,
            "{path_info}e": path,
            "{query_string}e": query,
            "{referer}i": referer,
            "{http_referer}e": referer,
            "{hx-current-url}i": current_url,
            "{http_hx_current_url}e": current_url,
        }
        return atoms
