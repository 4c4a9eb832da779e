"""The container runtime seam: pods' containers in Docker, found again by their labels."""
