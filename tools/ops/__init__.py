"""Shipped operator CLIs: admin (llmaas-admin), certs, cost_estimate, lifecycle_report."""
