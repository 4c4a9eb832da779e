"""Where the master keeps API objects: one interface, a SQLite backend (etcd later)."""
