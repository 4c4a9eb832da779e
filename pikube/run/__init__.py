"""The process wiring: what `pikube master` and `pikube agent` run, composed from the parts below.

`master`, `agent` and `web` never import each other; the one place that puts
them together is here, on top (k3s' `pkg/cli` composing `pkg/server` and
`pkg/agent` works the same way).
"""
