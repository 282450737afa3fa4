"""Pure: `Metrics` -> the Prometheus text exposition format (version 0.0.4), written by hand.

Six families do not justify a dependency (prometheus_client would also want its own
registry and collectors around values we read from SQL on every scrape). Everything is
read from the store when scraped, so several dashboards or a restarted one agree.
"""

from __future__ import annotations

from crawler.model import Outcome, Verdict
from crawler.web.queries import Metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render_metrics(metrics: Metrics) -> str:
    """The metrics as Prometheus text; every known outcome and verdict appears, zeros too."""
    lines: list[str] = []
    _family(lines, "crawler_runs_total", "counter", "Crawl runs recorded in the store, by outcome.")
    for outcome in Outcome:
        lines.append(
            _sample("crawler_runs_total", metrics.runs.get(outcome.value, 0), outcome=outcome.value)
        )
    _family(
        lines, "crawler_links", "gauge", "Links in the last snapshot of each watch, by verdict."
    )
    for verdict in Verdict:
        lines.append(
            _sample("crawler_links", metrics.links.get(verdict.value, 0), verdict=verdict.value)
        )
    _latency(lines, metrics)
    _family(lines, "crawler_watches", "gauge", "Watched articles, by state.")
    for state in ("enabled", "disabled"):
        lines.append(_sample("crawler_watches", metrics.watches.get(state, 0), state=state))
    _family(lines, "crawler_queue_depth", "gauge", "Enabled watches whose next run is due.")
    lines.append(_sample("crawler_queue_depth", metrics.queue_depth))
    return "\n".join(lines) + "\n"


def _latency(lines: list[str], metrics: Metrics) -> None:
    """The fetch latency histogram: cumulative buckets, +Inf, sum and count."""
    name = "crawler_fetch_latency_seconds"
    _family(lines, name, "histogram", "Time per fetch (retries included), from stored elapsed_ms.")
    for le, count in metrics.latency_buckets:
        lines.append(_sample(f"{name}_bucket", count, le=_number(le)))
    lines.append(_sample(f"{name}_bucket", metrics.latency_count, le="+Inf"))
    lines.append(_sample(f"{name}_sum", metrics.latency_sum))
    lines.append(_sample(f"{name}_count", metrics.latency_count))


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    """The HELP and TYPE lines of a metric family."""
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _sample(name: str, value: float, **labels: str) -> str:
    """`name{label="value"} 12`, label values escaped as the format requires."""
    if not labels:
        return f"{name} {_number(value)}"
    pairs = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
    return f"{name}{{{pairs}}} {_number(value)}"


def _escape(value: str) -> str:
    """Backslash, double quote and line feed escaped (exposition format, label values)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    """Integers without a decimal point, other floats in repr form."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
