"""A host's ``/metrics`` page, read over HTTP with prometheus_client's own parser."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Page:
    samples: list[Sample]
    content_type: str

    def matching(self, name: str, **labels: str) -> list[Sample]:
        return [
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum over every series of ``name`` with these labels (any others, e.g.
        ``worker``, summed over); a series that is not on the page is an error, not 0."""
        found = self.matching(name, **labels)
        assert found, f"no {name}{labels or ''} on the page"
        return sum(s.value for s in found)


def scrape(port: int, host: str = "127.0.0.1", path: str = "/metrics") -> Page:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
        text = r.read().decode()
        content_type = r.headers["Content-Type"]
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    return Page(samples, content_type)
