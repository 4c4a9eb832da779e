"""The Deployment controller, one module per concern as Kubernetes' `pkg/controller/deployment` has them.

`controller.py` (informers, `sync`), `rollout.py` (rolling update, recreate,
proportional scaling, history cleanup), `status.py` (counts and conditions),
`rscontrol.py` (the ReplicaSet and status writes the steps share), `util.py`
(annotations, hashing, surge arithmetic). Arrows point down that list.
"""
