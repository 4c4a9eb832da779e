"""The pikube status page: a read-only view of the cluster, served by the master."""
