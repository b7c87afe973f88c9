"""Runners: the local runner, and the Kubernetes renderer and driver."""
