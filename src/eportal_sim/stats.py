"""The outcome of a run: answers by status, transport errors, elapsed time, throughput, latency."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field


def percentile(sorted_values: list[float], p: float) -> float | None:
    """The ``p``-th percentile (0..100) of already sorted values, interpolating linearly between
    the closest ranks (numpy's default "linear" method); ``None`` for no values."""
    if not 0 <= p <= 100:
        raise ValueError("p must be between 0 and 100")
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass
class Stats:
    """Counts of one run. ``requests`` = answered (any status) + transport errors."""
    status: Counter = field(default_factory=Counter)
    #: transport failures (refused, reset, timeout, malformed answer), by exception name
    errors: Counter = field(default_factory=Counter)
    #: seconds per answered request, send to last byte read
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    #: body bytes read, all answers (headers not counted)
    body_bytes: int = 0
    #: TCP connections opened (keep-alive reuses them)
    connections: int = 0
    #: requests re-sent once on a fresh connection after a kept-alive one turned out closed
    retries: int = 0
    concurrency: int = 0
    rate: float = 0.0
    interrupted: bool = False

    @property
    def answered(self) -> int:
        return sum(self.status.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def requests(self) -> int:
        return self.answered + self.error_count

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def merge(self, other: Stats) -> None:
        """Add another worker's counts (elapsed is the run's, set by the caller)."""
        self.status.update(other.status)
        self.errors.update(other.errors)
        self.latencies.extend(other.latencies)
        self.body_bytes += other.body_bytes
        self.connections += other.connections
        self.retries += other.retries

    def latency_ms(self) -> dict[str, float | None]:
        values = sorted(self.latencies)

        def ms(v):
            return None if v is None else round(v * 1000, 3)
        return {"p50": ms(percentile(values, 50)), "p90": ms(percentile(values, 90)),
                "p99": ms(percentile(values, 99)), "max": ms(values[-1] if values else None),
                "mean": ms(sum(values) / len(values) if values else None)}

    def unexpected(self, expected) -> int:
        """Answers whose status is not accepted by ``expected`` (a container or a predicate)."""
        ok = expected if callable(expected) else (lambda s: s in expected)
        return sum(n for s, n in self.status.items() if not ok(s))

    def to_dict(self) -> dict:
        return {
            "requests": self.requests,
            "status": {str(k): v for k, v in sorted(self.status.items())},
            "errors": self.error_count,
            "error_kinds": dict(sorted(self.errors.items())),
            "elapsed_s": round(self.elapsed, 4),
            "rps": round(self.rps, 1),
            "latency_ms": self.latency_ms(),
            "body_bytes": self.body_bytes,
            "connections": self.connections,
            "retries": self.retries,
            "concurrency": self.concurrency,
            "rate": self.rate,
            "interrupted": self.interrupted,
        }

    def format_text(self, title: str = "") -> str:
        lat = self.latency_ms()

        def f(v):
            return "-" if v is None else f"{v:.1f}"
        status = "  ".join(f"{k}={v}" for k, v in sorted(self.status.items())) or "none"
        errors = str(self.error_count)
        if self.errors:
            errors += " (" + ", ".join(f"{k}={v}" for k, v in sorted(self.errors.items())) + ")"
        rate = "unlimited" if not self.rate else f"{self.rate:g} req/s"
        lines = [title] if title else []
        lines += [
            f"  requests:    {self.requests}" + ("  (interrupted)" if self.interrupted else ""),
            f"  status:      {status}",
            f"  errors:      {errors}",
            f"  elapsed:     {self.elapsed:.3f} s",
            f"  throughput:  {self.rps:.1f} req/s  (concurrency {self.concurrency}, rate {rate},"
            f" {self.connections} connections)",
            f"  received:    {self.body_bytes / 2**20:.1f} MiB of bodies"
            f" ({self.body_bytes / 2**20 / self.elapsed if self.elapsed > 0 else 0.0:.1f} MiB/s)",
            f"  latency ms:  p50 {f(lat['p50'])}  p90 {f(lat['p90'])}  p99 {f(lat['p99'])}  max {f(lat['max'])}",
        ]
        return "\n".join(lines)
