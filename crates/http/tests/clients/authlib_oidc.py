"""An OpenID Connect relying party built on Authlib, driven against a running Gatehouse.

It discovers the provider, runs the authorization code flow with PKCE and a nonce through
Gatehouse's real login and consent forms (a second requests session plays the browser),
exchanges the code with Authlib's OAuth2Session, verifies the id_token's signature against
the JWKS (joserfc, Authlib's JOSE library) and its claims with Authlib's CodeIDToken (iss,
aud, exp, iat, nonce, at_hash), and calls userinfo with the access token. On success it
prints one JSON object (the id_token's claims, its kid and the userinfo answer); any failure
raises, which exits non-zero with the reason on stderr.

Usage: authlib_oidc.py BASE_URL CLIENT_ID CLIENT_SECRET REDIRECT_URI EMAIL PASSWORD NOW
(NOW: the server's clock, Unix seconds; the tests run it on a manual clock.)
"""

import json
import sys
import warnings
from html.parser import HTMLParser
from urllib.parse import urljoin

warnings.simplefilter("ignore", DeprecationWarning)

import requests  # noqa: E402
from authlib.common.security import generate_token  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.oidc.core import CodeIDToken  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import KeySet  # noqa: E402

TIMEOUT = 30


class Inputs(HTMLParser):
    """The name/value pairs of a page's <input> fields."""

    def __init__(self):
        super().__init__()
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") and attrs.get("value") is not None:
            self.fields[attrs["name"]] = attrs["value"]


def inputs(html):
    parser = Inputs()
    parser.feed(html)
    return parser.fields


def expect(response, status):
    if response.status_code != status:
        raise AssertionError(
            f"{response.request.method} {response.url}: {response.status_code}, "
            f"expected {status}: {response.text[:500]}"
        )
    return response


def main():
    base, client_id, client_secret, redirect_uri, email, password, now = sys.argv[1:8]
    now = int(now)

    # Discovery 1.0 §4.
    metadata = expect(
        requests.get(f"{base}/.well-known/openid-configuration", timeout=TIMEOUT), 200
    ).json()
    assert metadata["issuer"] == base, metadata

    client = OAuth2Session(
        client_id,
        client_secret,
        scope="openid email read",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    nonce = generate_token(20)
    verifier = generate_token(48)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], nonce=nonce, code_verifier=verifier
    )

    # The browser: to the login form, signed in, back to the request, the consent form.
    browser = requests.Session()
    step = expect(browser.get(url, allow_redirects=False, timeout=TIMEOUT), 303)
    login_url = urljoin(base, step.headers["Location"])
    form = inputs(expect(browser.get(login_url, timeout=TIMEOUT), 200).text)
    form.update(email=email, password=password)
    step = expect(
        browser.post(f"{base}/login", data=form, allow_redirects=False, timeout=TIMEOUT), 303
    )
    back = urljoin(base, step.headers["Location"])
    consent = expect(browser.get(back, allow_redirects=False, timeout=TIMEOUT), 200).text
    form = inputs(consent)
    form["decision"] = "allow"
    step = expect(
        browser.post(
            metadata["authorization_endpoint"],
            data=form,
            allow_redirects=False,
            timeout=TIMEOUT,
        ),
        303,
    )
    callback = step.headers["Location"]
    assert callback.startswith(redirect_uri), callback

    # The client: the code for tokens (Authlib checks the state), PKCE verifier included.
    token = client.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback,
        state=state,
        code_verifier=verifier,
    )

    # The id_token: signature with the JWKS, then OIDC Core §3.1.3.7's checks.
    jwks = expect(requests.get(metadata["jwks_uri"], timeout=TIMEOUT), 200).json()
    decoded = jwt.decode(token["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={"iss": {"essential": True, "value": metadata["issuer"]}},
        params={
            "nonce": nonce,
            "client_id": client_id,
            "access_token": token["access_token"],
        },
    )
    claims.validate(now=now)

    # Userinfo with the access token (Authlib adds the Bearer header).
    userinfo = expect(client.get(metadata["userinfo_endpoint"], timeout=TIMEOUT), 200).json()
    assert userinfo["sub"] == claims["sub"], (userinfo, dict(claims))

    print(
        json.dumps(
            {
                "claims": dict(claims),
                "kid": decoded.header.get("kid"),
                "userinfo": userinfo,
                "nonce": nonce,
            }
        )
    )


if __name__ == "__main__":
    main()
