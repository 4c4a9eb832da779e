"""Cluster DNS inside the agent: every board answers its pods' queries itself (see docs/network.md, "Cluster DNS").

`zone` holds the records (pure), `answer` the wire rules, `forward` the upstream
servers and their cache, `server` the sockets, `source` the link to the agent's
informers, `responder` puts them together for `agent/main.py`. Imported only
when the pod network and cluster DNS are on (dnslib costs ~2.5 MB).
"""
