"""Webhooks the Standard Webhooks way: signed, retried with exponential backoff, persisted.

Headers: ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` =
``"v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))``. The secret is written
``whsec_<base64 of the key>``, the one form the Standard Webhooks libraries read (they
base64-decode whatever follows the prefix, so a raw secret would sign with a key they never
derive): any other form is refused when the settings are read.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpx

from service.problems import Problem
from service.settings import Settings
from service.store import JobStore

log = logging.getLogger("mirrorline.webhooks")

USER_AGENT = "mirrorline-webhooks/1"


SECRET_PREFIX = "whsec_"
MIN_KEY_BYTES = 16
MAKE_SECRET = (
    "python3 -c 'import base64,os; print(\"whsec_\" + base64.b64encode(os.urandom(32)).decode())'"
)


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (padding optional, as the Standard
    Webhooks libraries read it). Raises ``ValueError`` saying what would work otherwise."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(
            "the webhook secret must be written whsec_<base64 of the key> (what Standard "
            f"Webhooks libraries verify with); make one with: {MAKE_SECRET} (an existing raw "
            "secret S keeps its key as whsec_ + base64(S))"
        )
    payload = secret.removeprefix(SECRET_PREFIX).rstrip("=")
    try:
        key = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except ValueError:
        raise ValueError("the webhook secret after 'whsec_' is not valid base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"the webhook secret's key is {len(key)} bytes; use at least {MIN_KEY_BYTES} "
            f"(make one with: {MAKE_SECRET})"
        )
    return key


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value for one delivery."""
    content = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: dict[str, str], body: str, *, tolerance_s: float = 300.0) -> bool:
    """Check a delivery as a receiver would (header names lower-case). For tests and docs."""
    try:
        message_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    expected = sign(secret, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in signatures)


def event_body(*, job_id: str, status: str, result_url: str, error: dict[str, str] | None) -> str:
    """The JSON body of a job event: identifiers and URLs, never the report itself."""
    data: dict[str, Any] = {
        "id": job_id,
        "status": status,
        "result_url": result_url,
        "windows_csv_url": f"{result_url}/windows.csv" if status == "completed" else None,
    }
    if error is not None:
        data["error"] = error
    payload = {
        "type": f"analysis.{status}",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": data,
    }
    return json.dumps(payload, separators=(",", ":"))


# Ranges that are never a public webhook receiver, listed here rather than trusting
# ``ip_address.is_global`` alone (its tables differ between Python releases: 3.11 calls
# 192.0.0.8 and NAT64 global).
_NON_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    )
)  # fmt: skip
_NON_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128", "::1/128", "100::/64", "2001:db8::/32", "64:ff9b:1::/48", "fc00::/7",
        "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and routes to: IPv4-mapped
    (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), NAT64 (``64:ff9b::a.b.c.d``),
    6to4 (``2002:AABB:CCDD::``) and Teredo (server and client)."""
    found: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        found.append(low32)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def non_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """None when ``address`` is a public unicast address a webhook may go to; else the
    address (or the IPv4 address it embeds) that is not public, as text."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        for inner in embedded:
            if non_public(inner) is not None:
                return f"{address} (embedding {inner})"
        if embedded:  # every embedded IPv4 address is public: it is where the packets go
            return None
        if any(address in net for net in _NON_PUBLIC_V6):
            return str(address)
    elif any(address in net for net in _NON_PUBLIC_V4):
        return str(address)
    if not address.is_global or address.is_multicast:
        return str(address)
    return None


async def refused_destination(url: str) -> str | None:
    """Why ``url`` may not receive webhooks (None: it may).

    Every address the host resolves to must be a public one: loopback, private,
    link-local (cloud metadata at 169.254.169.254), shared, multicast and reserved ranges
    are refused, so a caller cannot make the server reach services on its own network.
    """
    refused, _ = await checked_address(url)
    return refused


async def checked_address(url: str) -> tuple[str | None, str | None]:
    """``(why url may not receive webhooks or None, an address it resolved to)``: the
    address is one :func:`refused_destination`'s rule accepted, for :func:`pinned` to
    connect to, so DNS cannot answer differently between the check and the connection."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        return f"host {host!r} does not resolve ({exc})", None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        bad = non_public(address)
        if bad is not None:
            if host.strip("[]") in (str(address), str(info[4][0])):
                return f"{bad} is not a public address", None
            return f"host {host!r} resolves to the non-public address {bad}", None
    if not infos:
        return f"host {host!r} does not resolve", None
    return None, str(infos[0][4][0])


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` aimed at ``address``: the URL to request, extra headers and httpx request
    extensions. The ``Host`` header keeps the name (virtual hosting) and TLS checks the
    certificate against it (``sni_hostname``), so only where the connection goes changes."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return url, {}, {}  # already an address: nothing to resolve again
    except ValueError:
        pass
    ip = ipaddress.ip_address(address.split("%")[0])
    target = f"[{ip}]" if ip.version == 6 else str(ip)
    if parts.port is not None:
        target += f":{parts.port}"
    userinfo, _, host_header = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@{target}" if userinfo else target
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), {"host": host_header}, extensions


def message_id(job_id: str, status: str) -> str:
    """The ``webhook-id`` of a job's event: derived from the job and the event, so every
    delivery of it, and the same event sent again after a worker was presumed dead and
    the job re-run, carry the same id (receivers deduplicate on it)."""
    return "msg_" + hashlib.sha256(f"{job_id}:{status}".encode()).hexdigest()[:32]


class WebhookSender:
    """Delivers pending webhooks from the store; wakes on new events and on retry times."""

    def __init__(
        self,
        store: JobStore,
        *,
        secret: str | None,
        max_attempts: int,
        backoff_s: float,
        timeout_s: float,
        allow_private: bool = False,
        on_attempt: Any = None,
    ) -> None:
        self.store = store
        self.allow_private = allow_private
        self.secret = secret
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.on_attempt = on_attempt
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def enqueue(self, job_id: str, status: str, url: str, body: str) -> None:
        """Store the delivery of a job's event (once: the same event again is a no-op)."""
        self.store.add_webhook(message_id(job_id, status), job_id, url, body)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        async with httpx.AsyncClient(
            timeout=self.timeout_s, follow_redirects=False, headers={"user-agent": USER_AGENT}
        ) as client:
            while True:
                try:
                    due = self.store.due_webhooks(time.time(), limit=16)
                    if due:
                        await asyncio.gather(*(self._deliver(client, d) for d in due))
                        continue
                    next_at = self.store.next_webhook_at()
                    wait_s = 30.0 if next_at is None else max(0.05, next_at - time.time())
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook loop error")
                    wait_s = 5.0
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=min(wait_s, 30.0))

    async def _deliver(self, client: httpx.AsyncClient, delivery: dict[str, Any]) -> None:
        message_id, body = delivery["id"], delivery["body"]
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
        }
        if self.secret:
            headers["webhook-signature"] = sign(self.secret, message_id, timestamp, body)
        error: str | None
        # Checked again at delivery (DNS may have changed since the job was accepted), and
        # the connection goes to the address checked, not to a second lookup's answer.
        url: str = delivery["url"]
        extensions: dict[str, Any] = {}
        refused = None
        if not self.allow_private:
            refused, address = await checked_address(url)
            if address is not None:
                url, extra_headers, extensions = pinned(url, address)
                headers.update(extra_headers)
        if refused is not None:
            ok, gone, error = False, False, f"destination refused: {refused}"
        else:
            try:
                response = await client.post(
                    url, content=body, headers=headers, extensions=extensions
                )
                ok = 200 <= response.status_code < 300
                gone = response.status_code == 410
                error = None if ok else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                ok, gone, error = False, False, f"{exc.__class__.__name__}: {exc}"
        attempts = int(delivery["attempts"]) + 1
        if ok:
            status, next_at = "delivered", time.time()
        elif gone or attempts >= self.max_attempts:
            status, next_at = "failed", time.time()
        else:
            status = "pending"
            next_at = time.time() + self.backoff_s * 2 ** (attempts - 1)
        self.store.webhook_attempted(message_id, status=status, next_at=next_at, error=error)
        if self.on_attempt is not None:
            self.on_attempt("delivered" if ok else ("failed" if status == "failed" else "retry"))
        log.info(
            "webhook %s",
            status,
            extra={
                "job_id": delivery["job_id"],
                "webhook_id": message_id,
                "attempt": attempts,
                "error": error,
            },
        )


def _callback_parts(url: str) -> SplitResult | None:
    """``url`` split, when it is an absolute http(s) URL with a host and a valid port."""
    if len(url) > 2048 or any(not ch.isprintable() or ch.isspace() for ch in url):
        return None
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError when out of range or not a number
        host = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket: http://[::1/
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    return parts


async def check_callback(url: str, settings: Settings) -> str:
    """``url`` as a webhook destination (a batch job's or a stream's), or Problem."""
    url = url.strip()
    if _callback_parts(url) is None:
        raise Problem(
            "request.invalid",
            f"callback_url must be an absolute http(s) URL with a host, not {url[:200]!r}",
        )
    if not settings.webhook_secret:
        raise Problem(
            "callback.not_configured",
            "this server has no MIRRORLINE_WEBHOOK_SECRET, so it cannot sign webhooks; "
            "omit callback_url and poll GET /v1/analyses/{id}",
        )
    if not settings.webhook_allow_private:
        refused = await refused_destination(url)
        if refused is not None:
            raise Problem(
                "callback.not_allowed",
                f"{refused}; callbacks go to public addresses only "
                "(MIRRORLINE_WEBHOOK_ALLOW_PRIVATE=true lifts this on a trusted network)",
            )
    return url
