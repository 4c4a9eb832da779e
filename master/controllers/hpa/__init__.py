"""The HorizontalPodAutoscaler controller: replica calculation, stabilisation and rate limits, reconcile."""
