"""The report browser (`tep serve`): web pages and a JSON API over a reports volume.

It reads only the volume (run folders and each plan's history, tep_runner.history) and imports neither
kopf nor the Kubernetes client: in the cluster it runs with no API token and a read-only mount.
"""
