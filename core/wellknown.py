"""pikube's own wire names, defined once: every `pikube.io/*` label, annotation and API version.

The master, the agents, the status page and the board tools all read and write
these; they live below all of them so that no two copies can drift apart (a
renamed annotation would otherwise silently blank the status page's board facts
or break vxlan peering between boards of different versions).
"""

from __future__ import annotations

# Labels on every Docker container an agent makes (with dockershim's io.kubernetes.* ones).
NODE_LABEL = "pikube.io/node"  # the node whose agent owns the container: agents sharing an engine touch only theirs
KIND_LABEL = "pikube.io/kind"  # sandbox, init or app
SANDBOX_LABEL = "pikube.io/sandbox"  # an app container's pause container id

# Node labels and annotations an agent publishes.
BACKEND_LABEL = "pikube.io/network-backend"  # on the master board: workers read it to join with the same backend
VTEP_MAC_ANNOTATION = "pikube.io/vtep-mac"  # the vxlan device's MAC, for the other boards' FDB entries
SERVING_CERT_ANNOTATION = "pikube.io/serving-cert-sha256"  # pins the agent's :10250 certificate for the master
MODEL_ANNOTATION = "pikube.io/board-model"  # /proc/device-tree/model
TEMPERATURE_ANNOTATION = "pikube.io/soc-temperature"  # °C, one decimal
THROTTLED_ANNOTATION = "pikube.io/throttled"  # `vcgencmd get_throttled` bits, hex

# The join endpoint's answer (`POST /pikube/v1/join`).
API_VERSION = "pikube.io/v1"

# The board's role, announced by its agent ("master" on the board running the master, "worker" on a joined
# board). A node may not set node-role.kubernetes.io/* labels itself (NodeRestriction): the master's node roles
# controller gives "worker" boards node-role.kubernetes.io/worker; the master role goes to the board the
# master's own settings name (MasterSettings.board_node), never to a board for saying "master".
BOARD_ROLE_LABEL = "pikube.io/board-role"

# Local-path storage (master/controllers/volumes/, agent/kubelet/volumes.py): the default class's provisioner,
# where a board keeps its volumes (an annotation its agent publishes on its Node), and the mark on the volumes the
# master made, which alone the agent removes (reclaim Delete) and only inside that directory.
# Each master's Lease in kube-system (master/apiserverleases.py) carries this label, and the Node of the board
# it runs on in this annotation: those Nodes get the master roles (master/controllers/noderoles.py).
APISERVER_LEASE_LABEL = "pikube.io/apiserver"
BOARD_NODE_ANNOTATION = "pikube.io/board-node"
# The Service `kube-system/pikube-api` carries the masters' floating address here (`--api-address`): servicelb
# gives it exactly that ingress, and the agents announce it by ARP and forward it to a live master.
API_ADDRESS_ANNOTATION = "pikube.io/api-address"
API_SERVICE = ("kube-system", "pikube-api")
LOCAL_PATH_PROVISIONER = "pikube.io/local-path"
LOCAL_PATH_DIR_ANNOTATION = "pikube.io/local-path-dir"
PROVISIONED_BY_ANNOTATION = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
