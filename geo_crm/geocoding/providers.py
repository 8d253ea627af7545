"""Optional online geocoders (Nominatim, Pelias), used only when configured:

  GEOCODER_URL        base URL, e.g. https://nominatim.example.org or http://pelias:4000
  GEOCODER_PROVIDER   nominatim (default) | pelias
  GEOCODER_API_KEY    optional (sent as `api_key` to Pelias)
  GEOCODER_RATE_PER_S requests per second (default 1, Nominatim's usage policy)
  GEOCODER_TIMEOUT_S  per-request timeout in seconds (default 5)

Answers (hits and misses) are cached in `geocode_cache` keyed by (provider, query).
"""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
import urllib.request

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_crm.geocoding.geocoder import NOT_FOUND, GeocodeResult

USER_AGENT = "geo-crm/1.0 (offline-first geocoder)"


class RateLimiter:
    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            time.sleep(delay)


class HttpProvider:
    name = "http"

    def __init__(self, url: str, rate_per_s: float = 1.0, timeout_s: float = 5.0, api_key: str | None = None):
        self.url, self.timeout_s, self.api_key = url.rstrip("/"), timeout_s, api_key
        self.limiter = RateLimiter(rate_per_s)

    def request_url(self, query: str) -> str:
        raise NotImplementedError

    def parse(self, data) -> GeocodeResult:
        raise NotImplementedError

    def _fetch(self, query: str):
        self.limiter.wait()
        req = urllib.request.Request(self.request_url(query), headers={"User-Agent": USER_AGENT,
                                                                          "Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 (configured URL)
            return json.loads(resp.read(2_000_000))

    def geocode(self, session: Session, query: str) -> GeocodeResult:
        """Cached lookup; network errors and timeouts count as 'not found' (not cached)."""
        q = " ".join(query.split()).lower()
        row = session.execute(text("SELECT result FROM geocode_cache WHERE provider = :p AND query = :q"),
                              {"p": self.name, "q": q}).first()
        if row is not None:
            return GeocodeResult(**row[0]) if row[0] else NOT_FOUND
        try:
            res = self.parse(self._fetch(query))
        except (OSError, ValueError, KeyError, TypeError):
            return NOT_FOUND
        session.execute(text(
            "INSERT INTO geocode_cache (provider, query, result) VALUES (:p, :q, CAST(:r AS jsonb))"
            " ON CONFLICT (provider, query) DO UPDATE SET result = EXCLUDED.result, created_at = now()"),
            {"p": self.name, "q": q, "r": json.dumps(res.as_dict() if res.found else None)})
        return res


def _valid(lon: float, lat: float) -> bool:
    return -180 <= lon <= 180 and -90 <= lat <= 90


class Nominatim(HttpProvider):
    name = "nominatim"
    _QUALITY = {"house": "address", "building": "address", "street": "street", "road": "street",
                "postcode": "postcode", "city": "city", "town": "city", "village": "city",
                "municipality": "city", "suburb": "city", "neighbourhood": "street"}

    def request_url(self, query: str) -> str:
        return f"{self.url}/search?" + urllib.parse.urlencode(
            {"q": query, "format": "jsonv2", "limit": 1, "addressdetails": 0, "countrycodes": "fi"})

    def parse(self, data) -> GeocodeResult:
        if not data:
            return NOT_FOUND
        hit = data[0]
        lon, lat = float(hit["lon"]), float(hit["lat"])
        kind = hit.get("addresstype") or hit.get("type") or ""
        q = self._QUALITY.get(kind, "city")
        return GeocodeResult(q, lon, lat, hit.get("display_name", ""), self.name) if _valid(lon, lat) else NOT_FOUND


class Pelias(HttpProvider):
    name = "pelias"
    _QUALITY = {"address": "address", "street": "street", "postalcode": "postcode", "locality": "city",
                "localadmin": "city", "neighbourhood": "city", "county": "city"}

    def request_url(self, query: str) -> str:
        params = {"text": query, "size": 1}
        if self.api_key:
            params["api_key"] = self.api_key
        return f"{self.url}/v1/search?" + urllib.parse.urlencode(params)

    def parse(self, data) -> GeocodeResult:
        feats = data.get("features") or []
        if not feats:
            return NOT_FOUND
        f = feats[0]
        lon, lat = (float(x) for x in f["geometry"]["coordinates"][:2])
        props = f.get("properties", {})
        q = self._QUALITY.get(props.get("layer", ""), "city")
        return GeocodeResult(q, lon, lat, props.get("label", ""), self.name) if _valid(lon, lat) else NOT_FOUND


PROVIDERS = {"nominatim": Nominatim, "pelias": Pelias}


def provider_from_env(env=None) -> HttpProvider | None:
    env = os.environ if env is None else env
    url = env.get("GEOCODER_URL")
    if not url:
        return None
    kind = env.get("GEOCODER_PROVIDER", "nominatim").lower()
    if kind not in PROVIDERS:
        raise ValueError(f"GEOCODER_PROVIDER must be one of {sorted(PROVIDERS)}")
    return PROVIDERS[kind](url, rate_per_s=float(env.get("GEOCODER_RATE_PER_S", 1)),
                           timeout_s=float(env.get("GEOCODER_TIMEOUT_S", 5)), api_key=env.get("GEOCODER_API_KEY"))


_cached: dict[str, HttpProvider | None] = {}


def configured_providers() -> list[HttpProvider]:
    """The provider named by the environment (one instance per process, so its rate
    limit is shared), or []."""
    key = os.environ.get("GEOCODER_URL", "") + "|" + os.environ.get("GEOCODER_PROVIDER", "")
    if key not in _cached:
        _cached[key] = provider_from_env()
    return [p for p in (_cached[key],) if p is not None]
