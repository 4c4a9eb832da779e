"""The service proxy of a node: ClusterIP and NodePort services as one nftables table, `ip pikube`.

`render` turns a plain list of `ServiceRule`s into one nft script (pure, tested as
text); `apply` runs it atomically with `nft -f -` inside the node's namespace and
keeps the route that lets the node's own connections reach a ClusterIP;
`teardown` removes both. This kernel has no IPVS, hence nftables.
"""

from agent.proxy.apply import apply, existing_objects, teardown
from agent.proxy.model import TABLE, Protocol, ProxyConfig, ServiceRule, TableObjects
from agent.proxy.render import render

__all__ = [
    "TABLE",
    "Protocol",
    "ProxyConfig",
    "ServiceRule",
    "TableObjects",
    "apply",
    "existing_objects",
    "render",
    "teardown",
]
