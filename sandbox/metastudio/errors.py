"""Every error the local MetaStudio answers with: status, error code and text, in one place.

Codes and texts follow the real service and its API gateway (APIG) so a client written
against the sandbox handles the real responses the same way.
"""

from __future__ import annotations

AUTH_PREFIX = "Incorrect IAM authentication information: "
# MetaStudio's own FAQ shows APIG.0301; older gateway pages show APIGW.0301.
AUTH_CODE = "APIG.0301"


class ApiError(Exception):
    """An error response: ``{"error_code", "error_msg"}`` with an HTTP status."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error_code": self.code, "error_msg": self.message}


def auth_failed(reason: str) -> ApiError:
    return ApiError(401, AUTH_CODE, AUTH_PREFIX + reason)


def signature_mismatch(canonical: str) -> ApiError:
    flat = canonical.replace("\n", "|")
    return auth_failed(f"verify aksk signature fail, canonicalRequest: {flat}")


def missing_authorization() -> ApiError:
    return auth_failed("Authorization header not found, verify aksk signature fail")


def garbled_authorization() -> ApiError:
    return auth_failed("Authorization header is malformed, verify aksk signature fail")


def unknown_access_key() -> ApiError:
    # The real gateway masks the AK in this message too.
    return auth_failed("Get secretKey failed,ak:******,err:ak not exist")


def date_unreadable() -> ApiError:
    return auth_failed("X-Sdk-Date is missing or unparseable, verify aksk signature fail")


def signature_expired() -> ApiError:
    """X-Sdk-Date more than 15 minutes from the gateway's clock."""
    return auth_failed("calc ak sk signature fail:signature expired")


def locked_out() -> ApiError:
    """The AK/SK is locked after more than five failures in a row; even a good call gets it."""
    return auth_failed("AK access failed to reach the limit,forbidden.")


def date_not_signed() -> ApiError:
    return auth_failed("x-sdk-date must be in SignedHeaders, verify aksk signature fail")


def token_invalid() -> ApiError:
    return auth_failed("decrypt token fail")


def tenant_mismatch() -> ApiError:
    return ApiError(400, "MSS.00010009", "urlTenantId is not equal tokenTenantId")


def job_not_found() -> ApiError:
    return ApiError(404, "MSS.41000003", "训练任务不存在 / the training task does not exist")


def not_submittable() -> ApiError:
    return ApiError(400, "MSS.41000005", "task state does not allow this operation")


def invalid_parameter(field: str) -> ApiError:
    return ApiError(400, "MSS.00000003", f"Invalid parameter: {field}")


def bad_json() -> ApiError:
    return ApiError(400, "MSS.10000002", "Request JSON exception")


def api_not_found() -> ApiError:
    return ApiError(404, "MSS.00010003", "SR.api not found")


def method_not_allowed() -> ApiError:
    return ApiError(400, "MSS.00010004", "SR.method not allowed")


def internal_error() -> ApiError:
    return ApiError(500, "MSS.000000002", "internal error")


def throttled() -> ApiError:
    return ApiError(
        429, "APIGW.0308", "The throttling threshold has been reached", {"Retry-After": "1"}
    )


def bad_gateway() -> ApiError:
    return ApiError(502, "APIGW.0202", "Bad gateway")


def proxy_page(status: int) -> str:
    """The page a reverse proxy in front of the gateway answers with: HTML, not JSON."""
    title = {
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Time-out",
    }.get(status, "Error")
    return (
        f"<html>\r\n<head><title>{status} {title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
