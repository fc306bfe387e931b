"""The supervisors' area: dashboard (hazard registry, campaign progress, hit rate by class against the
control stratum, throughput and overdue charts), the hazard registry, campaigns, and open incidents with
retry (the only change made here, audited by the runtime)."""
from web.supervise.views import bp

__all__ = ["bp"]
