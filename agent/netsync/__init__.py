"""The agent's pod network beyond one pod: node setup, routes to the other boards, services, host ports.

`node.prepare` sets up forwarding and the backend before the Node is registered
(so the vxlan MAC can be published with it); `controller.NetworkSync` follows
Nodes, Services and Endpoints and drives `agent.network` and `agent.proxy`;
`peers`, `services` and `hostports` are the pure mappings from API objects to
what those libraries take. Imported only with `--pod-network bridge`.
"""
