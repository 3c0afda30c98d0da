"""tep-operator: a Kubernetes operator that runs pytest suites on a schedule."""

__version__ = "0.1.0"
