"""The multi-board harness: a whole pikube cluster on one Linux machine.

`pikube dev`, the test suite and the benchmarks all stand on these modules, so a
cluster brought up by hand behaves exactly like the one the tests use:

- `engine`: a Docker engine to run pods in (`DOCKER_HOST`, or a private `dockerd`);
- `images`: `pikube/busybox` and `pikube/pause`, made locally without a registry;
- `boards`: simulated boards, each a network namespace on a test LAN bridge;
- `cluster`: the state directory that ties one run together (`dev up/down/ls/exec`);
- `sshboards`, `playbooks`: boards a laptop reaches over SSH, for the provisioning tests.

Nothing here reads the environment: the CLI parses it once and passes settings down.
"""
