"""What API Gateway does around a route before and after the function: the JWT authorizer (with
an HS256 key standing in for the issuer's JWKS) and CORS from the API's ``CorsConfiguration``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jwt
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response


class AuthorizerError(Exception):
    """The request carries no token the JWT authorizer would accept (API Gateway answers 401)."""

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value API Gateway sends with the 401."""
        if str(self) == "no token":
            return "Bearer"
        return f'Bearer scope="" error="invalid_token" error_description="{self}"'


@dataclass(frozen=True)
class JwtAuthorizer:
    """API Gateway's JWT authorizer, with an HS256 key standing in for the issuer's JWKS."""

    issuer: str
    audiences: tuple[str, ...]
    secret: str
    identity_header: str = "authorization"

    def claims(self, header: str | None) -> dict[str, Any]:
        """The claims of the token in the identity header, or :class:`AuthorizerError`."""
        raw = (header or "").strip()
        if not raw:
            raise AuthorizerError("no token")
        token = raw[7:].strip() if raw[:7].lower() == "bearer " else raw
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                issuer=self.issuer,
                options={"require": ["exp", "iss"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthorizerError("the token has expired") from None
        except jwt.InvalidIssuerError:
            raise AuthorizerError("the token has an invalid issuer") from None
        except jwt.InvalidTokenError:
            raise AuthorizerError("the token is invalid") from None
        # API Gateway takes ``client_id`` as the audience of a token that has no ``aud``.
        aud = claims["aud"] if "aud" in claims else claims.get("client_id")
        token_audiences = {aud} if isinstance(aud, str) else set(aud or [])
        if not token_audiences & set(self.audiences):
            raise AuthorizerError("the token does not have a valid audience")
        return claims


def claims_as_strings(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as API Gateway hands them to the function: every value a string, arrays as
    ``[a b]``."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return "[" + " ".join(text(v) for v in value) + "]"
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        return str(value)

    return {k: text(v) for k, v in claims.items()}


def scopes(claims: dict[str, Any]) -> list[str] | None:
    """The token's scopes (``scope`` or ``scp``), as the event's ``authorizer.jwt.scopes``."""
    raw = claims.get("scope", claims.get("scp"))
    if isinstance(raw, str):
        return raw.split() or None
    if isinstance(raw, list):
        return [str(s) for s in raw] or None
    return None


@dataclass(frozen=True)
class Cors:
    """An HTTP API's ``CorsConfiguration``."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    @classmethod
    def from_spec(cls, spec: Any) -> Cors | None:
        """The resolved ``CorsConfiguration`` (``true`` allows everything); None without one."""
        if not spec:
            return None
        if spec is True:
            return cls(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))

        def strings(key: str) -> tuple[str, ...]:
            value = spec.get(key) or []
            return tuple(str(v) for v in (value if isinstance(value, list) else [value]))

        return cls(
            strings("AllowOrigins"),
            strings("AllowMethods"),
            strings("AllowHeaders"),
            strings("ExposeHeaders"),
            int(spec["MaxAge"]) if "MaxAge" in spec else None,
            bool(spec.get("AllowCredentials")),
        )

    def _allow_origin(self, origin: str | None) -> str | None:
        if not origin or not ("*" in self.allow_origins or origin in self.allow_origins):
            return None
        return "*" if "*" in self.allow_origins else origin

    def preflight(self, origin: str | None) -> Response:
        """The answer to a preflight: 204, with the allowances only for an allowed origin."""
        response = Response(status=204)
        del response.headers["Content-Type"]
        allowed = self._allow_origin(origin)
        if allowed is not None:
            response.headers.extend(
                {
                    "Access-Control-Allow-Origin": allowed,
                    "Access-Control-Allow-Methods": ",".join(self.allow_methods) or "*",
                    "Access-Control-Allow-Headers": ",".join(self.allow_headers) or "*",
                }
            )
            if self.max_age is not None:
                response.headers["Access-Control-Max-Age"] = str(self.max_age)
            if self.allow_credentials:
                response.headers["Access-Control-Allow-Credentials"] = "true"
        return response

    def decorate(self, origin: str | None, headers: Headers) -> None:
        """Put the CORS headers on an answer to an allowed origin (the function's own are replaced)."""
        allowed = self._allow_origin(origin)
        if allowed is None:
            return
        for name in {k for k, _ in headers.items() if k.lower().startswith("access-control-")}:
            del headers[name]
        headers["Access-Control-Allow-Origin"] = allowed
        if self.expose_headers:
            headers["Access-Control-Expose-Headers"] = ",".join(self.expose_headers)
        if self.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
